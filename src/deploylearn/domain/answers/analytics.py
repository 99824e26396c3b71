"""``ign deploy analytics``: rates with intervals, durations, DORA measures, trends against the
previous window, breakdowns and insights for one window of the history (``docs/analytics.md``
defines every number). Rates are fractions (0.74, not 74); durations are seconds unless the
field says hours; times are ISO 8601 strings in UTC."""

from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, model_serializer

from deploylearn.domain.answers import Answer, omitted_when_none

AsOfSource = Literal["given", "newest execution in the data", "now (no executions)"]


class Rate(Answer):
    """A proportion with its Wilson score 95 % interval; every rate of the answer is one."""

    rate: float | None = Field(description="count / n, a fraction 0..1 (null: n is 0)")
    low: float | None = Field(description="Lower end of the Wilson 95 % interval (null: n is 0)")
    high: float | None = Field(description="Upper end of the Wilson 95 % interval (null: n is 0)")
    count: int = Field(description="Executions counted (the numerator)")
    n: int = Field(
        description="The denominator: executions with an outcome (for the rollback success "
        "rate: rollbacks whose result is known)"
    )


# ------------------------------------------------------------------ the window
class Window(Answer):
    """The window analysed: executions that started in (start, end]."""

    start: str = Field(description="Exclusive start: end minus days (ISO)")
    end: str = Field(description="Inclusive end: as_of (ISO)")
    days: int = Field(description="Window length in days (days_back)")
    environment: str | None = Field(description="The environment counted (null: every one)")
    as_of_source: AsOfSource = Field(description="Where the window's end came from")
    note: str = Field(description="The window rule and its end, in words")


class PreviousWindow(Answer):
    """The window the trends compare with: the days_back days before the window."""

    start: str = Field(description="Exclusive start: the window's start minus days (ISO)")
    end: str = Field(description="Inclusive end: the window's start (ISO)")


class DeploymentStatistics(Answer):
    """Counts of the window's executions; every rate's denominator is with_outcome."""

    total_deployments: int = Field(description="Executions that started in the window (any status)")
    with_outcome: int = Field(description="Executions that succeeded or failed")
    successful_deployments: int = Field(description="Completed without a rollback")
    failed_deployments: int = Field(
        description="Failed, rolled back, or completed with a rollback"
    )
    without_outcome: int = Field(description="Pending, in progress or cancelled")
    rollbacks_triggered: int = Field(description="Executions that triggered a rollback")
    rollbacks_successful: int = Field(description="Triggered rollbacks that succeeded")
    rollbacks_failed: int = Field(description="Triggered rollbacks that failed")
    by_status: dict[str, int] = Field(description="Executions per status, statuses sorted")


# ------------------------------------------------------------------ durations and metrics
class DurationSummary(Answer):
    """Durations of executions with an outcome, in seconds."""

    n: int = Field(description="Executions with an outcome and a duration")
    mean_seconds: float | None = Field(description="Mean duration, s (null: n is 0)")
    p50_seconds: float | None = Field(description="Median duration, s (null: n is 0)")
    p90_seconds: float | None = Field(
        description="90th percentile (numpy's linear quantile), s (null: n is 0)"
    )


class Durations(DurationSummary):
    """The window's durations, overall, for successes and per strategy."""

    success_p50_seconds: float | None = Field(
        description="Median duration of successes only, s (null: no success)"
    )
    success_p90_seconds: float | None = Field(
        description="90th percentile duration of successes only, s (null: no success)"
    )
    by_strategy: dict[str, DurationSummary] = Field(description="Per deployment strategy, sorted")


class MetricSummary(Answer):
    """Summary statistics of one metric's values (a stored metric, or durations in seconds)."""

    n: int = Field(description="Values summarised")
    mean: float | None = Field(description="Mean, in the metric's unit (null: n is 0)")
    p50: float | None = Field(description="Median, in the metric's unit (null: n is 0)")
    p90: float | None = Field(
        description="90th percentile (numpy's linear quantile), in the metric's unit"
    )
    min: float | None = Field(description="Smallest value (null: n is 0)")
    max: float | None = Field(description="Largest value (null: n is 0)")


# ------------------------------------------------------------------ DORA
class DeploymentFrequency(Answer):
    """DORA deployment frequency over the window."""

    successful_per_day: float = Field(description="Successful deployments per day")
    attempts_per_day: float = Field(description="Deployments with an outcome per day")
    successful_deployments: int = Field(description="Successful deployments in the window")
    attempts: int = Field(description="Deployments with an outcome in the window")
    days: int = Field(description="Window length in days")


class TimeToRestore(Answer):
    """DORA time to restore service, for the failures that started in the window: by the
    rollback's duration when it succeeded and is known, else by the next success on the same
    gateway (looked for up to the window's end only)."""

    failures: int = Field(description="Failures that started in the window")
    restored: int = Field(description="Failures restored by the window's end")
    unrestored_at_window_end: int = Field(
        description="Failures with no restore by the window's end (right-censored)"
    )
    by_rollback: int = Field(description="Restored by a successful rollback of known duration")
    by_next_success: int = Field(description="Restored by the next success on the same gateway")
    p50_hours: float | None = Field(description="Median restore time, h (null: none restored)")
    p90_hours: float | None = Field(
        description="90th percentile restore time, h (null: none restored)"
    )
    mean_hours: float | None = Field(description="Mean restore time, h (null: none restored)")
    by_rollback_p50_hours: float | None = Field(
        description="Median restore time by rollback, h (null: none)"
    )
    by_next_success_p50_hours: float | None = Field(
        description="Median restore time by the next success, h (null: none)"
    )


class LeadTime(Answer):
    """DORA lead time for changes: not computable from execution records."""

    available: bool = Field(description="Always false: records carry no commit or request time")
    reason: str = Field(description="Why it is not available, in words")


class Dora(Answer):
    """The DORA measures for one environment (the asked one, else production)."""

    environment: str = Field(description="The environment measured")
    deployment_frequency: DeploymentFrequency = Field(description="Deployments per day")
    change_failure_rate: Rate = Field(description="Failures / deployments with an outcome")
    time_to_restore_service: TimeToRestore = Field(description="How long failures lasted")
    lead_time_for_changes: LeadTime = Field(description="Not available, with the reason")


# ------------------------------------------------------------------ trends
class RateTrend(Answer):
    """A rate in the window against the previous window, with a two-sided test."""

    current: Rate = Field(description="The rate in the window")
    previous: Rate = Field(description="The rate in the previous window")
    change: float | None = Field(
        description="current.rate - previous.rate (null: a side has no outcome)"
    )
    test: str | None = Field(
        description="two-proportion z-test, or Fisher exact test when an expected cell is "
        "below 5 (null: a side is empty)"
    )
    statistic: float | None = Field(
        description="z, or Fisher's odds ratio (null: not tested, or an infinite odds ratio)"
    )
    p_value: float | None = Field(description="Two-sided p-value (null: not tested)")
    significant: bool = Field(description="p_value < 0.05")
    p_adjusted: float | None = Field(
        description="Holm-adjusted over the call's trend tests; failure_rate shares "
        "success_rate's (null: not tested)"
    )


class MetricTrend(Answer):
    """A duration or metric distribution in the window against the previous window, with the
    two-sided Mann–Whitney U test."""

    current: MetricSummary = Field(description="The values in the window")
    previous: MetricSummary = Field(description="The values in the previous window")
    change_p50: float | None = Field(
        description="current.p50 - previous.p50, in the metric's unit (null: a side is empty)"
    )
    test: str | None = Field(description="Mann–Whitney U test (null: a side is empty)")
    statistic: float | None = Field(description="U (null: not tested)")
    p_value: float | None = Field(description="Two-sided p-value (null: not tested)")
    significant: bool = Field(description="p_value < 0.05")
    p_adjusted: float | None = Field(
        description="Holm-adjusted over the call's trend tests (null: not tested)"
    )


Trend = RateTrend | MetricTrend


class DailyRow(Answer):
    """One UTC calendar day of the window (the first and the last are partial)."""

    date: str = Field(description="The day (ISO date)")
    deployments: int = Field(description="Executions that started that day")
    successes: int = Field(description="Of them, successes")
    failures: int = Field(description="Of them, failures")
    rollbacks: int = Field(description="Of them, executions with an outcome and a rollback")
    success_rate: float | None = Field(
        description="successes / (successes + failures) (null: no outcome)"
    )
    duration_p50_seconds: float | None = Field(
        description="Median duration of that day's executions with an outcome, s (null: none)"
    )
    duration_p90_seconds: float | None = Field(
        description="90th percentile duration that day, s (null: none)"
    )


class Trends(Answer):
    """Per chosen metric (the key is its name), the window against the previous one: a
    ``RateTrend`` for the rates, a ``MetricTrend`` for duration and the stored metrics; and
    ``daily``. The metrics come in the order asked, ``daily`` last."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Trend] = Field(init=False)

    daily: list[DailyRow] = Field(description="One row per UTC day of the window, oldest first")

    @classmethod
    def of(cls, metrics: dict[str, Trend], daily: list[DailyRow]) -> Self:
        """The trends of ``metrics`` (name: trend, in order) and the daily rows."""
        return cls.model_validate({**metrics, "daily": daily})

    @property
    def by_metric(self) -> dict[str, Trend]:
        """The metric trends by name, in the order asked (every key but ``daily``)."""
        return dict(self.__pydantic_extra__)

    # The JSON lists the metrics first and daily last, as it always has. Unannotated on
    # purpose: pydantic would take a return annotation for the serialization JSON Schema.
    @model_serializer(mode="wrap")
    def _daily_last(self, handler):  # type: ignore[no-untyped-def]
        data = handler(self)
        if "daily" in data:
            data["daily"] = data.pop("daily")
        return data


# ------------------------------------------------------------------ breakdowns
# A row's group columns come first in its JSON: pydantic lists the fields of the base named
# last first, so each row class names its group-column base last.
class GroupStats(Answer):
    """One group of the window's executions with an outcome."""

    n: int = Field(description="Executions with an outcome in the group")
    failures: int = Field(description="Of them, failures")
    success_rate: Rate = Field(description="Successes / n")
    failure_rate: Rate = Field(description="Failures / n")
    rollback_rate: Rate = Field(description="Executions with a rollback / n")
    duration_p50_seconds: float | None = Field(
        description="Median duration, s (null: no duration)"
    )


class Others(Answer):
    """The rest of the row's environment, pooled."""

    failure_rate: Rate = Field(description="Failure rate of the other rows of the environment")
    scope: str = Field(description="What was pooled, in words")


class Comparison(Answer):
    """A row against the other rows of the same environment."""

    others: Others = Field(description="The other rows of the same environment, pooled")
    failure_ratio: float | None = Field(
        description="failure_rate.rate / others.failure_rate.rate (null: others' rate is 0 or "
        "unknown)"
    )
    test: str | None = Field(
        description="two-proportion z-test or Fisher exact test (null: a side is empty)"
    )
    p_value: float | None = Field(description="Two-sided p-value (null: not tested)")
    p_adjusted: float | None = Field(
        description="Bonferroni over the rows with at least 20 outcomes on both sides (null: "
        "below that)"
    )
    significant: bool = Field(description="p_adjusted < 0.05, in either direction")


class _StrategyKey(Answer):
    strategy: str = Field(description="Deployment strategy")


class _EnvironmentKey(Answer):
    environment: str = Field(description="Target environment")


class _GatewayKey(Answer):
    gateway: str = Field(description="Gateway host")
    environment: str = Field(description="Target environment")


class _StrategyEnvironmentKey(Answer):
    strategy: str = Field(description="Deployment strategy")
    environment: str = Field(description="Target environment")


class StrategyRow(GroupStats, _StrategyKey):
    """One deployment strategy."""


class EnvironmentRow(GroupStats, _EnvironmentKey):
    """One target environment."""


class GatewayRow(Comparison, GroupStats, _GatewayKey):
    """One gateway of one environment, against the environment's other gateways."""


class StrategyEnvironmentRow(Comparison, GroupStats, _StrategyEnvironmentKey):
    """One strategy in one environment, against the environment's other strategies."""


class Breakdowns(Answer):
    """The window's executions with an outcome, grouped; rows sorted by their group columns."""

    by_strategy: list[StrategyRow] = Field(description="Per deployment strategy")
    by_environment: list[EnvironmentRow] = Field(description="Per target environment")
    by_gateway: list[GatewayRow] = Field(description="Per gateway and environment")
    by_strategy_environment: list[StrategyEnvironmentRow] = Field(
        description="Per strategy and environment"
    )
    top_failing_gateways: list[GatewayRow] = Field(
        description="Up to 5 gateways with at least 20 outcomes, worst first by the lower end "
        "of their failure-rate interval"
    )


# ------------------------------------------------------------------ insights
class CountedInsight(Answer):
    """The window's summary, or the note that it is too small for more insights."""

    kind: Literal["summary", "small_sample"] = Field(
        description="summary: always (unless no_data); small_sample: under 30 outcomes"
    )
    text: str = Field(description="The sentence")
    n: int = Field(description="Executions with an outcome in the window")


class TrendInsight(Answer):
    """A metric that moved: at least 30 outcomes in both windows and Holm-adjusted p < 0.05."""

    kind: Literal["trend"] = Field(description="trend")
    metric: str = Field(description="The metric's name")
    text: str = Field(description="The sentence (it quotes the unadjusted p-value)")
    p_value: float = Field(description="The trend's unadjusted p-value")


class GatewayInsight(Answer):
    """A gateway that fails noticeably more than the rest of its environment."""

    kind: Literal["gateway"] = Field(description="gateway")
    gateway: str = Field(description="Gateway host")
    text: str = Field(description="The sentence")
    p_adjusted: float = Field(description="The row's Bonferroni-adjusted p-value")


class StrategyInsight(Answer):
    """A strategy that fails noticeably more than the others in one environment."""

    kind: Literal["strategy"] = Field(description="strategy")
    strategy: str = Field(description="Deployment strategy")
    environment_name: str = Field(description="Target environment")
    text: str = Field(description="The sentence")
    p_adjusted: float = Field(description="The row's Bonferroni-adjusted p-value")


class NoteInsight(Answer):
    """A sentence without numbers of its own: no data, time to restore, or rollbacks."""

    kind: Literal["no_data", "time_to_restore", "rollback"] = Field(
        description="no_data: the window is empty; time_to_restore: at least 30 restored "
        "failures; rollback: at least 30 rollbacks with a known result"
    )
    text: str = Field(description="The sentence")


Insight = Annotated[
    CountedInsight | TrendInsight | GatewayInsight | StrategyInsight | NoteInsight,
    Field(discriminator="kind"),
]


# ------------------------------------------------------------------ the answer
class DeploymentAnalytics(Answer):
    """The answer to "how have deployments gone in this window?"."""

    environment: str | None = Field(description="The environment asked (null: every one)")
    days_back: int = Field(description="Window length in days")
    metric_types: list[str] = Field(description="The metrics summarised and trended, in order")
    window: Window = Field(description="The window analysed")
    previous_window: PreviousWindow = Field(description="The window the trends compare with")
    deployment_statistics: DeploymentStatistics = Field(description="Counts of the window")
    success_rate: float | None = Field(description="Successes / n (null: no outcome)")
    failure_rate: float | None = Field(description="Failures / n (null: no outcome)")
    rollback_rate: float | None = Field(description="Rollbacks / n (null: no outcome)")
    rollback_success_rate: float | None = Field(
        description="Successful rollbacks / rollbacks with a known result (null: none)"
    )
    average_duration_seconds: float | None = Field(
        description="Mean duration of executions with an outcome, s (null: none)"
    )
    rates: dict[str, Rate] = Field(
        description="The chosen rate metrics (success_rate, failure_rate, rollback_rate, "
        "rollback_success_rate) with their intervals"
    )
    durations: Durations | None = Field(description="Durations (null: duration not chosen)")
    metrics: dict[str, MetricSummary] = Field(
        description="Per chosen stored metric (and duration_seconds), the window's values"
    )
    dora: Dora = Field(description="The DORA measures")
    trends: Trends = Field(description="The window against the previous one, and per day")
    breakdowns: Breakdowns = Field(description="Per strategy, environment and gateway")
    insights: list[str] = Field(description="The insights' sentences, in order")
    insight_details: list[Insight] = Field(description="The insights with their kind and numbers")
    plot: str | None = omitted_when_none(
        "The PNG dashboard's path (ign deploy analytics --plot)"
    )
