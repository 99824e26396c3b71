"""The patterns' answers: how each pattern has fared under a filter (``PatternUsage``) and one
pattern's record over time per environment (``PatternReport``). The dashboard draws its
pattern charts from these, and ``/v1/patterns/usage`` and ``/v1/patterns/{id}/report`` return
them, so a chart and the JSON cannot disagree."""

from pydantic import Field

from deploylearn.domain.answers import Answer, JsonValue
from deploylearn.domain.answers.analytics import Rate
from deploylearn.domain.answers.recommendations import SimilarPattern


class PatternFilter(Answer):
    """Which executions were counted: those matching every given field."""

    environment: str | None = Field(description="Target environment (null: every one)")
    gateway_host: str | None = Field(description="Gateway host (null: every one)")
    resource_types: list[str] = Field(description="Deployed all of these (empty: any)")
    days_back: int | None = Field(description="Started in the last days (null: all time)")
    since: str | None = Field(description="Exclusive start of the window (ISO; null: none)")
    end: str | None = Field(description="The newest execution's start (ISO; null: no data)")


class PatternUsageRow(Answer):
    """One pattern's executions with an outcome under the filter."""

    pattern_id: str
    pattern_name: str
    deployment_strategy: str
    runs: int = Field(description="Executions with an outcome under the filter")
    success_rate: Rate = Field(description="Successes / runs, with its Wilson 95 % interval")
    rollbacks: int = Field(description="Of them, executions that triggered a rollback")
    last_used: str | None = Field(description="Start of its newest run under the filter (ISO)")


class PatternUsage(Answer):
    """The answer to "which patterns were used here, and how did they do?"."""

    filter: PatternFilter
    executions: int = Field(description="Executions with an outcome under the filter")
    patterns: list[PatternUsageRow] = Field(description="Most runs first")


class PatternPeriod(Answer):
    """One pattern's runs in one environment in one calendar week (UTC, Monday first)."""

    week: str = Field(description="The week's Monday (ISO date)")
    environment: str
    successes: int
    failures: int
    success_rate: float = Field(description="successes / (successes + failures)")


class PatternEnvironment(Answer):
    """One pattern's runs in one environment, all time."""

    environment: str
    runs: int = Field(description="Executions with an outcome")
    success_rate: Rate
    rollbacks: int
    first_run: str | None = Field(description="ISO time")
    last_run: str | None = Field(description="ISO time")


class PatternReport(Answer):
    """The answer to "what is this pattern, and how has it done over time, where?"."""

    pattern_id: str
    pattern_name: str
    deployment_strategy: str
    configuration_template: dict[str, JsonValue] = Field(
        description="Its configuration; secrets as stored (redacted)"
    )
    success_count: int = Field(description="Successes in every environment (the store's count)")
    failure_count: int = Field(description="Failures in every environment")
    first_seen: str | None = Field(description="ISO time")
    last_used: str | None = Field(description="ISO time")
    by_environment: list[PatternEnvironment] = Field(description="Most runs first")
    weekly: list[PatternPeriod] = Field(description="Per week and environment, oldest first")
    similar_patterns: list[SimilarPattern] = Field(
        description="The champion's nearest patterns (empty: no similarity model)"
    )
