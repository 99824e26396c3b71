"""The champion's models as serving needs them, loaded once from the MLflow registry.

``load_serving_models`` returns None when nothing was ever promoted (and, with the default
SQLite tracking store, without creating ``mlruns/`` or importing MLflow), so every answer can
fall back to the hierarchical empirical prior and say so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from deploylearn.models.tracking import default_tracking_uri
from deploylearn.serving.blend import DEFAULT_HALF_LIFE_DAYS, DEFAULT_PRIOR_STRENGTH, BlendParams

EMBEDDINGS_ARTIFACT = "features/node_embeddings.parquet"  # as logged by pipeline.train
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

    def describe(self) -> str:
        return f"champion success model v{self.version}"


def load_serving_models(tracking_uri: str | None = None) -> ServingModels | None:
    """The champion success model (with its similarity and duration models), or None: when
    nothing was promoted, or (with a logged warning) when the champions are not one run's
    set, as a promotion interrupted between its alias moves leaves them."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None
    from deploylearn.models.registry import Registry

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
        blend=BlendParams(
            prior_strength=float(params.get("blend.prior_strength", DEFAULT_PRIOR_STRENGTH)),
            half_life_days=float(params.get("blend.half_life_days", DEFAULT_HALF_LIFE_DAYS)),
        ),
        node_embeddings=embeddings,
        similarity=extra["similarity"],
        duration=extra["duration"],
        trained_until=ref.tags.get("deploylearn.training_cutoff"),
    )
