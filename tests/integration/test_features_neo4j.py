"""Features on a real Neo4j + GDS server: same history features as DuckDB, GDS FastRP ≈ numpy.

The same demo history goes into Neo4j and into a DuckDB file. Everything that is not an
embedding must be identical; GDS FastRP and the numpy FastRP differ in their random vectors
(GDS seeds by internal node id), so they are compared by what they are for: the ROC AUC of the
same model on a time-ordered holdout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from deploylearn import DeploymentPatternLearner
from deploylearn.demo import demo_records
from deploylearn.features import TrainingFrame, structural_graph
from deploylearn.features.frame import FastRPParams
from deploylearn.pipeline.training_frame import build_training_frame, gds_node_embeddings
from deploylearn.store.neo4j.store import Neo4jStore
from tests.conftest import neo4j_url

pytestmark = pytest.mark.neo4j

EXECUTIONS = 12_000
SEEDS = (0, 1, 2)
# Context columns only: without history features the embeddings carry the pattern, gateway
# and resource information, so a difference between GDS and numpy cannot hide behind them.
_CONTEXT = (
    "deployment_strategy__",
    "target_environment__",
    "source_environment__",
    "deployment_type__",
    "resource__",
    "n_resources",
    "hour",
    "weekday",
    "automation_triggered",
)


@dataclass(frozen=True)
class Stores:
    neo4j: str
    duckdb: str


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    url = neo4j_url()
    if url is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Neo4j server: DEPLOYLEARN_TEST_NEO4J is not set")
        pytest.skip("no Neo4j server (set DEPLOYLEARN_TEST_NEO4J, see scripts/neo4j-server)")
    duckdb_url = f"duckdb://{Path(tmp_path_factory.mktemp('features')) / 'demo.duckdb'}"
    with (
        DeploymentPatternLearner.open(url) as neo4j,
        DeploymentPatternLearner.open(duckdb_url) as duckdb,
    ):
        neo4j.store.wipe()
        for records in demo_records(EXECUTIONS, seed=0, batch_size=EXECUTIONS):
            for learner in (neo4j, duckdb):
                report = learner.record_executions(records, batch_size=2_000)
                assert report.accepted == len(records), report.as_dict()
    yield Stores(url, duckdb_url)


def _auc(frame: TrainingFrame, columns: list[str] | None = None) -> float:
    train, test = frame.time_split(0.7)
    columns = columns or frame.feature_names
    model = HistGradientBoostingClassifier(max_iter=60, early_stopping=False, random_state=0)
    model.fit(train.X[columns], train.y)
    return float(roc_auc_score(test.y, model.predict_proba(test.X[columns])[:, 1]))


def _context_and_embeddings(frame: TrainingFrame) -> list[str]:
    return [c for c in frame.feature_names if c.startswith((*_CONTEXT, "emb_"))]


def test_neo4j_and_duckdb_give_the_same_features(stores: Stores) -> None:
    with (
        DeploymentPatternLearner.open(stores.neo4j) as neo4j,
        DeploymentPatternLearner.open(stores.duckdb) as duckdb,
    ):
        from_neo4j = build_training_frame(neo4j.store, embeddings="none")
        from_duckdb = build_training_frame(duckdb.store, embeddings="none")
    assert len(from_neo4j) == EXECUTIONS
    assert from_neo4j.feature_names == from_duckdb.feature_names
    pd.testing.assert_frame_equal(from_neo4j.X, from_duckdb.X)
    pd.testing.assert_series_equal(from_neo4j.y, from_duckdb.y)
    left, right = from_neo4j.meta.copy(), from_duckdb.meta.copy()
    for meta in (left, right):
        meta["started_at"] = pd.to_datetime(meta["started_at"], utc=True).dt.as_unit("us")
    pd.testing.assert_frame_equal(left.astype(str), right.astype(str))


def test_gds_and_numpy_fastrp_are_equally_useful(stores: Stores) -> None:
    """Same graph, same parameters, same model: holdout AUCs within 0.02 of each other."""
    rows = []
    with DeploymentPatternLearner.open(stores.neo4j) as learner:
        store = learner.store
        assert isinstance(store, Neo4jStore)
        auto = build_training_frame(store, embedding_dimension=32)
        assert auto.embeddings == "gds"  # "auto" on Neo4j
        for seed in SEEDS:
            gds = build_training_frame(store, embeddings="gds", random_seed=seed)
            numpy = build_training_frame(store, embeddings="numpy", random_seed=seed)
            assert gds.feature_names == numpy.feature_names
            assert not gds.X.filter(like="emb_").isna().any().any()
            columns = _context_and_embeddings(gds)
            rows.append(
                {
                    "seed": seed,
                    "gds_context": _auc(gds, columns),
                    "numpy_context": _auc(numpy, columns),
                    "gds_all": _auc(gds),
                    "numpy_all": _auc(numpy),
                    "gds_s": gds.timings.get("embeddings_s", np.nan),
                    "numpy_s": numpy.timings.get("embeddings_s", np.nan),
                }
            )
        none = build_training_frame(store, embeddings="none")
    table = pd.DataFrame(rows)
    context_only = [c for c in none.feature_names if c.startswith(_CONTEXT)]
    print(
        f"\n{table.round(4).to_string(index=False)}\n"
        f"no embeddings: context only {_auc(none, context_only):.4f}, all {_auc(none):.4f}"
    )
    means = table.mean()
    assert abs(means["gds_context"] - means["numpy_context"]) <= 0.02, table
    assert abs(means["gds_all"] - means["numpy_all"]) <= 0.02, table
    assert (table[["gds_context", "numpy_context", "gds_all", "numpy_all"]] > 0.6).all().all()


def test_gds_embeddings_are_structural_and_reproducible(stores: Stores) -> None:
    with DeploymentPatternLearner.open(stores.neo4j) as learner:
        params = FastRPParams(dimension=16, random_seed=4)
        first = gds_node_embeddings(learner.store, params)
        second = gds_node_embeddings(learner.store, params)
        patterns = {p.pattern_id for p in learner.store.patterns()}
    pd.testing.assert_frame_equal(first, second)
    assert set(first.loc[first["label"] == "DeploymentPattern", "key"]) == patterns
    assert {"Gateway", "ResourceType", "Environment", "ConfigSetting"} <= set(first["label"])


def test_numpy_graph_is_the_gds_projection(stores: Stores) -> None:
    """Node and relationship counts of the numpy graph equal GDS's projection of the store."""
    from deploylearn.store.neo4j import gds
    with DeploymentPatternLearner.open(stores.neo4j) as learner:
        store = learner.store
        assert isinstance(store, Neo4jStore)
        graph = structural_graph(store.executions_frame(), store.patterns())
        projection = gds.project_structure(store, graph_name="deploylearn-features-test")
        assert projection is not None
        try:
            assert projection.node_count == graph.node_count
            assert projection.relationship_count == 2 * graph.relationship_count
        finally:
            gds.drop_projection(store, projection.graph_name)
