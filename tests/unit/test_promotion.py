"""A promotion killed between its alias moves is never served mixed and is repaired by the
next run (real SQLite MLflow registry, a real SIGKILL at that point)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from deploylearn.pipeline import run_training
from deploylearn.serving.models import load_serving_models
from deploylearn.store import open_store
from deploylearn.tracking.registry import Registry
from tests.unit.test_pipeline import Demo, _fast, demo, tracking  # noqa: F401 (fixtures)

KILL_AT_SECOND_ALIAS = """
import os, signal, sys
from pathlib import Path
from mlflow import MlflowClient
from deploylearn.pipeline import run_training
from deploylearn.store import open_store
from tests.unit.test_pipeline import _fast

moves = []
real = MlflowClient.set_registered_model_alias

def move_then_die(self, name, alias, version):
    moves.append(name)
    if len(moves) == 2:  # the success alias has moved, the others not yet
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, name, alias, version)

MlflowClient.set_registered_model_alias = move_then_die
with open_store(sys.argv[1]) as store:
    run_training(
        store,
        _fast(tracking_uri=sys.argv[2], lock_path=Path(sys.argv[3]), force=True, tolerance=0.05),
    )
"""


def test_a_promotion_killed_between_alias_moves_is_not_served_and_is_repaired(
    demo: Demo,  # noqa: F811
    tracking: dict[str, object],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    uri = str(tracking["tracking_uri"])
    with open_store(demo.url) as store:
        first = run_training(store, _fast(**tracking))
    assert first.outcome == "promoted"

    lock = Path(str(tracking["lock_path"]))
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT_SECOND_ALIAS, demo.url, uri, str(lock)],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    registry = Registry(uri)
    champions = registry.champions()
    assert champions["success"] is not None and champions["success"].version == "2"
    assert {champions["duration"].version, champions["similarity"].version} == {"1"}  # type: ignore[union-attr]
    broken_run = str(champions["success"].run_id)
    assert MlflowClient(uri).get_run(broken_run).info.status == "RUNNING"

    with caplog.at_level(logging.WARNING, logger="deploylearn.serving.models"):
        assert load_serving_models(uri) is None
    assert "different training runs" in caplog.text

    with open_store(demo.url) as store:
        repaired = run_training(store, _fast(**tracking))
    assert repaired.outcome == "unchanged"
    assert f"completed the interrupted promotion of run {broken_run}" in repaired.message
    champions = Registry(uri).champions()
    assert {ref.version for ref in champions.values() if ref} == {"2"}
    assert {ref.run_id for ref in champions.values() if ref} == {broken_run}
    run = MlflowClient(uri).get_run(broken_run)
    assert run.info.status == "FINISHED" and "deploylearn.repaired" in run.data.tags
    served = load_serving_models(uri)
    assert served is not None and served.run_id == broken_run
