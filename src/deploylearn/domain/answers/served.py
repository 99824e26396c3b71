"""What every model-served answer (recommendations, prediction) says about how it was made:
the champion and its provenance, the blend, the time it reasons from, and unknown inputs."""

from typing import Literal

from pydantic import Field

from deploylearn.domain.answers import Answer, omitted_when_none


class ChampionProvenance(Answer):
    """Whether the registered champion may serve this store."""

    status: Literal["verified", "refused", "unverified", "none"] = Field(
        description="verified: it learned from this store; refused: from another store, not "
        "applied; unverified: registered without a store id, applied with a warning; none: "
        "no champion, or the model was switched off"
    )
    store_id: str | None = Field(description="The id of the store asked")
    model_store_id: str | None = Field(description="The id of the store the champion learned from")
    model_version: str | None = Field(description="The champion's registered version")


class ModelInfo(Answer):
    """The champion that scored this answer."""

    name: str = Field(description="Registered model name")
    version: str = Field(description="Registered model version")
    run_id: str | None = Field(description="The MLflow run that trained it")
    trained_until: str | None = Field(description="Start time of the last execution it saw (ISO)")


class BlendSettings(Answer):
    """How the model's probability and the decayed history were combined (tuned by ign train)."""

    prior_strength: float | None = Field(
        description="Pseudo-runs the model's probability is worth (null: infinite, the "
        "counts do not move it)"
    )
    half_life_days: float | None = Field(
        description="Half-life of a past run's weight, in days (null: no decay)"
    )


class ServedAnswer(Answer):
    """Fields every model-served answer carries."""

    model_provenance: ChampionProvenance | None = Field(
        description="Whether the champion may serve this store; null without a champion check"
    )
    warnings: list[str] = Field(description="Readable lines a person should see first")
    as_of: str = Field(description="The time the answer reasons from: the last start stored (ISO)")
    model: ModelInfo | None = Field(description="The champion used; null: empirical rates only")
    blend: BlendSettings


UnknownValues = dict[str, str | list[str]]


class UnknownInputs(Answer):
    """Request values the store has never seen (present when the store has a vocabulary)."""

    unknown: UnknownValues | None = omitted_when_none(
        "Per request field, the value (or list items) never seen in this store"
    )
    did_you_mean: dict[str, str] | None = omitted_when_none(
        "Per unknown value, the closest known value"
    )
