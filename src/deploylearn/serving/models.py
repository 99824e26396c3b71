"""The champion's models as serving needs them, loaded once from the MLflow registry.

``load_serving_models`` returns None when nothing was ever promoted (and, with the default
SQLite tracking store, without creating ``mlruns/`` or importing MLflow), so every answer can
fall back to the hierarchical empirical prior and say so.

A champion is tied to the store it learned from (``deploylearn.store_id`` on its registered
version, from ``Store.store_id``): ``check_provenance`` refuses one learned from another store
(serving then falls back to the empirical prior and the answer says why), and warns about one
registered before versions carried the tag.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from deploylearn.domain.answers.served import ChampionProvenance
from deploylearn.serving.blend import RANKINGS, BlendParams
from deploylearn.tracking.paths import default_tracking_uri

EMBEDDINGS_ARTIFACT = "features/node_embeddings.parquet"  # as logged by pipeline.train
STORE_ID_TAG = "deploylearn.store_id"  # on registered versions and runs, set by pipeline.train
_log = logging.getLogger(__name__)


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
    """The champion success model (with its similarity and duration models), or None: when
    nothing was promoted, or (with a logged warning) when the champions are not one run's
    set, as a promotion interrupted between its alias moves leaves them."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None
    from deploylearn.tracking.registry import Registry

    registry = Registry(uri)
    champions = registry.champions()
    ref = champions["success"]
    if ref is None:
        return None
    mixed = {
        kind: f"v{other.version} of run {other.run_id}"
        for kind, other in champions.items()
        if other is not None and other.run_id != ref.run_id
    }
    if mixed:  # a promotion was interrupted between alias moves: never serve a mix
        _log.warning(
            "champion models come from different training runs (success v%s of run %s; %s): "
            "answering from the empirical prior until `ign train` completes the promotion",
            ref.version,
            ref.run_id,
            ", ".join(f"{kind} {where}" for kind, where in mixed.items()),
        )
        return None
    success = registry.load(ref)
    params = registry.run_params(ref.run_id) if ref.run_id else {}
    embeddings = registry.load_embeddings(ref.run_id, EMBEDDINGS_ARTIFACT) if ref.run_id else None
    extra: dict[str, Any] = {}
    for kind in ("similarity", "duration"):
        other = champions[kind]
        extra[kind] = registry.load(other) if other is not None else None
    return ServingModels(
        success=success,
        feature_names=[str(c) for c in success.feature_names_in_],
        version=ref.version,
        run_id=ref.run_id,
        blend=_blend(params),
        node_embeddings=embeddings,
        similarity=extra["similarity"],
        duration=extra["duration"],
        trained_until=ref.tags.get(
            "deploylearn.trained_until", ref.tags.get("deploylearn.training_cutoff")
        ),
        store_id=ref.tags.get(STORE_ID_TAG),
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
