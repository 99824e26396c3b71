"""``training_frame_from_history``: executions and patterns to (X, y, meta) for the success
model. Pure: the store's frames come in (``pipeline.training_frame`` reads them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deploylearn.domain.records import DeploymentPattern
from deploylearn.domain.vocabulary import Label
from deploylearn.features._columns import Exploded, explode_resources
from deploylearn.features.config import (
    context_features,
    knob_features,
    resource_features,
    time_features,
)
from deploylearn.features.embeddings import (
    DEFAULT_ITERATION_WEIGHTS,
    EMBEDDING_SOURCE,
    embedding_lookup,
    fastrp_node_embeddings,
)
from deploylearn.features.history import DEFAULT_WINDOW_DAYS, point_in_time_features

T = TypeVar("T")
META_COLUMNS = [
    "execution_id",
    "started_at",
    "pattern_id",
    "target_environment",
    "gateway_host",
    "deployment_strategy",
]
_ONE_HOT = (
    "resource__",
    "deployment_strategy__",
    "target_environment__",
    "source_environment__",
    "deployment_type__",
)
# (feature prefix, node label, the frame column holding the node's key)
_EMBEDDED = (
    ("pattern", Label.PATTERN, "pattern_id"),
    ("gateway", Label.GATEWAY, "gateway_host"),
)


@dataclass(frozen=True)
class FastRPParams:
    """FastRP settings shared by the GDS and numpy paths (see docs/features.md for why)."""

    dimension: int = 32
    iteration_weights: tuple[float, ...] = DEFAULT_ITERATION_WEIGHTS
    normalization_strength: float = 0.0
    random_seed: int = 0


@dataclass(frozen=True)
class TrainingFrame:
    """Features and labels, one row per execution with an outcome, in time order.

    ``X`` is numeric only (float32, NaN where unknown), ``y`` is 1 for success, ``meta`` holds
    what a split or an explanation needs but a model must not see.
    """

    X: pd.DataFrame
    y: pd.Series
    meta: pd.DataFrame
    feature_names: list[str]
    embeddings: str = "none"  # which embeddings fed X: none, numpy or gds
    node_embeddings: pd.DataFrame | None = None  # label/key/embedding, for serving the model
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    def time_split(self, train_fraction: float = 0.7) -> tuple[TrainingFrame, TrainingFrame]:
        """The first ``train_fraction`` of rows by start time, and the rest."""
        cut = round(len(self) * train_fraction)
        return self._rows(slice(0, cut)), self._rows(slice(cut, None))

    def _rows(self, rows: slice) -> TrainingFrame:
        return TrainingFrame(
            X=self.X.iloc[rows],
            y=self.y.iloc[rows],
            meta=self.meta.iloc[rows],
            feature_names=self.feature_names,
            embeddings=self.embeddings,
            node_embeddings=self.node_embeddings,
            timings=self.timings,
        )


def training_frame_from_history(
    frame: pd.DataFrame,
    patterns: Sequence[DeploymentPattern],
    *,
    embeddings: Literal["none", "numpy"] | pd.DataFrame = "numpy",
    fastrp_params: FastRPParams | None = None,
    since: datetime | None = None,
    window_days: float = DEFAULT_WINDOW_DAYS,
) -> TrainingFrame:
    """The training frame of an ``executions_frame()`` and its patterns.

    ``embeddings`` may be a ``label/key/embedding`` frame computed elsewhere (GDS, or numpy
    once for several frames of the same graph). Rows without an outcome shape history
    (recency, structure) but are not training rows.
    """
    params = fastrp_params or FastRPParams()
    timings: dict[str, float] = {}
    frame = frame.sort_values(["started_at", "execution_id"], kind="stable").reset_index(drop=True)
    resources = timed_value(
        timings, "explode", lambda: explode_resources(frame["resources_deployed"])
    )
    node_embeddings: pd.DataFrame | None = None
    if isinstance(embeddings, pd.DataFrame):
        node_embeddings = embeddings
    elif embeddings == "numpy":
        node_embeddings = timed_value(
            timings,
            "embeddings",
            lambda: fastrp_node_embeddings(
                frame,
                patterns,
                dimension=params.dimension,
                iteration_weights=params.iteration_weights,
                normalization_strength=params.normalization_strength,
                random_seed=params.random_seed,
                resources=resources,
            ),
        )
    elif embeddings != "none":
        raise ValueError(f"unknown embeddings {embeddings!r}")
    features = _features(frame, patterns, node_embeddings, resources, window_days, timings)

    started = time.perf_counter()
    keep = frame["outcome"].isin(["success", "failure"]).to_numpy()
    if since is not None:
        keep = keep & (frame["started_at"] >= pd.to_datetime(since, utc=True)).to_numpy()
    X = features.loc[keep].astype(np.float32).reset_index(drop=True)
    y = (frame.loc[keep, "outcome"] == "success").astype(np.int64).reset_index(drop=True)
    y.name = "success"
    meta = frame.loc[keep, META_COLUMNS].reset_index(drop=True)
    timings["assemble_s"] = time.perf_counter() - started
    return TrainingFrame(
        X=X,
        y=y,
        meta=meta,
        feature_names=list(X.columns),
        embeddings=_source(node_embeddings),
        node_embeddings=node_embeddings,
        timings=timings,
    )


def _features(
    frame: pd.DataFrame,
    patterns: Sequence[DeploymentPattern],
    node_embeddings: pd.DataFrame | None,
    resources: Exploded,
    window_days: float,
    timings: dict[str, float],
) -> pd.DataFrame:
    """Every feature block side by side, aligned with ``frame`` (sorted by time)."""

    def timed(name: str, build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        return timed_value(timings, name, build)

    parts = [
        timed(
            "history",
            lambda: point_in_time_features(frame, window_days=window_days, resources=resources),
        ),
        timed("knobs", lambda: knob_features(frame, patterns)),
        timed("resources", lambda: resource_features(frame, resources)),
        timed("context", lambda: context_features(frame)),
        timed("time", lambda: time_features(frame)),
    ]
    if node_embeddings is not None:
        parts.append(
            timed(
                "embedding_columns",
                lambda: embedding_features(frame, node_embeddings, resources),
            )
        )
    return pd.concat(parts, axis=1)


def _source(node_embeddings: pd.DataFrame | None) -> str:
    if node_embeddings is None:
        return "none"
    return str(node_embeddings.attrs.get(EMBEDDING_SOURCE, "given"))


def features_for_candidates(
    history: pd.DataFrame,
    patterns: Sequence[DeploymentPattern],
    candidates: pd.DataFrame,
    *,
    feature_names: Sequence[str],
    node_embeddings: pd.DataFrame | None = None,
    at: datetime | None = None,
    window_days: float = DEFAULT_WINDOW_DAYS,
) -> pd.DataFrame:
    """Model input for hypothetical executions (pattern × context) about to start.

    ``candidates`` needs ``pattern_id``, ``target_environment``, ``gateway_host`` and
    ``resources_deployed``; ``deployment_strategy`` defaults to the pattern's,
    ``source_environment`` and ``deployment_type`` to none, ``automation_triggered`` to False,
    ``started_at`` to ``at`` (default: now). Each candidate becomes an outcome-less row of the
    history, so its features follow exactly the rules of a training row at that instant.
    ``feature_names`` (a ``TrainingFrame``'s) fixes the columns: a category the model never saw
    is dropped, one the candidates lack is 0, a missing embedding NaN. ``node_embeddings`` should
    be the training frame's (a candidate must not re-embed the graph). Cost: one pass over the
    history per call, so score candidates in batches.
    """
    strategy = {p.pattern_id: p.deployment_strategy for p in patterns}
    when = pd.to_datetime(at or datetime.now(UTC), utc=True)
    rows = pd.DataFrame(
        {
            "execution_id": [f"\x00candidate-{i:09d}" for i in range(len(candidates))],
            "pattern_id": candidates["pattern_id"].to_numpy(dtype=object),
            "target_environment": candidates["target_environment"].to_numpy(dtype=object),
            "gateway_host": candidates["gateway_host"].to_numpy(dtype=object),
            "resources_deployed": [list(r) for r in candidates["resources_deployed"]],
        }
    )
    for column, default in (
        ("source_environment", None),
        ("deployment_type", None),
        ("automation_triggered", False),
    ):
        values = candidates[column] if column in candidates else [default] * len(candidates)
        rows[column] = list(values)
    if "deployment_strategy" in candidates:
        rows["deployment_strategy"] = list(candidates["deployment_strategy"])
    else:
        rows["deployment_strategy"] = [strategy.get(p) for p in rows["pattern_id"]]
    started = candidates["started_at"] if "started_at" in candidates else [when] * len(candidates)
    rows["started_at"] = pd.to_datetime(list(started), utc=True)
    rows["completed_at"] = pd.NaT
    rows["outcome"] = None
    combined = pd.concat([history, rows], ignore_index=True)
    combined["started_at"] = pd.to_datetime(combined["started_at"], utc=True)
    combined["completed_at"] = pd.to_datetime(combined["completed_at"], utc=True)
    combined = combined.sort_values(["started_at", "execution_id"], kind="stable")
    is_candidate = combined["execution_id"].astype(str).str.startswith("\x00candidate-")
    order = combined.loc[is_candidate, "execution_id"].to_numpy()
    combined = combined.reset_index(drop=True)
    resources = explode_resources(combined["resources_deployed"])
    features = _features(combined, patterns, node_embeddings, resources, window_days, {})
    picked = features.loc[is_candidate.to_numpy()].set_axis(order)
    picked = picked.loc[rows["execution_id"].to_numpy()].reset_index(drop=True)
    out = picked.reindex(columns=list(feature_names))
    absent = [c for c in feature_names if c not in picked.columns and c.startswith(_ONE_HOT)]
    out[absent] = 0.0  # a category or resource none of these rows has; anything else stays NaN
    return out.astype(np.float32).set_axis(candidates.index)


def timed_value(timings: dict[str, float], name: str, build: Callable[[], T]) -> T:
    """``build()``, its wall time recorded as ``timings[name + "_s"]``."""
    started = time.perf_counter()
    value = build()
    timings[f"{name}_s"] = time.perf_counter() - started
    return value


def embedding_features(
    frame: pd.DataFrame, node_embeddings: pd.DataFrame, resources: Exploded | None = None
) -> pd.DataFrame:
    """Per row: its pattern's and gateway's embeddings and the mean of its resources' ones.

    A node the embeddings do not know (an empty GDS result) gives NaN, never a made-up vector.
    """
    dimension = _dimension(node_embeddings)
    blocks: list[pd.DataFrame] = []
    for prefix, label, column in _EMBEDDED:
        lookup = embedding_lookup(node_embeddings, label)
        position, keys = pd.factorize(frame[column].astype(object).to_numpy(dtype=object))
        block = _table(lookup, [str(k) for k in keys], dimension)[position]
        blocks.append(_block(block, f"emb_{prefix}", frame.index))
    rows, code, names = resources or explode_resources(frame["resources_deployed"])
    table = _table(embedding_lookup(node_embeddings, Label.RESOURCE_TYPE), names, dimension)
    count = np.bincount(rows, minlength=len(frame)).astype(np.float32)
    share = sp.csr_matrix(
        (1.0 / count[rows], (rows, code)), shape=(len(frame), len(names)), dtype=np.float32
    )
    mean = np.asarray(share @ table, dtype=np.float32)
    mean[count == 0] = np.nan
    blocks.append(_block(mean, "emb_resources", frame.index))
    return pd.concat(blocks, axis=1)


def _block(values: np.ndarray, prefix: str, index: pd.Index) -> pd.DataFrame:
    columns = [f"{prefix}_{j}" for j in range(values.shape[1])]
    return pd.DataFrame(values, columns=columns, index=index, copy=False)


def _table(lookup: dict[str, np.ndarray], keys: Sequence[str], dimension: int) -> np.ndarray:
    """Vectors for ``keys`` in order (NaN rows for unknown keys)."""
    table = np.full((len(keys), dimension), np.nan, dtype=np.float32)
    for i, key in enumerate(keys):
        vector = lookup.get(str(key))
        if vector is not None:
            table[i] = vector
    return table


def _dimension(node_embeddings: pd.DataFrame) -> int:
    if node_embeddings.empty:
        return 0
    return len(node_embeddings["embedding"].iloc[0])
