"""The champion set, loaded from the registry once per serving state.

``load_champion`` returns None when nothing was ever promoted (and, with the default SQLite
tracking store, without creating ``mlruns/`` or importing MLflow), and None with a logged
warning when the champions are not one run's set, as a promotion interrupted between its
alias moves leaves them: serving then answers from the empirical prior rather than from a mix.
What the set means for serving (the blend, the provenance check) is ``serving.models``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from deploylearn.tracking.paths import default_tracking_uri

EMBEDDINGS_ARTIFACT = "features/node_embeddings.parquet"  # logged by pipeline.train
STORE_ID_TAG = "deploylearn.store_id"  # on registered versions and runs, set by pipeline.train
CUTOFF_TAG = "deploylearn.training_cutoff"  # the evaluated model's cut-off (the gate's)
TRAINED_UNTIL_TAG = "deploylearn.trained_until"  # the served model saw every run before it
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """The ``champion`` version of each model kind, all from one training run."""

    success: Any  # models.success.SuccessModel
    similarity: Any | None  # models.similarity.PatternSimilarity
    duration: Any | None  # models.duration.DurationModel
    version: str  # of the success model
    run_id: str | None
    params: dict[str, str]  # the run's logged parameters
    tags: dict[str, str]  # the success version's tags
    node_embeddings: pd.DataFrame | None

    @property
    def trained_until(self) -> str | None:
        """Start of the last run the served model saw (older versions: their cut-off)."""
        return self.tags.get(TRAINED_UNTIL_TAG, self.tags.get(CUTOFF_TAG))

    @property
    def store_id(self) -> str | None:
        """The store it learned from (None: registered before versions carried it)."""
        return self.tags.get(STORE_ID_TAG)


def champion_version(tracking_uri: str | None = None) -> tuple[str, str | None] | None:
    """(version, run id) of the success champion, without loading any model: a cheap check
    of whether a promotion happened since the champion was loaded (None: none promoted)."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None
    from deploylearn.tracking.registry import Registry

    ref = Registry(uri).champion("success")
    return None if ref is None else (ref.version, ref.run_id)


def load_champion(tracking_uri: str | None = None) -> Champion | None:
    """The champion set, or None (never promoted, or an interrupted promotion)."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None
    from deploylearn.tracking.registry import Registry  # imports mlflow: only when needed

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
    if mixed:
        _log.warning(
            "champion models come from different training runs (success v%s of run %s; %s): "
            "answering from the empirical prior until `ign train` completes the promotion",
            ref.version,
            ref.run_id,
            ", ".join(f"{kind} {where}" for kind, where in mixed.items()),
        )
        return None
    others = {kind: champions[kind] for kind in ("similarity", "duration")}
    return Champion(
        success=registry.load(ref),
        similarity=registry.load(others["similarity"]) if others["similarity"] else None,
        duration=registry.load(others["duration"]) if others["duration"] else None,
        version=ref.version,
        run_id=ref.run_id,
        params=registry.run_params(ref.run_id) if ref.run_id else {},
        tags=dict(ref.tags),
        node_embeddings=registry.load_embeddings(ref.run_id, EMBEDDINGS_ARTIFACT)
        if ref.run_id
        else None,
    )


CALIBRATION_ARTIFACT = "evaluation/calibration.png"  # logged by pipeline.train


@dataclass(frozen=True)
class ChampionRun:
    """What the champion's training run logged: its holdout metrics (the candidate's, and
    ``baseline.*`` / ``champion.*`` / ``fallback.*`` for what it was compared with)."""

    run_id: str
    experiment_id: str
    metrics: dict[str, float]
    params: dict[str, str]
    tracking_uri: str


def champion_run(run_id: str, tracking_uri: str | None = None) -> ChampionRun | None:
    """The logged metrics and params of the run ``run_id`` (None: no such run)."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None
    from mlflow.exceptions import MlflowException

    from deploylearn.tracking.registry import Registry

    try:
        experiment, metrics, params = Registry(uri).run_summary(run_id)
    except MlflowException:
        return None
    return ChampionRun(run_id, experiment, metrics, params, uri)


def run_artifact(run_id: str, path: str, tracking_uri: str | None = None) -> bytes | None:
    """One artifact of run ``run_id`` as bytes (None: not logged)."""
    uri = tracking_uri or default_tracking_uri()
    from deploylearn.tracking.registry import Registry

    return Registry(uri).artifact_bytes(run_id, path)
