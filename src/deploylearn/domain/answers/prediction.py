"""``ign deploy predict``: the risk of planned deployments, and the CI gate over it."""

from pydantic import Field

from deploylearn.domain.answers import Answer, Interval, JsonValue, omitted_when_none
from deploylearn.domain.answers.served import ServedAnswer, UnknownInputs


class RiskFactor(Answer):
    """Something that lowers the probability, found by a counterfactual on the champion."""

    factor: str = Field(description="configuration, strategy or gateway")
    name: str = Field(description="The configuration key, or deployment_strategy / gateway_host")
    detail: str = Field(description="Readable: the value and the alternative")
    risk_reduction: float = Field(description="P(success) gained by the alternative")


class PastFailure(Answer):
    """A failed past execution that resembles the planned deployment."""

    execution_id: str
    started_at: str = Field(description="ISO time")
    pattern_id: str
    gateway_host: str
    deployment_strategy: str
    status: str
    issues: list[str] = Field(description="Its first three issues, readable")
    similarity: float = Field(description="0..1")


class Prediction(UnknownInputs):
    """The risk of one planned deployment."""

    planned: dict[str, JsonValue] = Field(description="The planned deployment, as understood")
    pattern_id: str | None = Field(description="The known pattern it matches (null: new)")
    known_pattern: bool
    success_probability: float = Field(description="Posterior mean of P(success)")
    failure_risk: float = Field(description="1 - success_probability")
    credible_interval: Interval = Field(description="90 % posterior interval of P(success)")
    model_probability: float = Field(description="The prior before the history's evidence")
    prior_source: str
    evidence_weight: float = Field(description="Decayed runs behind the posterior")
    risk_factors: list[RiskFactor] = Field(description="Largest risk first")
    similar_past_failures: list[PastFailure]
    warnings: list[str] | None = omitted_when_none("Unknown inputs, readable")
    configuration_assumed: str | None = omitted_when_none(
        "How a missing configuration or gateway was filled in"
    )


class RiskGate(Answer):
    """The CI gate's verdict (``--fail-below``)."""

    fail_below: float
    allow_unknown: bool = Field(description="Gate on the probability alone")
    passed: bool
    below: int = Field(description="Planned deployments below fail_below")
    unknown: int = Field(description="Planned deployments naming a never-seen context")
    model_refused: bool = Field(description="The champion learned from another store")
    reasons: list[str] = Field(description="One line per cause of failure")


class PredictionAnswer(ServedAnswer):
    """The answer to "how risky are these planned deployments?"."""

    predictions: list[Prediction]
    gate: RiskGate | None = omitted_when_none("The CI gate's verdict, with --fail-below")
