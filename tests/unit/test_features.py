"""Features: point-in-time history, configuration, FastRP, and the label-shuffle leak test."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from deploylearn import DeploymentPatternLearner
from deploylearn.demo import demo_records
from deploylearn.domain.records import DeploymentPattern
from deploylearn.features import (
    TrainingFrame,
    context_features,
    fastrp,
    fastrp_node_embeddings,
    features_for_candidates,
    knob_features,
    knob_table,
    point_in_time_features,
    resource_features,
    structural_graph,
    time_features,
    training_frame_from_history,
)
from deploylearn.features import history as history_module
from deploylearn.features.embeddings import SPARSITY, node_ids, random_vectors, setting_id
from deploylearn.pipeline.training_frame import build_training_frame

T0 = datetime(2025, 3, 1, tzinfo=UTC)
WINDOW_DAYS = 2.0
KEYS = {
    "pattern": ("pattern_id",),
    "gateway": ("gateway_host",),
    "environment": ("target_environment",),
    "pattern_environment": ("pattern_id", "target_environment"),
    "pattern_gateway": ("pattern_id", "gateway_host"),
    "gateway_resources": ("gateway_host", "resource_set"),
}


# ------------------------------------------------------------------ frames by hand
def _row(i: int, start: datetime, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "execution_id": f"x-{i:05d}",
        "pattern_id": "pat-a",
        "deployment_type": "update",
        "target_environment": "production",
        "source_environment": "staging",
        "gateway_host": "gw-1",
        "deployment_strategy": "blue_green",
        "resources_deployed": ["project"],
        "status": "completed",
        "outcome": "success",
        "started_at": start,
        "completed_at": start + timedelta(minutes=10),
        "duration_seconds": 600.0,
        "rollback_triggered": False,
        "rollback_successful": None,
        "automation_triggered": True,
        "user_id": "alice",
        "issue_ids": [],
    }
    row.update(overrides)
    return row


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("started_at", "completed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _random_frame(n: int = 400, seed: int = 1) -> pd.DataFrame:
    """Many ties (starts on a coarse grid), overlapping runs, pending rows, missing ends."""
    rng = np.random.default_rng(seed)
    resources = ["project", "database", "historian", "perspective"]
    rows = []
    for i in range(n):
        start = T0 + timedelta(hours=int(rng.integers(0, 24 * 8)))
        outcome = rng.choice(["success", "failure", None], p=[0.6, 0.3, 0.1])
        completed = start + timedelta(minutes=int(rng.integers(0, 240)))
        if rng.random() < 0.05:
            completed = None
        picked = sorted(rng.choice(resources, size=int(rng.integers(0, 3)), replace=False))
        rows.append(
            _row(
                i,
                start,
                pattern_id=f"pat-{rng.integers(0, 4)}",
                gateway_host=f"gw-{rng.integers(0, 3)}",
                target_environment=str(rng.choice(["staging", "production"])),
                source_environment=rng.choice(["test", None]),
                resources_deployed=[str(r) for r in picked],
                outcome=outcome,
                status={"success": "completed", "failure": "failed", None: "in_progress"}[outcome],
                completed_at=completed,
            )
        )
    return _frame(rows).sort_values(["started_at", "execution_id"]).reset_index(drop=True)


def _naive(frame: pd.DataFrame, window_days: float) -> pd.DataFrame:
    """The definition, one row at a time: what the vectorized code must reproduce."""
    start = frame["started_at"].tolist()
    known = [
        s if (pd.isna(c) or c < s) else c
        for s, c in zip(frame["started_at"], frame["completed_at"], strict=True)
    ]
    outcome = [o if isinstance(o, str) else None for o in frame["outcome"]]
    window = timedelta(days=window_days)
    resources = [set(r) for r in frame["resources_deployed"]]
    pattern = frame["pattern_id"].tolist()
    out: dict[str, list[float]] = {}

    def stats(i: int, same: list[int]) -> dict[str, float]:
        t = start[i]
        done = [j for j in same if outcome[j] is not None and known[j] < t]
        s = sum(outcome[j] == "success" for j in done)
        f = sum(outcome[j] == "failure" for j in done)
        recent = [j for j in done if known[j] >= t - window]
        rs = sum(outcome[j] == "success" for j in recent)
        rf = len(recent) - rs
        previous = [start[j] for j in same if start[j] < t]
        failed = [known[j] for j in done if outcome[j] == "failure"]
        latest = [outcome[j] == "success" for j in sorted(done, key=lambda j: (known[j], j))]
        last = latest[-history_module.LAST_RUNS :]
        return {
            "last_outcome": float(latest[-1]) if latest else np.nan,
            "last_rate": (sum(last) + 1) / (len(last) + 2),
            "successes": s,
            "failures": f,
            "rate": (s + 1) / (s + f + 2),
            "log_runs": np.log1p(s + f),
            "recent_runs": rs + rf,
            "recent_rate": (rs + 1) / (rs + rf + 2),
            "since_previous_s": (t - max(previous)).total_seconds() if previous else np.nan,
            "since_failure_s": (t - max(failed)).total_seconds() if failed else np.nan,
        }

    columns = {**frame, "resource_set": ["|".join(sorted(set(r))) for r in resources]}
    for prefix, keys in KEYS.items():
        key = list(zip(*(list(columns[k]) for k in keys), strict=True))
        for i in range(len(frame)):
            same = [j for j in range(len(frame)) if key[j] == key[i]]
            for name, value in stats(i, same).items():
                out.setdefault(f"{prefix}_{name}", []).append(value)
    for i in range(len(frame)):
        per_resource = []
        for r in sorted(resources[i]):
            same = [j for j in range(len(frame)) if pattern[j] == pattern[i] and r in resources[j]]
            per_resource.append(stats(i, same))
        nan = np.nan
        has = bool(per_resource)
        failures = [
            p["since_failure_s"] for p in per_resource if not np.isnan(p["since_failure_s"])
        ]
        out.setdefault("pattern_resource_successes", []).append(
            sum(p["successes"] for p in per_resource) if has else nan
        )
        out.setdefault("pattern_resource_failures", []).append(
            sum(p["failures"] for p in per_resource) if has else nan
        )
        rates = [p["rate"] for p in per_resource]
        out.setdefault("pattern_resource_rate_min", []).append(min(rates) if has else nan)
        out.setdefault("pattern_resource_rate_mean", []).append(np.mean(rates) if has else nan)
        out.setdefault("pattern_resource_log_runs_min", []).append(
            min(p["log_runs"] for p in per_resource) if has else nan
        )
        out.setdefault("pattern_resource_since_failure_s", []).append(
            min(failures) if failures else nan
        )
    return pd.DataFrame(out, index=frame.index)


# ------------------------------------------------------------------ point in time
def test_history_matches_the_definition_row_by_row() -> None:
    frame = _random_frame(300)
    fast = point_in_time_features(frame, window_days=WINDOW_DAYS)
    slow = _naive(frame, WINDOW_DAYS)
    assert set(fast.columns) == set(slow.columns)
    pd.testing.assert_frame_equal(fast[slow.columns], slow, check_dtype=False, atol=1e-9)


def test_history_packs_or_ranks_times_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """The int64 packing and its rank fallback (huge key × time spans) agree exactly."""
    frame = _random_frame(250, seed=3)
    packed = point_in_time_features(frame, window_days=WINDOW_DAYS)
    monkeypatch.setattr(history_module, "_COMPOSITE_LIMIT", 1)
    ranked = point_in_time_features(frame, window_days=WINDOW_DAYS)
    pd.testing.assert_frame_equal(packed, ranked)


def test_history_ignores_row_order_and_keeps_the_index() -> None:
    frame = _random_frame(200, seed=4)
    shuffled = frame.sample(frac=1.0, random_state=0)
    shuffled.index = shuffled.index + 1000
    expected = point_in_time_features(frame).set_axis(frame.index + 1000)
    got = point_in_time_features(shuffled)
    pd.testing.assert_frame_equal(got.loc[expected.index], expected)


def test_outcomes_at_or_after_t_never_change_features_up_to_t() -> None:
    frame = _random_frame(400, seed=5)
    t = frame["started_at"].iloc[len(frame) // 2]
    later = frame["started_at"] >= t
    before = point_in_time_features(frame)
    rng = np.random.default_rng(0)
    for _ in range(3):
        altered = frame.copy()
        altered.loc[later, "outcome"] = rng.choice(
            np.array(["success", "failure", None], dtype=object), size=int(later.sum())
        )
        after = point_in_time_features(altered)
        upto = frame["started_at"] <= t  # includes the rows AT t: they were altered too
        pd.testing.assert_frame_equal(after[upto], before[upto])
        assert not after[~upto].equals(before[~upto])  # later rows do see the change


def test_ties_at_the_same_instant_do_not_see_each_other() -> None:
    rows = [
        _row(0, T0, completed_at=T0),  # finished the instant it started
        _row(1, T0, outcome="failure", status="failed", completed_at=T0),
        _row(2, T0 + timedelta(seconds=1)),
    ]
    features = point_in_time_features(_frame(rows))
    assert features["pattern_successes"].tolist() == [0, 0, 1]
    assert features["pattern_failures"].tolist() == [0, 0, 1]
    assert np.isnan(features["pattern_since_previous_s"].iloc[:2]).all()
    assert features["pattern_since_previous_s"].iloc[2] == 1.0
    assert features["pattern_since_failure_s"].iloc[2] == 1.0


def test_an_outcome_counts_only_once_it_is_known() -> None:
    minutes = [timedelta(minutes=m) for m in range(200)]
    rows = [
        _row(0, T0, completed_at=T0 + minutes[100], outcome="failure", status="failed"),
        _row(1, T0 + minutes[50], completed_at=T0 + minutes[60]),  # row 0 still running
        _row(2, T0 + minutes[150], completed_at=T0 + minutes[160]),
        _row(3, T0 + minutes[160], completed_at=None),  # no end: known from its start
        _row(4, T0 + minutes[161]),
    ]
    features = point_in_time_features(_frame(rows))
    assert features["gateway_failures"].tolist() == [0, 0, 1, 1, 1]
    # row 3 sees row 1 only (row 2 ends at 160, not before 160); row 4 sees rows 1, 2 and 3
    assert features["gateway_successes"].tolist() == [0, 0, 1, 1, 3]
    assert features["gateway_since_previous_s"].tolist()[1:] == [3000.0, 6000.0, 600.0, 60.0]
    assert features["gateway_since_failure_s"].iloc[2] == 50 * 60


def test_recent_window_and_smoothed_rate() -> None:
    rows = [_row(i, T0 + timedelta(days=i), outcome="failure", status="failed") for i in range(5)]
    rows.append(_row(5, T0 + timedelta(days=10)))
    features = point_in_time_features(_frame(rows), window_days=2.5)
    last = features.iloc[5]
    assert (last["pattern_successes"], last["pattern_failures"]) == (0, 5)
    assert last["pattern_rate"] == pytest.approx(1 / 7)
    assert last["pattern_recent_runs"] == 0  # the failures are 6-10 days old
    assert features.iloc[4]["pattern_recent_runs"] == 2  # days 2 and 3 (completed +10 min)


def test_pattern_resource_aggregates_over_the_rows_resources() -> None:
    rows = [
        _row(0, T0, resources_deployed=["database"], outcome="failure", status="failed"),
        _row(1, T0 + timedelta(hours=1), resources_deployed=["project"]),
        _row(2, T0 + timedelta(hours=2), resources_deployed=["project"]),
        _row(3, T0 + timedelta(hours=3), resources_deployed=["database", "project"]),
        _row(4, T0 + timedelta(hours=4), resources_deployed=[]),
        _row(5, T0 + timedelta(hours=5), resources_deployed=["project"], pattern_id="pat-b"),
    ]
    features = point_in_time_features(_frame(rows)).iloc[3]
    assert features["pattern_resource_successes"] == 2
    assert features["pattern_resource_failures"] == 1
    assert features["pattern_resource_rate_min"] == pytest.approx(1 / 3)  # database: 0 of 1
    assert features["pattern_resource_rate_mean"] == pytest.approx((1 / 3 + 3 / 4) / 2)
    assert features["pattern_resource_log_runs_min"] == pytest.approx(np.log(2))
    assert features["pattern_resource_since_failure_s"] == pytest.approx(3 * 3600 - 600)
    empty = point_in_time_features(_frame(rows)).iloc[4]
    assert np.isnan(empty["pattern_resource_successes"])
    other = point_in_time_features(_frame(rows)).iloc[5]
    assert other["pattern_resource_successes"] == 0  # another pattern's history is not its own


def test_history_is_vectorized_enough() -> None:
    """Guards against an accidental per-row loop: 200k rows in a few seconds at most."""
    n = 200_000
    rng = np.random.default_rng(0)
    start = pd.Timestamp(T0) + pd.to_timedelta(np.sort(rng.integers(0, 10**7, n)), unit="s")
    frame = pd.DataFrame(
        {
            "execution_id": [f"x{i}" for i in range(n)],
            "pattern_id": rng.integers(0, 40, n).astype(str),
            "gateway_host": rng.integers(0, 14, n).astype(str),
            "target_environment": rng.integers(0, 5, n).astype(str),
            "resources_deployed": [["a", "b"]] * n,
            "outcome": rng.choice(["success", "failure"], n),
            "started_at": start,
            "completed_at": start + pd.Timedelta(minutes=10),
        }
    )
    import time

    began = time.perf_counter()
    point_in_time_features(frame)
    assert time.perf_counter() - began < 10.0


# ------------------------------------------------------------------ configuration & context
PATTERNS = [
    DeploymentPattern(
        pattern_id="pat-a",
        pattern_name="a",
        deployment_strategy="blue_green",
        configuration_template={
            "backup_enabled": True,
            "validation_timeout": 300,
            "security_policy": "strict",
            "tags": ["x"],
        },
    ),
    DeploymentPattern(
        pattern_id="pat-b",
        pattern_name="b",
        deployment_strategy="rolling",
        configuration_template={
            "backup_enabled": False,
            "validation_timeout": 120.5,
            "security_policy": "Standard",
            "batch_size": 2,
        },
    ),
    DeploymentPattern(
        pattern_id="pat-c",
        pattern_name="c",
        deployment_strategy="direct",
        configuration_template={"name": "n1", "batch_size": True},
    ),
]


def test_knob_table_types() -> None:
    table = knob_table(PATTERNS, max_categories=2)
    assert table.loc["pat-a", "cfg__backup_enabled"] == 1.0
    assert table.loc["pat-b", "cfg__backup_enabled"] == 0.0
    assert np.isnan(table.loc["pat-c", "cfg__backup_enabled"])  # missing knob: NaN
    assert table.loc["pat-b", "cfg__validation_timeout"] == 120.5
    assert table.loc["pat-a", "cfg__security_policy__strict"] == 1.0
    assert table.loc["pat-b", "cfg__security_policy__standard"] == 1.0  # case folded
    assert np.isnan(table.loc["pat-c", "cfg__security_policy__strict"])
    assert table.loc["pat-c", "cfg__batch_size"] == 1.0  # bool among numbers: a number
    assert "cfg__name__n1" in table.columns
    assert not any(c.startswith("cfg__tags") for c in table.columns)  # lists left out
    assert table.dtypes.eq(np.float64).all()
    narrow = knob_table(PATTERNS, max_categories=1)
    assert not any(c.startswith("cfg__security_policy") for c in narrow.columns)


def test_knobs_resources_context_and_time_join_by_row() -> None:
    rows = [
        _row(0, T0, pattern_id="pat-b", resources_deployed=["project", "database"]),
        _row(1, T0 + timedelta(hours=30), source_environment=None, automation_triggered=False),
        _row(2, T0 + timedelta(hours=31), pattern_id="pat-unknown", resources_deployed=[]),
    ]
    frame = _frame(rows)
    knobs = knob_features(frame, PATTERNS)
    assert knobs["cfg__validation_timeout"].tolist()[:2] == [120.5, 300.0]
    assert knobs.iloc[2].isna().all()
    res = resource_features(frame)
    assert res[["resource__database", "resource__project"]].to_numpy().tolist() == [
        [1.0, 1.0],
        [0.0, 1.0],
        [0.0, 0.0],
    ]
    assert res["n_resources"].tolist() == [2.0, 1.0, 0.0]
    context = context_features(frame)
    assert context["source_environment__none"].tolist() == [0.0, 1.0, 0.0]
    assert context["automation_triggered"].tolist() == [1.0, 0.0, 1.0]
    assert context["deployment_strategy__blue_green"].tolist() == [1.0, 1.0, 1.0]
    times = time_features(frame)
    assert times["hour"].tolist() == [0.0, 6.0, 7.0]
    assert times["weekday"].tolist() == [5.0, 6.0, 6.0]  # 2025-03-01 is a Saturday
    assert times["days_since_first_record"].tolist() == pytest.approx([0, 1.25, 31 / 24])
    assert times["pattern_age_days"].tolist() == pytest.approx([0.0, 0.0, 0.0])


# ------------------------------------------------------------------ FastRP
def _naive_fastrp(
    adjacency: sp.csr_matrix, initial: np.ndarray, weights: list[float], self_influence: float
) -> np.ndarray:
    """GDS's FastRP loop, node by node, from given (already degree-scaled) initial vectors."""
    dense = adjacency.toarray()
    n = dense.shape[0]
    previous = initial.astype(np.float64)
    norm0 = np.linalg.norm(previous, axis=1, keepdims=True)
    embedding = self_influence * previous / np.where(norm0 == 0, 1, norm0)
    for weight in weights:
        current = np.zeros_like(previous)
        for node in range(n):
            for other in range(n):
                current[node] += dense[node, other] * previous[other]
            current[node] /= max(dense[node].sum(), 1)
            norm = np.linalg.norm(current[node])
            current[node] /= norm if norm else 1
        embedding = embedding + weight * current
        previous = current
    return embedding


def _graph(edges: list[tuple[int, int]], n: int) -> sp.csr_matrix:
    rows = [a for a, b in edges] + [b for a, b in edges]
    cols = [b for a, b in edges] + [a for a, b in edges]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def test_fastrp_is_the_gds_algorithm() -> None:
    rng = np.random.default_rng(0)
    edges = [(int(a), int(b)) for a, b in rng.integers(0, 30, (80, 2)) if a != b]
    edges += [(0, 1), (0, 1)]  # a parallel relationship counts twice
    adjacency = _graph(edges, 31)  # node 30 is isolated
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    for strength, weights, self_influence in [
        (0.0, [0.0, 1.0, 1.0], 0.0),
        (-0.5, [1.0, 0.5], 0.7),
    ]:
        got = fastrp(
            adjacency,
            dimension=16,
            iteration_weights=weights,
            normalization_strength=strength,
            node_self_influence=self_influence,
            random_seed=3,
        )
        scale = np.where(degree > 0, np.maximum(degree, 1) ** strength, 1.0)
        initial = random_vectors(np.arange(31, dtype=np.uint64), 16, 3, scale)
        expected = _naive_fastrp(adjacency, initial, weights, self_influence)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert got.dtype == np.float32


def test_random_vectors_are_very_sparse_projections() -> None:
    vectors = random_vectors(np.arange(20_000, dtype=np.uint64), 32, 0)
    values = np.unique(vectors)
    assert np.allclose(values, [-np.sqrt(SPARSITY / 32), 0.0, np.sqrt(SPARSITY / 32)])
    assert (vectors != 0).mean() == pytest.approx(1 / SPARSITY, abs=0.01)
    assert (vectors > 0).mean() == pytest.approx(1 / (2 * SPARSITY), abs=0.01)
    # A node's vector depends on (seed, id) only: order and neighbours do not matter.
    ids = np.array([7, 3, 11], dtype=np.uint64)
    np.testing.assert_array_equal(random_vectors(ids, 8, 1)[0], random_vectors(ids[:1], 8, 1)[0])
    assert not np.array_equal(random_vectors(ids, 8, 1), random_vectors(ids, 8, 2))


def test_fastrp_is_reproducible_and_sees_structure() -> None:
    # Two communities of 20 nodes, dense inside, one bridge between them.
    rng = np.random.default_rng(1)
    edges = []
    for offset in (0, 20):
        for _ in range(120):
            a, b = rng.integers(0, 20, 2) + offset
            if a != b:
                edges.append((int(a), int(b)))
    edges.append((0, 20))
    adjacency = _graph(edges, 40)
    first = fastrp(adjacency, dimension=32, random_seed=5)
    again = fastrp(adjacency, dimension=32, random_seed=5)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, fastrp(adjacency, dimension=32, random_seed=6))
    unit = first / np.linalg.norm(first, axis=1, keepdims=True)
    cosine = unit @ unit.T
    same = np.add.outer(np.arange(40) < 20, np.arange(40) < 20) != 1
    off_diagonal = ~np.eye(40, dtype=bool)
    inside = cosine[same & off_diagonal].mean()
    across = cosine[~same].mean()
    assert inside > 0.5 > across + 0.3, (inside, across)


def test_structural_graph_mirrors_the_neo4j_projection() -> None:
    rows = [
        _row(0, T0, pattern_id="pat-a", resources_deployed=["project", "database"]),
        _row(1, T0 + timedelta(hours=1), pattern_id="pat-b", source_environment=None),
        _row(2, T0 + timedelta(hours=2), pattern_id="pat-a", target_environment="staging",
             gateway_host="gw-2", source_environment="test", outcome=None, status="pending"),
        _row(3, T0 + timedelta(hours=3), pattern_id="pat-a", gateway_host="gw-2"),
    ]  # fmt: skip
    frame = _frame(rows)
    graph = structural_graph(frame, PATTERNS[:2])
    settings = {setting_id(k, v) for p in PATTERNS[:2] for k, v in p.configuration_template.items()}
    assert graph.label_counts() == {
        "DeploymentExecution": 4,
        "DeploymentPattern": 2,
        "Environment": 3,  # production, staging, test (sources count)
        "Gateway": 2,
        "ResourceType": 2,
        "ConfigSetting": len(settings),
    }
    assert graph.relationship_counts == {
        "FOLLOWS_DEPLOYMENT_PATTERN": 4,
        "DEPLOYED_TO": 4,
        "PROMOTED_FROM": 3,
        "RAN_ON": 4,
        "IN_ENVIRONMENT": 3,  # (gw-1, production), (gw-2, staging), (gw-2, production)
        "DEPLOYS_RESOURCE": 5,
        "USES_SETTING": 8,
    }
    assert graph.adjacency.sum() == 2 * graph.relationship_count  # undirected, as in GDS
    assert (graph.adjacency != graph.adjacency.T).nnz == 0
    assert 'security_policy="strict"' in set(graph.keys)  # the Neo4j store's setting id


def test_node_embeddings_are_shaped_like_gds_and_ignore_outcomes() -> None:
    frame = _random_frame(200, seed=8)
    patterns = [
        DeploymentPattern(
            pattern_id=f"pat-{i}",
            pattern_name=str(i),
            deployment_strategy="rolling",
            configuration_template={"batch_size": i},
        )
        for i in range(4)
    ]
    embeddings = fastrp_node_embeddings(frame, patterns, dimension=8, random_seed=1)
    assert list(embeddings.columns) == ["label", "key", "embedding"]
    assert "DeploymentExecution" not in set(embeddings["label"])
    assert set(embeddings.loc[embeddings["label"] == "DeploymentPattern", "key"]) == {
        f"pat-{i}" for i in range(4)
    }
    assert all(len(v) == 8 for v in embeddings["embedding"])
    flipped = frame.assign(outcome=frame["outcome"].map({"success": "failure"}).fillna("success"))
    again = fastrp_node_embeddings(flipped, patterns, dimension=8, random_seed=1)
    pd.testing.assert_frame_equal(embeddings, again)
    ids = node_ids(np.array(["A", "A"], dtype=object), np.array(["k1", "k2"], dtype=object))
    assert ids.dtype == np.uint64 and ids[0] != ids[1]


# ------------------------------------------------------------------ the training frame
@dataclass(frozen=True)
class Demo:
    url: str
    frame: pd.DataFrame
    patterns: list[DeploymentPattern]


DEMO_EXECUTIONS = 12_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    url = f"duckdb://{tmp_path_factory.mktemp('features') / 'demo.duckdb'}"
    with DeploymentPatternLearner.open(url) as learner:
        for records in demo_records(DEMO_EXECUTIONS, seed=0, batch_size=DEMO_EXECUTIONS):
            report = learner.record_executions(records, batch_size=len(records))
            assert report.accepted == len(records)
        # a pending run: structure and recency, but not a training row
        pending = dict(records[-1], execution_id="pending-1", status="in_progress")
        pending.update(completed_at=None, failure_reasons=[], rollback_triggered=False)
        learner.record_deployment_execution(**pending)
        yield Demo(url, learner.store.executions_frame(), learner.store.patterns())


def _auc(frame: TrainingFrame) -> float:
    """ROC AUC on the last 30 % by time of a model fitted on the first 70 %."""
    train, test = frame.time_split(0.7)
    model = HistGradientBoostingClassifier(max_iter=60, early_stopping=False, random_state=0)
    model.fit(train.X, train.y)
    return float(roc_auc_score(test.y, model.predict_proba(test.X)[:, 1]))


def test_shuffled_labels_leave_no_skill(demo: Demo) -> None:
    """The leak test: outcomes shuffled before any feature is built -> AUC 0.5 ± 0.03.

    History features are rebuilt from the shuffled outcomes; embeddings are structural, so
    they are computed once (shuffling cannot change them, which another test checks).
    """
    embeddings = fastrp_node_embeddings(demo.frame, demo.patterns, dimension=32)
    real = training_frame_from_history(demo.frame, demo.patterns, embeddings=embeddings)
    real_auc = _auc(real)
    shuffled_aucs = []
    for seed in range(3):
        shuffled = demo.frame.copy()
        permuted = np.random.default_rng(seed).permutation(shuffled["outcome"].to_numpy())
        shuffled["outcome"] = permuted
        frame = training_frame_from_history(shuffled, demo.patterns, embeddings=embeddings)
        shuffled_aucs.append(_auc(frame))
    mean = float(np.mean(shuffled_aucs))
    print(f"\nAUC real {real_auc:.4f}; shuffled {[round(a, 4) for a in shuffled_aucs]}")
    assert abs(mean - 0.5) <= 0.03, shuffled_aucs
    assert all(abs(a - 0.5) <= 0.05 for a in shuffled_aucs), shuffled_aucs
    assert real_auc > 0.6, real_auc
    # The harness has power: a column that is the row's own (shuffled) label 80 % of the time,
    # like a status field slipped into X, is caught at once.
    noise = np.random.default_rng(9).random(len(frame)) < 0.2
    leak = np.where(noise, 1 - frame.y, frame.y)
    leaky = TrainingFrame(
        X=frame.X.assign(leak=leak),
        y=frame.y,
        meta=frame.meta,
        feature_names=[*frame.feature_names, "leak"],
    )
    assert _auc(leaky) > 0.7


def test_build_training_frame_on_duckdb(demo: Demo) -> None:
    with DeploymentPatternLearner.open(demo.url) as learner:
        frame = build_training_frame(learner.store, embedding_dimension=8)
        plain = build_training_frame(learner.store, embeddings="none")
        since = demo.frame["started_at"].iloc[len(demo.frame) // 2].to_pydatetime()
        later = build_training_frame(learner.store, embeddings="none", since=since)
        with pytest.raises(ValueError, match="Neo4j"):
            build_training_frame(learner.store, embeddings="gds")
    labelled = demo.frame["outcome"].notna().sum()
    assert len(frame) == labelled == DEMO_EXECUTIONS  # the pending run is no training row
    assert frame.embeddings == "numpy" and plain.embeddings == "none"
    assert frame.X.dtypes.eq(np.float32).all()
    assert list(frame.X.columns) == frame.feature_names
    assert set(frame.y.unique()) == {0, 1}
    assert frame.y.mean() == pytest.approx((demo.frame["outcome"] == "success").mean(), abs=0.01)
    assert list(frame.meta.columns) == [
        "execution_id",
        "started_at",
        "pattern_id",
        "target_environment",
        "gateway_host",
        "deployment_strategy",
    ]
    assert frame.meta["started_at"].is_monotonic_increasing
    for prefix in ("emb_pattern_", "emb_gateway_", "emb_resources_"):
        assert sum(c.startswith(prefix) for c in frame.feature_names) == 8
    assert not any(c.startswith("emb_") for c in plain.feature_names)
    assert not frame.X.filter(like="emb_").isna().any().any()
    forbidden = {"status", "outcome", "duration_seconds", "rollback_triggered", "issue_ids"}
    assert not forbidden & set(frame.feature_names)
    # ``since`` drops earlier rows but their history still counts for later ones.
    assert later.meta["started_at"].min() >= pd.Timestamp(since)
    tail = plain.X[plain.meta["started_at"] >= pd.Timestamp(since)].reset_index(drop=True)
    pd.testing.assert_frame_equal(later.X, tail)


def test_a_candidate_gets_the_features_of_the_run_it_mirrors(demo: Demo) -> None:
    training = training_frame_from_history(demo.frame, demo.patterns, embeddings="numpy")
    picks = [100, 5_000, len(training) - 1]
    mirrored = training.meta.iloc[picks]
    source = demo.frame.set_index("execution_id").loc[mirrored["execution_id"]]
    candidates = source[
        [
            "pattern_id",
            "target_environment",
            "gateway_host",
            "resources_deployed",
            "source_environment",
            "deployment_type",
            "automation_triggered",
            "started_at",
        ]
    ].reset_index(drop=True)
    got = features_for_candidates(
        demo.frame,
        demo.patterns,
        candidates,
        feature_names=training.feature_names,
        node_embeddings=training.node_embeddings,
    )
    expected = training.X.iloc[picks].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    # A new context: unseen gateway (no history, NaN embedding), now, no source.
    fresh = candidates.iloc[:1].assign(gateway_host="new-gw").drop(columns=["started_at"])
    row = features_for_candidates(
        demo.frame,
        demo.patterns,
        fresh,
        feature_names=training.feature_names,
        node_embeddings=training.node_embeddings,
    ).iloc[0]
    assert row["gateway_successes"] == 0 and np.isnan(row["gateway_since_previous_s"])
    assert np.isnan(row["emb_gateway_0"]) and not np.isnan(row["emb_pattern_0"])
    same_pattern = demo.frame["pattern_id"] == fresh["pattern_id"].iloc[0]
    assert row["pattern_successes"] == (same_pattern & (demo.frame["outcome"] == "success")).sum()


def test_features_import_no_driver_or_mlflow(tmp_path: Path) -> None:
    code = (
        "import sys, deploylearn.features\n"
        "bad = [m for m in ('duckdb', 'neo4j', 'graphdatascience', 'mlflow') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
