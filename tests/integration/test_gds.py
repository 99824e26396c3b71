"""GDS on a real Neo4j + GDS server: structural projection, FastRP, pattern similarity."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.store.neo4j import gds
from deploylearn.store.neo4j.store import Neo4jStore
from tests.conftest import failed_record, make_record

pytestmark = pytest.mark.neo4j

STRUCTURAL_LABELS = {
    "DeploymentExecution",
    "DeploymentPattern",
    "Environment",
    "Gateway",
    "ResourceType",
    "ConfigSetting",
}
STRUCTURAL_TYPES = {
    "FOLLOWS_DEPLOYMENT_PATTERN",
    "DEPLOYED_TO",
    "PROMOTED_FROM",
    "RAN_ON",
    "IN_ENVIRONMENT",
    "DEPLOYS_RESOURCE",
    "USES_SETTING",
}

# Four patterns with known overlaps of ``key=value`` settings:
# A and B share 4 of 6 distinct settings (Jaccard 4/6), A and C 2 of 8 (2/8), D shares none.
BASE = {
    "backup_enabled": True,
    "validation_timeout": 300,
    "rollback_threshold": 0.95,
    "health_check_interval": 30,
    "switch_traffic_delay": 60,
}
CONFIGS = {
    "A": ("blue_green", BASE),
    "B": ("blue_green", {**BASE, "switch_traffic_delay": 180}),
    "C": (
        "blue_green",
        {
            **BASE,
            "switch_traffic_delay": 240,
            "health_check_interval": 90,
            "validation_timeout": 900,
        },
    ),
    "D": ("rolling", {"batch_size": 2, "backup_enabled": False, "drain_timeout": 45}),
}


@dataclass(frozen=True)
class Seeded:
    url: str
    records: list[dict[str, Any]]
    pattern_of: dict[str, str]  # "A".."D" -> pattern_id


def _records() -> list[dict[str, Any]]:
    records = []
    i = 0
    for name, (strategy, config) in CONFIGS.items():
        for j in range(6):
            env = "production" if j % 2 == 0 else "staging"
            host = f"{'prod' if env == 'production' else 'stg'}-gateway-0{j % 3}.plant.local"
            common: dict[str, Any] = {
                "execution_id": f"gds-{name}-{j}",
                "deployment_strategy": strategy,
                "configuration_used": {**config, "build_number": 100 + i},
                "target_environment": env,
                "source_environment": "staging" if env == "production" else None,
                "gateway_host": host,
                "resources_deployed": ["project", "database"] if j % 3 else ["tag_provider"],
            }
            if j == 4:  # a failure: an Issue node and a CAUSED_BY_ISSUE edge
                record = failed_record(i, **common)
            elif j == 5:  # a rollback: a RollbackScenario and a TRIGGERS_ROLLBACK edge
                record = make_record(
                    i,
                    status="rolled_back",
                    rollback_triggered=True,
                    rollback_successful=True,
                    failure_reasons=["health check failed on tag provider"],
                    **common,
                )
            else:
                record = make_record(i, **common)
            records.append(record)
            i += 1
    return records


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    url = os.environ.get("DEPLOYLEARN_TEST_NEO4J")
    if url is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Neo4j server: DEPLOYLEARN_TEST_NEO4J is not set")
        pytest.skip("no Neo4j server (set DEPLOYLEARN_TEST_NEO4J, see scripts/neo4j-server)")
    records = _records()
    with DeploymentPatternLearner.open(url) as learner:
        learner.store.wipe()
        report = learner.record_executions(records)
        assert report.accepted == len(records), report.as_dict()
        pattern_of = {}
        for name in CONFIGS:
            execution = learner.store.get_execution(f"gds-{name}-0")
            assert execution is not None
            pattern_of[name] = execution["pattern_id"]
    assert len(set(pattern_of.values())) == len(CONFIGS), "each config must be its own pattern"
    yield Seeded(url, records, pattern_of)


@pytest.fixture
def store(seeded: Seeded) -> Iterator[Neo4jStore]:
    with DeploymentPatternLearner.open(seeded.url) as learner:
        assert isinstance(learner.store, Neo4jStore)
        yield learner.store


@dataclass(frozen=True)
class Expected:
    keys: dict[str, set[str]]  # per structural label but ConfigSetting
    settings: int  # distinct key=value settings over all pattern templates
    edges: int  # structural relationships, one direction


def _expected(seeded: Seeded, store: Neo4jStore) -> Expected:
    """What the structural graph must hold, computed from the records and patterns."""
    records = seeded.records
    patterns = store.patterns()
    gateways = {(r["gateway_host"], r["target_environment"]) for r in records}
    keys = {
        "DeploymentExecution": {r["execution_id"] for r in records},
        "DeploymentPattern": {p.pattern_id for p in patterns},
        "Environment": {r["target_environment"] for r in records}
        | {r["source_environment"] for r in records if r["source_environment"]},
        "Gateway": {host for host, _ in gateways},
        "ResourceType": {x for r in records for x in r["resources_deployed"]},
    }
    settings = {(k, orjson.dumps(v)) for p in patterns for k, v in p.configuration_template.items()}
    edges = sum(  # FOLLOWS_DEPLOYMENT_PATTERN, DEPLOYED_TO, RAN_ON, PROMOTED_FROM, resources
        3 + bool(r["source_environment"]) + len(r["resources_deployed"]) for r in records
    )
    edges += len(gateways)  # IN_ENVIRONMENT
    edges += sum(len(p.configuration_template) for p in patterns)  # USES_SETTING
    return Expected(keys, len(settings), edges)


def test_projection_holds_only_structure(seeded: Seeded, store: Neo4jStore) -> None:
    # Make every outcome-bearing node and edge exist first, so leaving them out is a choice.
    assert gds.write_pattern_similarity(store, similarity_cutoff=0.01) > 0
    stats = store.stats()
    assert stats.issues > 0 and stats.rollback_scenarios > 0 and stats.metrics > 0

    projection = gds.project_structure(store)
    assert projection is not None
    try:
        labels, types = gds.projection_schema(store, projection.graph_name)
        assert labels == STRUCTURAL_LABELS
        assert types == STRUCTURAL_TYPES
        assert set(projection.node_labels) == STRUCTURAL_LABELS
        assert set(projection.relationship_types) == STRUCTURAL_TYPES

        expected = _expected(seeded, store)
        assert projection.relationship_count == 2 * expected.edges  # undirected: both ways
        assert projection.node_count == (
            sum(len(v) for v in expected.keys.values()) + expected.settings
        )

        # Idempotent: projecting again replaces the graph of the same name.
        again = gds.project_structure(store)
        assert again is not None
        assert (again.node_count, again.relationship_count) == (
            projection.node_count,
            projection.relationship_count,
        )
    finally:
        assert gds.drop_projection(store, projection.graph_name)
    assert not gds.drop_projection(store, projection.graph_name)


def test_fastrp_is_reproducible(store: Neo4jStore) -> None:
    first = gds.fastrp_embeddings(store, dimension=32, random_seed=7)
    second = gds.fastrp_embeddings(store, dimension=32, random_seed=7)
    assert list(first.columns) == ["label", "key", "embedding"]
    assert len(first) > 0
    assert first[["label", "key"]].equals(second[["label", "key"]])
    assert first["embedding"].tolist() == second["embedding"].tolist()

    other_seed = gds.fastrp_embeddings(store, dimension=32, random_seed=8)
    assert other_seed["embedding"].tolist() != first["embedding"].tolist()


def test_embeddings_cover_every_pattern_gateway_environment_resource(
    seeded: Seeded, store: Neo4jStore
) -> None:
    frame = gds.fastrp_embeddings(store)
    expected = _expected(seeded, store)
    by_label = frame.groupby("label")["key"].apply(set).to_dict()
    for label in ("DeploymentPattern", "Gateway", "Environment", "ResourceType"):
        assert by_label[label] == expected.keys[label], label
    assert "DeploymentExecution" not in by_label  # executions only on request
    assert len(by_label["ConfigSetting"]) == expected.settings
    assert not frame.duplicated(["label", "key"]).any()
    for vector in frame["embedding"]:
        assert len(vector) == 64
        assert all(math.isfinite(x) for x in vector)
        assert any(x != 0.0 for x in vector)  # every node is connected


def test_execution_embeddings_on_request(seeded: Seeded, store: Neo4jStore) -> None:
    frame = gds.fastrp_embeddings(store, dimension=16, include_executions=True)
    executions = set(frame.loc[frame["label"] == "DeploymentExecution", "key"])
    assert executions == {r["execution_id"] for r in seeded.records}


def test_embeddings_of_a_kept_projection_match_a_fresh_one(store: Neo4jStore) -> None:
    fresh = gds.fastrp_embeddings(store, dimension=16)
    projection = gds.project_structure(store)
    assert projection is not None
    try:
        reused = gds.fastrp_embeddings(store, dimension=16, projection=projection)
        reused_twice = gds.fastrp_embeddings(store, dimension=16, projection=projection)
    finally:
        gds.drop_projection(store, projection.graph_name)
    assert reused["embedding"].tolist() == fresh["embedding"].tolist()
    assert reused_twice["embedding"].tolist() == fresh["embedding"].tolist()


def test_similarity_scores_and_idempotent_rerun(seeded: Seeded, store: Neo4jStore) -> None:
    written = gds.write_pattern_similarity(store, top_k=5, similarity_cutoff=0.01)
    edges = gds.pattern_similarity_edges(store)
    assert written == len(edges) > 0
    patterns = set(seeded.pattern_of.values())
    for edge in edges:
        assert 0.0 < edge["score"] <= 1.0
        assert edge["source"] != edge["target"]
        assert {edge["source"], edge["target"]} <= patterns

    again = gds.write_pattern_similarity(store, top_k=5, similarity_cutoff=0.01)
    assert again == written
    assert gds.pattern_similarity_edges(store) == edges  # replaced, not added to
    with gds.gds_client(store) as client:
        assert not client.graph.exists(gds.SIMILARITY_GRAPH)


def test_more_shared_settings_mean_more_similar(seeded: Seeded, store: Neo4jStore) -> None:
    gds.write_pattern_similarity(store, top_k=5, similarity_cutoff=0.01)
    a, b, c, d = (seeded.pattern_of[k] for k in "ABCD")
    similar = gds.similar_patterns(store, a, limit=5)
    ranked = [row["pattern_id"] for row in similar]
    assert ranked[:2] == [b, c]
    assert d not in ranked  # no setting in common
    scores = {row["pattern_id"]: row["score"] for row in similar}
    assert scores[b] == pytest.approx(4 / 6)
    assert scores[c] == pytest.approx(2 / 8)
    assert scores[b] > scores[c]
    # Symmetric measure, written from both ends.
    back = {row["pattern_id"]: row["score"] for row in gds.similar_patterns(store, b, limit=5)}
    assert back[a] == pytest.approx(scores[b])


def test_similarity_cutoff_and_top_k(seeded: Seeded, store: Neo4jStore) -> None:
    a, b = seeded.pattern_of["A"], seeded.pattern_of["B"]
    gds.write_pattern_similarity(store, top_k=5, similarity_cutoff=0.5)
    ranked = [row["pattern_id"] for row in gds.similar_patterns(store, a)]
    assert ranked == [b]  # 2/8 is below the cutoff

    gds.write_pattern_similarity(store, top_k=1, similarity_cutoff=0.01)
    sources = [e["source"] for e in gds.pattern_similarity_edges(store)]
    assert len(sources) == len(set(sources))  # at most one per pattern
    assert set(sources) == {seeded.pattern_of[k] for k in "ABC"}  # D shares nothing

    for bad in ({"similarity_cutoff": 0.0}, {"top_k": 0}):
        with pytest.raises(ValueError):
            gds.write_pattern_similarity(store, **bad)  # type: ignore[arg-type]
