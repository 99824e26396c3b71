"""Shared fixtures: a record factory and a store per backend for the contract suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from deploylearn.pipeline import TrainingRun

BASE_TIME = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def make_record(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid execution in the seed's keywords; ``i`` spreads times and ids."""
    start = BASE_TIME + timedelta(minutes=30 * i)
    record: dict[str, Any] = {
        "execution_id": f"t-{i:06d}",
        "execution_name": f"Production HMI Update {i}",
        "deployment_type": "update",
        "target_environment": "production",
        "source_environment": "staging",
        "gateway_host": f"prod-gateway-0{i % 3}.plant.local",
        "deployment_strategy": "blue_green",
        "resources_deployed": ["project", "database"],
        "configuration_used": {
            "backup_enabled": True,
            "validation_timeout": 300,
            "rollback_threshold": 0.95,
            "build_number": 1000 + i,
        },
        "status": "completed",
        "started_at": start.isoformat(),
        "completed_at": (start + timedelta(minutes=15)).isoformat(),
        "failure_reasons": [],
        "rollback_triggered": False,
        "rollback_successful": None,
        "user_id": "alice.ops",
        "automation_triggered": True,
        "execution_log": "deploy started\ndeploy finished",
        "performance_data": {"cpu_percent": 35.5, "memory_mb": 812},
        "lessons_learned": [],
    }
    record.update(overrides)
    return record


def failed_record(i: int, **overrides: Any) -> dict[str, Any]:
    return make_record(
        i,
        status="failed",
        failure_reasons=[
            f"Gateway prod-gateway-0{i % 3}.plant.local unreachable after {i % 4 + 1} retries"
        ],
        **overrides,
    )


@pytest.fixture
def duckdb_url(tmp_path: Path) -> str:
    return f"duckdb://{tmp_path / 'store.duckdb'}"


def neo4j_url() -> str | None:
    return os.environ.get("DEPLOYLEARN_TEST_NEO4J")


@pytest.fixture(params=["duckdb", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One URL per backend; the contract suite runs every test on each."""
    if request.param == "duckdb":
        yield f"duckdb://{tmp_path / 'store.duckdb'}"
        return
    url = neo4j_url()
    if url is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Neo4j server: DEPLOYLEARN_TEST_NEO4J is not set")
        pytest.skip("no Neo4j server (set DEPLOYLEARN_TEST_NEO4J, see scripts/neo4j-server)")
    from deploylearn.store import open_store

    with open_store(url) as store:
        store.wipe()
    yield url


@pytest.fixture(autouse=True)
def isolated_mlflow(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """No test (nor an ``ign`` child process) sees the repository's own ``mlruns/`` champion.

    Tests that train set their own tracking URI; everyone else serves without a model.
    """
    folder = tmp_path_factory.mktemp("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")


def train_quick_champion(url: str, folder: Path, tracking_uri: str) -> TrainingRun:
    """Train and promote a small champion on the store at ``url`` in the registry at
    ``tracking_uri`` (seconds on a few thousand runs: no tuning, 8-dim embeddings)."""
    from deploylearn.pipeline import TrainingSettings, run_training
    from deploylearn.store import open_store

    settings = TrainingSettings(
        tune=False,
        importance_repeats=1,
        embedding_dimension=8,
        success_params={"max_iter": 60, "min_samples_leaf": 40},
        tracking_uri=tracking_uri,
        lock_path=folder / "train.lock",
    )
    with open_store(url) as store:
        run = run_training(store, settings)
    assert run.outcome == "promoted", run.message
    return run
