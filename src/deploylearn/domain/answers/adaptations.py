"""``ign deploy adaptations``: how configurations change between two environments."""

from typing import Literal

from pydantic import Field

from deploylearn.domain.answers import Answer, Interval, JsonValue


class UpliftEvidence(Answer):
    """How the target environment's runs fared with a change and without it."""

    support: int = Field(description="Target runs that follow the change")
    confidence: float | None = Field(
        description="Share of the target's successes that follow it (null: no successes)"
    )
    target_success_rate_with: float | None = Field(description="Success rate of those that do")
    target_success_rate_without: float | None = Field(description="…and of those that do not")
    success_uplift: float | None = Field(description="with minus without")
    uplift_interval: Interval | None = Field(description="95 % interval of the uplift")
    uplift_p_value: float | None = Field(description="Two-sided test of no uplift")


class AdaptationRule(UpliftEvidence):
    """One knob that changes between the environments, mined from their runs."""

    key: str = Field(description="The configuration key")
    rule: str = Field(description="The change, readable")
    change: str = Field(description="raise, lower or set")
    original_value: JsonValue = Field(description="The source's value (null: unset there)")
    adapted_value: JsonValue = Field(description="The target's value")
    source_share: float = Field(
        description="Share of the source's successes that already follow the change"
    )
    q_value: float | None = Field(description="Benjamini-Hochberg q over all candidate rules")


class Adaptation(UpliftEvidence):
    """One adaptation: a family's configuration in the source and what it becomes."""

    adaptation_name: str
    source_environment: str
    target_environment: str
    adaptation_rules: list[str] = Field(description="The changes, readable")
    original_configuration: dict[str, JsonValue]
    adapted_configuration: dict[str, JsonValue]
    resource_type: str | None = Field(description="Narrowed to runs deploying it (null: all)")
    deployment_strategy: str | None = Field(description="The strategy family (null: recorded)")
    source: Literal["mined", "recorded"] = Field(
        description="mined from runs, or recorded with ign deploy adapt"
    )
    source_runs: int | None = Field(description="The family's runs in the source (mined only)")
    target_runs: int = Field(description="Runs in the target the evidence counts")
    original_pattern_id: str | None = Field(description="The source pattern it starts from")
    rules: list[AdaptationRule] = Field(description="Per-knob evidence (mined only)")
    adaptation_id: str | None = Field(description="The recorded adaptation's id")


class Adaptations(Answer):
    """The answer to "what must change from this environment to that one?"."""

    source_environment: str
    target_environment: str
    resource_type: str | None = Field(description="As asked (null: every resource type)")
    adaptations: list[Adaptation] = Field(description="Most convincing uplift first")
