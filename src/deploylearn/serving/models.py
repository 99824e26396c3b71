"""The champion's models as serving needs them, loaded once from the MLflow registry.

``load_serving_models`` returns None when nothing was ever promoted (and, with the default
SQLite tracking store, without creating ``mlruns/`` or importing MLflow), so every answer can
fall back to the hierarchical empirical prior and say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from deploylearn.models.tracking import default_tracking_uri
from deploylearn.serving.blend import RANKINGS, BlendParams

EMBEDDINGS_ARTIFACT = "features/node_embeddings.parquet"  # as logged by pipeline.train


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

    def describe(self) -> str:
        return f"champion success model v{self.version}"


def load_serving_models(tracking_uri: str | None = None) -> ServingModels | None:
    """The champion success model (with its similarity and duration models), or None."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None
    from deploylearn.models.registry import Registry

    registry = Registry(uri)
    ref = registry.champion("success")
    if ref is None:
        return None
    success = registry.load(ref)
    params = registry.run_params(ref.run_id) if ref.run_id else {}
    embeddings = registry.load_embeddings(ref.run_id, EMBEDDINGS_ARTIFACT) if ref.run_id else None
    extra: dict[str, Any] = {}
    for kind in ("similarity", "duration"):
        other = registry.champion(kind)
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
        trained_until=ref.tags.get("deploylearn.training_cutoff"),
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
