"""Graph Data Science on the Neo4j store: structural embeddings and pattern similarity.

The only module that drives the ``graphdatascience`` client. Projections hold structure only
(who ran what, where, with which settings); outcome-bearing nodes and edges (issues, rollback
scenarios, metrics, earlier similarity edges) are never projected, so embeddings computed here
cannot leak a label into the features trained on them. Every algorithm runs with a fixed seed
and ``concurrency=1`` so two runs on the same store give the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from graphdatascience import GraphDataScience
from graphdatascience.graph.graph_api import Graph
from neo4j.exceptions import Neo4jError, ServiceUnavailable

from deploylearn.domain.vocabulary import Label, Rel
from deploylearn.errors import StoreError, StoreUnavailableError
from deploylearn.store.neo4j import cypher
from deploylearn.store.neo4j.store import Neo4jStore

STRUCTURE_GRAPH = "deploylearn-structure"
SIMILARITY_GRAPH = "deploylearn-pattern-settings"
EMBEDDING_PROPERTY = "deploylearn_fastrp"

STRUCTURAL_LABELS: tuple[str, ...] = (
    Label.EXECUTION,
    Label.PATTERN,
    Label.ENVIRONMENT,
    Label.GATEWAY,
    Label.RESOURCE_TYPE,
    Label.CONFIG_SETTING,
)
STRUCTURAL_TYPES: tuple[str, ...] = (
    Rel.FOLLOWS_DEPLOYMENT_PATTERN,
    Rel.DEPLOYED_TO,
    Rel.PROMOTED_FROM,
    Rel.RAN_ON,
    Rel.IN_ENVIRONMENT,
    Rel.DEPLOYS_RESOURCE,
    Rel.USES_SETTING,
)
# Embedded by default; executions only on request (there may be millions of them).
EMBEDDED_LABELS: tuple[str, ...] = tuple(s for s in STRUCTURAL_LABELS if s != Label.EXECUTION)
EMBEDDING_COLUMNS = ["label", "key", "embedding"]

_STRUCTURE_TYPES = dict.fromkeys(STRUCTURAL_TYPES, "UNDIRECTED")
# pattern -> setting only: node similarity then compares patterns (the only sources).
_SIMILARITY_LABELS = (Label.PATTERN, Label.CONFIG_SETTING)
_SIMILARITY_TYPES = {Rel.USES_SETTING.value: "NATURAL"}


@dataclass(frozen=True)
class Projection:
    """A graph in the GDS catalog, as projected (only labels and types present in the store)."""

    graph_name: str
    node_labels: tuple[str, ...]
    relationship_types: tuple[str, ...]
    node_count: int
    relationship_count: int
    project_millis: int


@dataclass(frozen=True)
class HeapUsage:
    """The Neo4j JVM's heap, from JMX (works on Community, unlike ``gds.systemMonitor``)."""

    used_bytes: int
    committed_bytes: int
    max_bytes: int


@dataclass(frozen=True)
class MemoryEstimate:
    """GDS's own estimate of what an algorithm needs on a projected graph."""

    algorithm: str
    bytes_min: int
    bytes_max: int
    required_memory: str


@dataclass(frozen=True)
class SimilarityRun:
    """What ``write_pattern_similarity`` did; ``relationships`` is what it returns."""

    relationships: int
    nodes_compared: int
    seconds: float


@contextmanager
def gds_client(store: Neo4jStore) -> Iterator[GraphDataScience]:
    """A GDS client on the store's own driver and database (Bolt only: OpenGDS has no Arrow
    server), with the store's error mapping: a server that went away is
    ``StoreUnavailableError``, any other failure ``StoreError``."""
    try:
        gds = GraphDataScience(
            store._driver, arrow=False, show_progress=False, database=store._database
        )
    except ServiceUnavailable as exc:
        raise StoreUnavailableError(f"Neo4j at {store.url} went away: {exc}") from exc
    except Neo4jError as exc:
        raise StoreError(f"cannot use Graph Data Science on {store.url}: {exc}") from exc
    try:
        yield gds
    except ServiceUnavailable as exc:
        raise StoreUnavailableError(f"Neo4j at {store.url} went away: {exc}") from exc
    except Neo4jError as exc:
        raise StoreError(f"Graph Data Science call failed on {store.url}: {exc}") from exc
    finally:
        gds.close()  # does not close a driver it was given


def _in_use(gds: GraphDataScience) -> tuple[set[str], set[str]]:
    labels = gds.run_cypher(cypher.LABELS_IN_USE)["labels"].iloc[0]
    types = gds.run_cypher(cypher.RELATIONSHIP_TYPES_IN_USE)["types"].iloc[0]
    return set(labels), set(types)


def _projection_config(
    gds: GraphDataScience, labels: Sequence[str], types: dict[str, str]
) -> tuple[list[str], dict[str, dict[str, str]]] | None:
    """The present subset of ``labels``/``types`` (oriented as given); None if either is empty.

    GDS rejects a label or type the database has never seen, and an empty relationship
    projection would mean every type, so both are filtered to what is in use.
    """
    present_labels, present_types = _in_use(gds)
    node_labels = [str(label) for label in labels if label in present_labels]
    rel_types = {str(t): {"orientation": o} for t, o in types.items() if t in present_types}
    if not node_labels or not rel_types:
        return None
    return node_labels, rel_types


def _project(
    gds: GraphDataScience,
    graph_name: str,
    labels: Sequence[str],
    types: dict[str, str],
    concurrency: int,
) -> tuple[Graph, Projection] | None:
    """Replace ``graph_name`` with a projection of what is present; None if nothing is."""
    gds.graph.drop(graph_name, fail_if_missing=False)
    config = _projection_config(gds, labels, types)
    if config is None:
        return None
    node_labels, rel_types = config
    graph, result = gds.graph.project.native(
        graph_name, node_labels, rel_types, read_concurrency=concurrency
    )
    return graph, Projection(
        graph_name=graph_name,
        node_labels=tuple(node_labels),
        relationship_types=tuple(rel_types),
        node_count=result.node_count,
        relationship_count=result.relationship_count,
        project_millis=result.project_millis,
    )


def _project_structure(
    gds: GraphDataScience, graph_name: str, concurrency: int
) -> tuple[Graph, Projection] | None:
    return _project(gds, graph_name, STRUCTURAL_LABELS, _STRUCTURE_TYPES, concurrency)


def project_structure(
    store: Neo4jStore, *, graph_name: str = STRUCTURE_GRAPH, concurrency: int = 1
) -> Projection | None:
    """Project the structural graph into the GDS catalog (replacing one of the same name).

    Labels: executions, patterns, environments, gateways, resource types, config settings;
    types: the seven structural relationships, all undirected. Outcome-bearing nodes and edges
    are left out by construction. Returns None if the store has no structure yet. The
    projection stays in the catalog until ``drop_projection``; pass it to
    ``fastrp_embeddings`` to reuse it.
    """
    with gds_client(store) as gds:
        projected = _project_structure(gds, graph_name, concurrency)
    return None if projected is None else projected[1]


def drop_projection(store: Neo4jStore, graph_name: str = STRUCTURE_GRAPH) -> bool:
    """Drop a projection; True if one was dropped."""
    with gds_client(store) as gds:
        return bool(gds.graph.drop(graph_name, fail_if_missing=False))


def projection_schema(store: Neo4jStore, graph_name: str) -> tuple[set[str], set[str]]:
    """The node labels and relationship types a catalog graph actually holds."""
    with gds_client(store) as gds:
        graph = gds.graph.get(graph_name)
        return set(graph.node_labels()), set(graph.relationship_types())


def fastrp_embeddings(
    store: Neo4jStore,
    *,
    dimension: int = 64,
    random_seed: int = 42,
    iteration_weights: Sequence[float] = (0.0, 1.0, 1.0),
    normalization_strength: float = 0.0,
    include_executions: bool = False,
    projection: Projection | None = None,
    concurrency: int = 1,
) -> pd.DataFrame:
    """FastRP embeddings of the structural graph, one row per node.

    Columns ``label``, ``key`` (pattern_id, gateway host, environment or resource type name,
    setting_id, execution_id) and ``embedding`` (list of ``dimension`` floats), sorted by
    label and key. FastRP runs on the whole projection (executions included: they are what
    connects patterns to their context) but only the requested labels are streamed back.
    ``concurrency=1`` and ``random_seed`` make the result reproducible. With ``projection``
    the given catalog graph is reused and kept; otherwise one is projected and dropped.
    """
    with gds_client(store) as gds:
        if projection is None:
            projected = _project_structure(gds, STRUCTURE_GRAPH, concurrency)
            if projected is None:
                return pd.DataFrame(columns=EMBEDDING_COLUMNS)
            graph, proj = projected
        else:
            graph, proj = gds.graph.get(projection.graph_name), projection
        try:
            gds.graph.node_properties.drop(graph, [EMBEDDING_PROPERTY], fail_if_missing=False)
            gds.fast_rp.mutate(
                graph,
                mutate_property=EMBEDDING_PROPERTY,
                embedding_dimension=dimension,
                iteration_weights=list(iteration_weights),
                normalization_strength=normalization_strength,
                random_seed=random_seed,
                concurrency=concurrency,
            )
            wanted = [*EMBEDDED_LABELS, *((Label.EXECUTION,) if include_executions else ())]
            frames = [
                _stream_label(gds, graph, label, concurrency)
                for label in wanted
                if label in proj.node_labels
            ]
        finally:
            if projection is None:
                graph.drop(fail_if_missing=False)
            else:
                gds.graph.node_properties.drop(graph, [EMBEDDING_PROPERTY], fail_if_missing=False)
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=EMBEDDING_COLUMNS)
    return (
        pd.concat(frames, ignore_index=True)
        .sort_values(["label", "key"], kind="stable")
        .reset_index(drop=True)
    )


def _stream_label(
    gds: GraphDataScience, graph: Graph, label: str, concurrency: int
) -> pd.DataFrame:
    raw = gds.graph.node_properties.stream(
        graph, [EMBEDDING_PROPERTY], node_labels=[label], concurrency=concurrency
    )
    if raw.empty:
        return pd.DataFrame(columns=EMBEDDING_COLUMNS)
    node_ids = [int(n) for n in raw["nodeId"]]
    keys = gds.run_cypher(cypher.NODE_KEYS, params={"node_ids": node_ids})
    key_of = dict(zip(keys["node_id"].astype(int), keys["key"], strict=True))
    return pd.DataFrame(
        {
            "label": str(label),
            "key": [key_of[n] for n in node_ids],
            "embedding": [[float(x) for x in v] for v in raw[EMBEDDING_PROPERTY]],
        }
    )


def write_pattern_similarity(
    store: Neo4jStore,
    *,
    top_k: int = 5,
    similarity_cutoff: float = 0.1,
    concurrency: int = 1,
) -> int:
    """Replace every ``SIMILAR_TO_PATTERN {score}`` edge with Jaccard node similarity.

    Two patterns are compared over their ``USES_SETTING`` ConfigSettings (``key=value`` of the
    canonical template) only. Context (environments, gateways, resources a pattern ran in) is
    left out on purpose: it says where a pattern was used, which follows popularity and the
    rollout policy rather than what the pattern is, and it is already in the FastRP embeddings.
    The strategy is not a node; callers that need one strategy filter on it. Each pattern keeps
    its ``top_k`` most similar with score ≥ ``similarity_cutoff`` (scores lie in (0, 1]).
    A re-run deletes the old edges first (readers briefly see none); the temporary projection
    is always dropped. Returns the number of relationships written.
    """
    return write_pattern_similarity_run(
        store, top_k=top_k, similarity_cutoff=similarity_cutoff, concurrency=concurrency
    ).relationships


def write_pattern_similarity_run(
    store: Neo4jStore,
    *,
    top_k: int = 5,
    similarity_cutoff: float = 0.1,
    concurrency: int = 1,
) -> SimilarityRun:
    """``write_pattern_similarity`` with timing and the number of patterns compared."""
    if top_k < 1:
        raise ValueError("top_k must be at least 1")
    if not 0.0 < similarity_cutoff <= 1.0:
        raise ValueError("similarity_cutoff must lie in (0, 1]")
    start = time.perf_counter()
    _delete_similarity(store)
    with gds_client(store) as gds:
        projected = _project(
            gds, SIMILARITY_GRAPH, _SIMILARITY_LABELS, _SIMILARITY_TYPES, concurrency
        )
        if projected is None:
            return SimilarityRun(0, 0, time.perf_counter() - start)
        graph, _ = projected
        try:
            result = gds.node_similarity.write(
                graph,
                write_relationship_type=Rel.SIMILAR_TO_PATTERN,
                write_property="score",
                top_k=top_k,
                similarity_cutoff=similarity_cutoff,
                concurrency=concurrency,
                write_concurrency=concurrency,
            )
        finally:
            graph.drop(fail_if_missing=False)
    return SimilarityRun(
        int(result.relationships_written), int(result.nodes_compared), time.perf_counter() - start
    )


def _delete_similarity(store: Neo4jStore) -> None:
    store._run_batched(cypher.DELETE_PATTERN_SIMILARITY)


def similar_patterns(store: Neo4jStore, pattern_id: str, limit: int = 5) -> list[dict[str, Any]]:
    """The patterns most similar to ``pattern_id`` (highest score first) with their scores."""
    return store._run(cypher.SIMILAR_PATTERNS, pattern_id=pattern_id, limit=limit)


def pattern_similarity_edges(store: Neo4jStore) -> list[dict[str, Any]]:
    """Every ``SIMILAR_TO_PATTERN`` edge as ``{source, target, score}``, sorted."""
    return store._run(cypher.PATTERN_SIMILARITY_EDGES)


def heap_usage(store: Neo4jStore) -> HeapUsage:
    """The server JVM's current heap (for benchmarks; needs JMX procedures, on by default)."""
    row = store._run(cypher.JVM_HEAP)[0]
    return HeapUsage(int(row["used"]), int(row["committed"]), int(row["max"]))


def estimate_memory(
    store: Neo4jStore, *, dimension: int = 64, top_k: int = 5
) -> list[MemoryEstimate]:
    """GDS's estimates, projection included, for FastRP and for the similarity run."""
    out: list[MemoryEstimate] = []
    with gds_client(store) as gds:
        structure = _projection_config(gds, STRUCTURAL_LABELS, _STRUCTURE_TYPES)
        if structure is not None:
            config = {"nodeProjection": structure[0], "relationshipProjection": structure[1]}
            est = gds.fast_rp.estimate(config, embedding_dimension=dimension, concurrency=1)
            out.append(MemoryEstimate("fastRP", est.bytes_min, est.bytes_max, est.required_memory))
        settings = _projection_config(gds, _SIMILARITY_LABELS, _SIMILARITY_TYPES)
        if settings is not None:
            config = {"nodeProjection": settings[0], "relationshipProjection": settings[1]}
            est = gds.node_similarity.estimate(
                config,  # type: ignore[arg-type]  # the Cypher endpoint takes a projection dict too
                top_k=top_k,
                concurrency=1,
            )
            out.append(
                MemoryEstimate("nodeSimilarity", est.bytes_min, est.bytes_max, est.required_memory)
            )
    return out
