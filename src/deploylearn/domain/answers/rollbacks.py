"""``ign deploy rollback-scenarios``: how rollbacks start, go and end in an environment."""

from pydantic import Field

from deploylearn.domain.answers import Answer, Interval


class TriggerIssue(Answer):
    """An issue that led to these rollbacks (the first issue of each failed run)."""

    issue_id: str
    normalized: str = Field(description="The issue text with ids and numbers masked")
    rollbacks: int


class RollbackSuccess(Answer):
    """Beta posterior of the rollback succeeding."""

    probability: float = Field(description="Posterior mean")
    credible_interval: Interval
    credible_level: float
    observed_rate: float | None = Field(description="Observed rate (null: no known outcome)")
    successes: int
    failures: int
    unknown: int = Field(description="Rollbacks with no recorded outcome")
    prior: str = Field(description="The Beta prior, e.g. Beta(1, 1)")


class RecoveryTime(Answer):
    """How long recovery took."""

    p50_seconds: float | None
    p90_seconds: float | None
    samples: int
    basis: str = Field(description="The metric measured, or whole-run durations")


class Scenario(Answer):
    """One scenario: a trigger and a strategy, with odds, times and a procedure."""

    scenario_name: str
    environment: str
    deployment_strategy: str
    trigger_condition: str = Field(description="The group of similar issues that triggers it")
    trigger_issues: list[TriggerIssue] = Field(description="At most five, most frequent first")
    example_reason: str | None = Field(description="One failure reason of the group, verbatim")
    resource_types: list[str] = Field(description="Resource types deployed, most frequent first")
    resources_involved: dict[str, int] = Field(description="Rollbacks per resource type")
    rollbacks: int
    failures_with_trigger: int
    rollback_rate_given_trigger: float | None = Field(
        description="rollbacks / failures_with_trigger (null: no such failure)"
    )
    rollbacks_per_100_deployments: float
    rollback_success: RollbackSuccess
    success_rate_prediction: float = Field(description="rollback_success.probability (the seed's)")
    recovery_time: RecoveryTime
    procedure: list[str] = Field(description="Numbered steps for the strategy and resources")
    risk_notes: list[str]
    risk_score: float = Field(description="Rollbacks per 100 deployments × (2 - P(success))")
    scenario_ids: list[str] = Field(description="Recorded scenarios that match it")
    first_seen: str | None = Field(description="ISO time")
    last_seen: str | None = Field(description="ISO time")


class RollbackScenarios(Answer):
    """The answer to "how would a rollback here go?"."""

    environment: str
    resource_types: list[str] = Field(description="As asked (empty: every resource type)")
    scenarios: list[Scenario] = Field(description="Highest risk score first")
