"""The training frame of a store: its frames read, embeddings computed where asked (numpy here,
FastRP in Neo4j with GDS), then the pure ``features.training_frame_from_history``."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import pandas as pd

from deploylearn.features.embeddings import EMBEDDING_SOURCE
from deploylearn.features.frame import (
    FastRPParams,
    TrainingFrame,
    timed_value,
    training_frame_from_history,
)
from deploylearn.store import is_neo4j_url

if TYPE_CHECKING:
    from deploylearn.store.base import Store

EmbeddingMode = Literal["auto", "none", "numpy", "gds"]


def resolve_embeddings(store_url: str, mode: str) -> str:
    """``auto`` -> ``gds`` on Neo4j, ``numpy`` elsewhere; validates the others."""
    on_neo4j = is_neo4j_url(store_url)
    if mode == "auto":
        return "gds" if on_neo4j else "numpy"
    if mode not in ("none", "numpy", "gds"):
        raise ValueError(f"embeddings must be auto, none, numpy or gds, not {mode!r}")
    if mode == "gds" and not on_neo4j:
        raise ValueError(f"embeddings='gds' needs a Neo4j store, not {store_url}")
    return mode


def build_training_frame(
    store: Store,
    *,
    embeddings: EmbeddingMode = "auto",
    embedding_dimension: int = 32,
    random_seed: int = 0,
    since: datetime | None = None,
) -> TrainingFrame:
    """The training frame of everything in ``store``.

    ``embeddings``: "gds" runs FastRP in Neo4j (Neo4j stores only), "numpy" runs the same
    algorithm here, "none" leaves embeddings out, "auto" picks gds on Neo4j and numpy
    otherwise. ``since`` keeps rows that start at or after it; their history features still
    see everything before them.
    """
    mode = resolve_embeddings(store.url, embeddings)
    started = time.perf_counter()
    frame = store.executions_frame()
    patterns = store.patterns()
    timings = {"load_s": time.perf_counter() - started}
    params = FastRPParams(dimension=embedding_dimension, random_seed=random_seed)
    chosen: Literal["none", "numpy"] | pd.DataFrame = "numpy" if mode == "numpy" else "none"
    if mode == "gds":
        chosen = timed_value(timings, "embeddings", lambda: gds_node_embeddings(store, params))
    result = training_frame_from_history(
        frame, patterns, embeddings=chosen, fastrp_params=params, since=since
    )
    result.timings.update(timings)
    return result


def gds_node_embeddings(store: Store, params: FastRPParams) -> pd.DataFrame:
    """FastRP computed by GDS inside Neo4j (imports the Neo4j side only when called)."""
    from deploylearn.store.neo4j import gds

    embeddings = gds.fastrp_embeddings(
        store,  # type: ignore[arg-type]  # embeddings='gds' comes with a Neo4j store
        dimension=params.dimension,
        random_seed=params.random_seed,
        iteration_weights=params.iteration_weights,
        normalization_strength=params.normalization_strength,
    )
    embeddings.attrs[EMBEDDING_SOURCE] = "gds"
    return embeddings
