"""FastRP graph embeddings on the embedded store: the GDS algorithm in numpy/scipy.

The structural graph is rebuilt from ``Store.executions_frame()`` and ``Store.patterns()`` with
exactly the nodes and relationships that ``deploylearn.store.neo4j.gds`` projects on Neo4j
(executions, patterns, environments, gateways, resource types, ``key=value`` config settings;
FOLLOWS_DEPLOYMENT_PATTERN, DEPLOYED_TO, PROMOTED_FROM, RAN_ON, IN_ENVIRONMENT,
DEPLOYS_RESOURCE, USES_SETTING, all undirected). Outcomes, issues, rollbacks and metrics are
not in it, so an embedding cannot carry a label.

``fastrp`` follows GDS's FastRP (``gds.fastRP``, Chen et al. 2019, "Fast and Accurate Network
Embeddings via Very Sparse Random Projection"):

1. every node n gets a very sparse random vector r_n (density 1/3: each entry is
   +-sqrt(3)/sqrt(d) with probability 1/6 each, else 0), scaled by deg(n)^normalization_strength
   (degree 0 counts as scaling 1);
2. iteration i averages the previous vectors of the neighbours, e_n^i = mean(e_m^(i-1)) with
   e^0 = r, and L2-normalizes the result;
3. the embedding is node_self_influence * r_n/|r_n| + sum_i iteration_weights[i] * e_n^i.

GDS seeds each node's vector from its internal node id, which differs between databases, so
the two implementations agree in distribution, not bit for bit; here a node's vector is seeded
from a hash of (seed, label, key), so it does not change when other nodes are added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import orjson
import pandas as pd
import scipy.sparse as sp

from deploylearn.domain.records import DeploymentPattern
from deploylearn.domain.vocabulary import Label, Rel
from deploylearn.features._columns import Exploded, explode_resources

SPARSITY = 3.0
DEFAULT_ITERATION_WEIGHTS: tuple[float, ...] = (0.0, 1.0, 1.0)
EMBEDDING_COLUMNS = ["label", "key", "embedding"]
EMBEDDING_SOURCE = "deploylearn_embedding_source"  # DataFrame.attrs key: "numpy" or "gds"
# Labels whose embeddings are returned (executions are only the connective tissue).
EMBEDDED_LABELS: tuple[str, ...] = (
    Label.PATTERN,
    Label.ENVIRONMENT,
    Label.GATEWAY,
    Label.RESOURCE_TYPE,
    Label.CONFIG_SETTING,
)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class StructuralGraph:
    """The structural graph: a symmetric adjacency (entries count parallel relationships)."""

    adjacency: sp.csr_matrix
    labels: np.ndarray  # node label (str) per node
    keys: np.ndarray  # business key per node: execution_id, pattern_id, host, name, setting_id
    relationship_counts: dict[str, int] = field(default_factory=dict)

    @property
    def node_count(self) -> int:
        return int(self.adjacency.shape[0])

    @property
    def relationship_count(self) -> int:
        """Relationships counted once (GDS reports twice this for an undirected projection)."""
        return sum(self.relationship_counts.values())

    def label_counts(self) -> dict[str, int]:
        names, counts = np.unique(self.labels.astype(str), return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts, strict=True)}


def setting_id(key: str, value: object) -> str:
    """``key=value`` as the Neo4j store writes a ConfigSetting (value JSON-encoded)."""
    return f"{key}={orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()}"


def structural_graph(
    frame: pd.DataFrame,
    patterns: Sequence[DeploymentPattern],
    resources: Exploded | None = None,
) -> StructuralGraph:
    """The structural graph of a history, node for node and edge for edge as GDS projects it."""
    blocks: list[tuple[str, np.ndarray]] = []
    offset: dict[str, int] = {}
    index: dict[str, pd.Index] = {}

    def add(label: str, keys: np.ndarray) -> None:
        offset[label] = sum(len(k) for _, k in blocks)
        index[label] = pd.Index(keys)
        blocks.append((label, keys))

    def node(label: str, values: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, offset[label] + index[label].get_indexer(values))

    executions = frame["execution_id"].astype(object).to_numpy()
    pattern_of = frame["pattern_id"].astype(object).to_numpy()
    target = frame["target_environment"].astype(object).to_numpy()
    source = frame["source_environment"].astype(object)
    has_source = source.notna().to_numpy()
    source_values = source.to_numpy()[has_source]
    gateway = frame["gateway_host"].astype(object).to_numpy()
    rows, resource_code, resource_names = resources or explode_resources(
        frame["resources_deployed"]
    )
    settings = [
        (p.pattern_id, setting_id(k, v))
        for p in patterns
        for k, v in p.configuration_template.items()
    ]
    setting_pattern = np.array([s[0] for s in settings], dtype=object)
    setting_key = np.array([s[1] for s in settings], dtype=object)

    add(Label.EXECUTION, executions)
    add(Label.PATTERN, _unique(np.concatenate([pattern_of, [p.pattern_id for p in patterns]])))
    add(Label.ENVIRONMENT, _unique(np.concatenate([target, source_values])))
    add(Label.GATEWAY, _unique(gateway))
    add(Label.RESOURCE_TYPE, np.array(resource_names, dtype=object))
    add(Label.CONFIG_SETTING, _unique(setting_key))

    exec_node = np.arange(len(executions), dtype=np.int64)
    gateway_env = pd.DataFrame({"g": gateway, "e": target}).drop_duplicates()
    edges: dict[str, tuple[np.ndarray, np.ndarray]] = {
        Rel.FOLLOWS_DEPLOYMENT_PATTERN: (exec_node, node(Label.PATTERN, pattern_of)),
        Rel.DEPLOYED_TO: (exec_node, node(Label.ENVIRONMENT, target)),
        Rel.PROMOTED_FROM: (exec_node[has_source], node(Label.ENVIRONMENT, source_values)),
        Rel.RAN_ON: (exec_node, node(Label.GATEWAY, gateway)),
        Rel.IN_ENVIRONMENT: (
            node(Label.GATEWAY, gateway_env["g"].to_numpy()),
            node(Label.ENVIRONMENT, gateway_env["e"].to_numpy()),
        ),
        Rel.DEPLOYS_RESOURCE: (exec_node[rows], offset[Label.RESOURCE_TYPE] + resource_code),
        Rel.USES_SETTING: (
            node(Label.PATTERN, setting_pattern),
            node(Label.CONFIG_SETTING, setting_key),
        ),
    }
    n = sum(len(k) for _, k in blocks)
    src = np.concatenate([e[0] for e in edges.values()])
    dst = np.concatenate([e[1] for e in edges.values()])
    if len(src) and (src.min() < 0 or dst.min() < 0):
        raise ValueError("structural graph: a relationship points at a node that is not there")
    ones = np.ones(2 * len(src), dtype=np.float32)
    adjacency = sp.coo_matrix(
        (ones, (np.concatenate([src, dst]), np.concatenate([dst, src]))), shape=(n, n)
    ).tocsr()  # duplicates summed: parallel relationships count twice, as in GDS
    labels = np.concatenate([np.full(len(k), str(label), dtype=object) for label, k in blocks])
    keys = np.concatenate([k for _, k in blocks]) if blocks else np.array([], dtype=object)
    return StructuralGraph(
        adjacency=adjacency,
        labels=labels,
        keys=keys,
        relationship_counts={str(r): len(e[0]) for r, e in edges.items()},
    )


def _unique(values: np.ndarray) -> np.ndarray:
    return np.array(sorted(str(v) for v in pd.unique(values)), dtype=object)


def random_vectors(
    node_ids: np.ndarray, dimension: int, random_seed: int, scale: np.ndarray | None = None
) -> np.ndarray:
    """Very sparse random projection vectors (density 1/SPARSITY), one row per node id.

    Entries are +-sqrt(SPARSITY/dimension) with probability 1/(2*SPARSITY) each, else 0, times
    ``scale`` per row. Each row depends only on (seed, node id): a counter-based splitmix64.
    """
    ids = np.asarray(node_ids, dtype=np.uint64)
    seed = _splitmix(np.array([random_seed % 2**64], dtype=np.uint64))[0]
    base = _splitmix(ids ^ seed)
    counters = np.arange(1, dimension + 1, dtype=np.uint64) * _GOLDEN
    bits = _splitmix(base[:, None] + counters[None, :])
    uniform = (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)
    value = np.float32(np.sqrt(SPARSITY / dimension))
    p = 1.0 / (2.0 * SPARSITY)
    out = np.where(uniform < p, value, np.where(uniform < 2 * p, -value, np.float32(0.0)))
    out = out.astype(np.float32)
    if scale is not None:
        out *= np.asarray(scale, dtype=np.float32)[:, None]
    return out


def _splitmix(x: np.ndarray) -> np.ndarray:
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def node_ids(labels: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Stable 64-bit ids from (label, key), so a node's random vector ignores node order."""
    text = pd.Series(labels.astype(str), dtype=object) + "\x1f" + pd.Series(keys, dtype=object)
    return cast(np.ndarray, pd.util.hash_array(text.to_numpy(dtype=object), categorize=False))


def fastrp(
    adjacency: sp.spmatrix,
    *,
    dimension: int = 32,
    iteration_weights: Sequence[float] = DEFAULT_ITERATION_WEIGHTS,
    normalization_strength: float = 0.0,
    node_self_influence: float = 0.0,
    random_seed: int = 0,
    ids: np.ndarray | None = None,
) -> np.ndarray:
    """FastRP embeddings (float32, one row per node) of an undirected graph, as GDS computes them.

    ``adjacency`` must be symmetric (entry = number of relationships between two nodes).
    ``ids`` (uint64 per node) seed each node's random vector; by default the row number.
    """
    if dimension < 1:
        raise ValueError("dimension must be at least 1")
    if not iteration_weights:
        raise ValueError("iteration_weights must not be empty")
    matrix = sp.csr_matrix(adjacency, dtype=np.float32)
    n = matrix.shape[0]
    degree = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.where(degree > 0, np.power(np.maximum(degree, 1.0), normalization_strength), 1.0)
    node = np.arange(n, dtype=np.uint64) if ids is None else np.asarray(ids, dtype=np.uint64)
    previous = random_vectors(node, dimension, random_seed, scale)
    embedding = np.zeros((n, dimension), dtype=np.float32)
    if node_self_influence:
        embedding += np.float32(node_self_influence) * _l2_normalized(previous)
    inverse_degree = (1.0 / np.maximum(degree, 1.0)).astype(np.float32)[:, None]
    for weight in iteration_weights:
        current = _l2_normalized(np.asarray(matrix @ previous) * inverse_degree)
        if weight:
            embedding += np.float32(weight) * current
        previous = current
    return embedding


def _l2_normalized(values: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.einsum("ij,ij->i", values, values, dtype=np.float64))
    norm[norm == 0] = 1.0
    return cast(np.ndarray, (values / norm[:, None]).astype(np.float32))


def fastrp_node_embeddings(
    frame: pd.DataFrame,
    patterns: Sequence[DeploymentPattern],
    *,
    dimension: int = 32,
    iteration_weights: Sequence[float] = DEFAULT_ITERATION_WEIGHTS,
    normalization_strength: float = 0.0,
    random_seed: int = 0,
    labels: Sequence[str] = EMBEDDED_LABELS,
    resources: Exploded | None = None,
) -> pd.DataFrame:
    """FastRP on the structural graph of a history, shaped like ``gds.fastrp_embeddings``.

    Columns ``label``, ``key``, ``embedding`` (list of floats), sorted by label and key.
    """
    graph = structural_graph(frame, patterns, resources)
    vectors = fastrp(
        graph.adjacency,
        dimension=dimension,
        iteration_weights=iteration_weights,
        normalization_strength=normalization_strength,
        random_seed=random_seed,
        ids=node_ids(graph.labels, graph.keys),
    )
    keep = np.isin(graph.labels.astype(str), [str(label) for label in labels])
    out = pd.DataFrame(
        {
            "label": graph.labels[keep].astype(str),
            "key": graph.keys[keep].astype(str),
            "embedding": [row.astype(float).tolist() for row in vectors[keep]],
        }
    )
    out = out.sort_values(["label", "key"], kind="stable").reset_index(drop=True)
    out.attrs[EMBEDDING_SOURCE] = "numpy"
    return out


def embedding_lookup(node_embeddings: pd.DataFrame, label: str) -> dict[str, np.ndarray]:
    """``key -> vector`` for one label of a ``label/key/embedding`` frame (GDS or numpy)."""
    rows = node_embeddings[node_embeddings["label"].astype(str) == str(label)]
    return {
        str(k): np.asarray(v, dtype=np.float32)
        for k, v in zip(rows["key"], rows["embedding"], strict=True)
    }
