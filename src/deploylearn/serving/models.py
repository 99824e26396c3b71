"""The champion's models as serving needs them (``tracking.champion`` loads them once).

``load_serving_models`` returns None when there is no complete champion set, so every answer
can fall back to the hierarchical empirical prior and say so.

A champion is tied to the store it learned from (``deploylearn.store_id`` on its registered
version, from ``Store.store_id``): ``check_provenance`` refuses one learned from another store
(serving then falls back to the empirical prior and the answer says why), and warns about one
registered before versions carried the tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from deploylearn.domain.answers.served import ChampionProvenance
from deploylearn.serving.blend import RANKINGS, BlendParams
from deploylearn.tracking.champion import load_champion


@dataclass(frozen=True)
class ServingModels:
    """The ``champion`` versions and what they were trained with."""

    success: Any  # models.success.SuccessModel
    feature_names: list[str]
    version: str
    run_id: str | None
    blend: BlendParams
    node_embeddings: pd.DataFrame | None = None
    similarity: Any | None = None  # models.similarity.PatternSimilarity
    duration: Any | None = None  # models.duration.DurationModel
    trained_until: str | None = None
    store_id: str | None = None  # the store it learned from (None: registered without it)

    def describe(self, *, ranking: bool = False) -> str:
        """Where a probability came from; ``ranking``: as recommendations score candidates."""
        name = f"champion success model v{self.version}"
        if ranking and getattr(self.success, "ranking_", None) is not None:
            return f"{name} (its ranking twin)"
        return name


@dataclass(frozen=True)
class ModelProvenance:
    """Whether the champion may serve this store: ``verified`` (it learned from it),
    ``refused`` (from another store: not applied), ``unverified`` (registered without a store
    id: applied, with a warning) or ``none`` (no champion, or the model was switched off)."""

    status: Literal["verified", "refused", "unverified", "none"]
    store_id: str | None = None
    model_store_id: str | None = None
    version: str | None = None
    warning: str | None = None

    def as_answer(self) -> ChampionProvenance:
        return ChampionProvenance(
            status=self.status,
            store_id=self.store_id,
            model_store_id=self.model_store_id,
            model_version=self.version,
        )


def check_provenance(models: ServingModels | None, store_id: str | None) -> ModelProvenance:
    """May ``models`` (the champion) serve the store whose ``Store.store_id`` is ``store_id``?"""
    if models is None:
        return ModelProvenance("none", store_id)
    common = {"store_id": store_id, "model_store_id": models.store_id, "version": models.version}
    if models.store_id is None:
        return ModelProvenance(
            "unverified",
            **common,
            warning=f"champion v{models.version} does not record which store it learned from "
            "(registered before store ids): applied unverified; retrain (ign train --force) "
            "to tie it to this store",
        )
    if models.store_id != store_id:
        return ModelProvenance(
            "refused",
            **common,
            warning=f"champion v{models.version} learned from store {models.store_id}, not from "
            f"this one ({store_id or 'no store id'}): not applied, probabilities are the "
            "empirical prior (check --store and --tracking-uri)",
        )
    return ModelProvenance("verified", **common)


def load_serving_models(tracking_uri: str | None = None) -> ServingModels | None:
    """The champion success model (with its similarity and duration models), or None when
    there is no complete champion set (``tracking.champion``)."""
    champion = load_champion(tracking_uri)
    if champion is None:
        return None
    success = champion.success
    return ServingModels(
        success=success,
        feature_names=[str(c) for c in success.feature_names_in_],
        version=champion.version,
        run_id=champion.run_id,
        blend=_blend(champion.params),
        node_embeddings=champion.node_embeddings,
        similarity=champion.similarity,
        duration=champion.duration,
        trained_until=champion.trained_until,
        store_id=champion.store_id,
    )


def _blend(params: dict[str, str]) -> BlendParams:
    """The blend the champion's run chose (``ign train`` fits it); no blend if none logged."""
    default = BlendParams()
    rank_by = params.get("serving.rank_by", default.rank_by)
    return BlendParams(
        prior_strength=float(params.get("blend.prior_strength", default.prior_strength)),
        half_life_days=float(params.get("blend.half_life_days", default.half_life_days)),
        rank_by=rank_by if rank_by in RANKINGS else default.rank_by,
    )
