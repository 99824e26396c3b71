"""``ign deploy recommendations``: the patterns to use in a context, best first."""

from typing import Literal

from pydantic import Field

from deploylearn.domain.answers import (
    Answer,
    Interval,
    JsonValue,
    KnobValue,
    omitted_when_none,
)
from deploylearn.domain.answers.served import ServedAnswer, UnknownInputs

# mean: by success_probability; lower_quantile: by confidence_score (risk-averse)
Ranking = Literal["mean", "lower_quantile"]


class RecommendationContext(Answer):
    """The context asked about, as the answer understood it."""

    target_environment: str
    resource_types: list[str] = Field(description="Sorted, without duplicates")
    deployment_strategy: str | None = Field(description="Only patterns of this strategy")
    gateway_host: str | None = Field(description="Scored on this gateway (null: the usual ones)")


class KnobEffect(Answer):
    """How much P(success) the pattern would lose if one knob took the environment's typical
    value: a counterfactual on the champion, not a causal claim."""

    knob: str = Field(description="The configuration key")
    value: KnobValue | None = Field(description="The pattern's value (null: not set)")
    typical_value: KnobValue | None = Field(description="The environment's typical value")
    effect: float = Field(description="P(success) with the pattern's value minus with the typical")


class SimilarPattern(Answer):
    """A pattern whose configuration is close to this one's."""

    pattern_id: str
    pattern_name: str | None
    similarity: float = Field(description="0..1, 1 = the same knobs")
    smoothed_success_rate: float = Field(description="Its success rate shrunk toward the mean")
    runs: int


class Recommendation(Answer):
    """One ranked pattern, with the evidence behind its score."""

    pattern_id: str
    pattern_name: str
    pattern_family: str = Field(description="The strategy and the knobs that define a family")
    pattern_family_id: str
    untried: bool = Field(description="Never run in the target environment (nor its context)")
    deployment_strategy: str
    configuration_template: dict[str, JsonValue] = Field(
        description="The configuration to use; secrets are shown as placeholders"
    )
    success_probability: float = Field(
        description="Posterior mean: the model's probability updated with the decayed history"
    )
    model_probability: float = Field(description="The prior: the model's (or empirical) estimate")
    prior_source: str = Field(description="Where model_probability came from")
    confidence_score: float = Field(description="The posterior's lower quantile (Bayesian)")
    credible_interval: Interval = Field(description="90 % posterior interval of P(success)")
    success_rate: float | None = Field(description="Observed rate there (null: no runs)")
    success_count: int = Field(description="Successes in the target environment")
    failure_count: int = Field(description="Failures in the target environment")
    context_runs: int = Field(description="Runs in this environment with these resource types")
    overall_success_count: int = Field(description="Successes in every environment")
    overall_failure_count: int = Field(description="Failures in every environment")
    evidence_weight: float = Field(description="Decayed runs behind the posterior")
    last_used: str | None = Field(description="Start of its last run anywhere (ISO)")
    applicability_reasons: list[str] = Field(description="Why it ranks where it does, readable")
    knob_effects: list[KnobEffect] = Field(description="At most five, largest first")
    similar_patterns: list[SimilarPattern]


class Recommendations(ServedAnswer, UnknownInputs):
    """The answer to "which patterns should I use here?"."""

    context: RecommendationContext
    candidates: int = Field(description="Patterns considered")
    candidate_tier: str | None = Field(description="Which evidence the best candidates have")
    ranked_by: Ranking = Field(
        description="mean: success_probability; lower_quantile: confidence_score (risk-averse)"
    )
    recommendations: list[Recommendation]
    notes: list[str] | None = omitted_when_none("Why there is no recommendation")
