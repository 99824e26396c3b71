"""Ingest with preparation in worker processes gives exactly what one process gives."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import orjson
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.demo import demo_records
from deploylearn.errors import WorkerError
from deploylearn.ingest import runner as ingest_runner
from deploylearn.ingest import workers as ingest_workers
from deploylearn.store import Store
from deploylearn.store.base import TableWriter
from deploylearn.store.duckdb.store import DuckDBStore
from deploylearn.store.neo4j.store import Neo4jStore

from ..conftest import failed_record, make_record

pytestmark = pytest.mark.skipif(not ingest_workers.can_fork(), reason="workers are forked")


def _history(tmp_path: Path) -> Path:
    """Demo history with bad lines, a repeated line, a reused id and secrets, as JSON Lines."""
    records = [r for batch in demo_records(1_200, seed=3, batch_size=400) for r in batch]
    lines = [orjson.dumps(r) for r in records]
    lines.insert(10, b"{not json")
    lines.insert(300, orjson.dumps(make_record(1, status="exploded")))
    lines.insert(301, orjson.dumps(make_record(2, started_at="2025-03-01T08:00:00")))
    lines.insert(700, lines[500])  # a retry: same id, same content
    conflict = orjson.loads(lines[600])
    conflict["user_id"] = "mallory"
    lines.insert(900, orjson.dumps(conflict))  # same id, other content
    secret = failed_record(3, configuration_used={"db_password": "Hunter2-XYZZY"})
    lines.append(orjson.dumps(secret))
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _answer(learner: DeploymentPatternLearner) -> dict[str, object]:
    stats = learner.store.stats().as_dict()
    stats.pop("url")
    stats.pop("audit_entries")
    frame = learner.store.executions_frame().sort_values("execution_id")
    return {
        "stats": stats,
        "patterns": sorted(
            (p.pattern_id, p.success_count, p.failure_count) for p in learner.store.patterns()
        ),
        "assignment": list(zip(frame["execution_id"], frame["pattern_id"], strict=True)),
        "issues": learner.store.issues().sort_values("issue_id").to_dict("records"),
        "scenarios": sorted(
            (s.scenario_id, s.success_count, s.failure_count)
            for s in learner.store.rollback_scenarios()
        ),
        "records": orjson.dumps(
            sorted(
                (r for batch in learner.store.iter_executions() for r in batch),
                key=lambda r: r["execution_id"],
            ),
            default=str,
        ),
    }


def _ingest(url: str, path: Path, workers: int) -> tuple[dict, dict, dict]:
    with DeploymentPatternLearner.open(url) as learner:
        first = learner.ingest(path, workers=workers).as_dict()
        again = learner.ingest(path, workers=workers).as_dict()
        return first, again, _answer(learner)


def _same_report(a: dict, b: dict) -> None:
    key = lambda e: (e["line"], e["field"], e["message"])  # noqa: E731
    assert {k: v for k, v in a.items() if k != "errors"} == {
        k: v for k, v in b.items() if k != "errors"
    }
    assert sorted(a["errors"], key=key) == sorted(b["errors"], key=key)


def test_workers_give_the_same_store_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_workers, "CHUNK_ROWS", 250)  # several chunks, several in flight
    path = _history(tmp_path)
    one = _ingest(f"duckdb://{tmp_path / 'one.duckdb'}", path, workers=1)
    two = _ingest(f"duckdb://{tmp_path / 'two.duckdb'}", path, workers=2)

    report, again, answer = two
    assert (report["accepted"], report["duplicates"], report["rejected"]) == (1_201, 1, 4)
    assert {(e["line"], e["field"]) for e in report["errors"]} >= {
        (11, "record"), (301, "status"), (302, "started_at"), (901, "execution_id")
    }
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 1_202, 4)
    _same_report(one[0], report)
    _same_report(one[1], again)
    assert answer == one[2]
    assert b"Hunter2-XYZZY" not in (tmp_path / "two.duckdb").read_bytes()


def test_workers_take_csv_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_workers, "CHUNK_ROWS", 300)
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'a.duckdb'}") as learner:
        learner.ingest(_history(tmp_path), workers=1)
        learner.export(tmp_path / "h.csv")
        expected = _answer(learner)
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'b.duckdb'}") as learner:
        report = learner.ingest(tmp_path / "h.csv", workers=2)
        assert (report.accepted, report.rejected) == (1_201, 0)
        assert _answer(learner) == expected


def test_encrypted_secrets_written_by_workers_can_be_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYLEARN_SECRET_KEY", "correct horse battery staple")
    monkeypatch.setattr(ingest_workers, "CHUNK_ROWS", 400)
    path = _history(tmp_path)
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 's.duckdb'}") as learner:
        report = learner.ingest(path, workers=2)
        stored = learner.store.get_execution("t-000003")
    assert report.accepted == 1_201
    assert stored is not None
    assert stored["configuration_used"]["db_password"] != "Hunter2-XYZZY"
    assert b"Hunter2-XYZZY" not in (tmp_path / "s.duckdb").read_bytes()


def test_workers_are_chosen_by_file_size_and_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "h.jsonl"
    path.write_bytes(orjson.dumps(make_record(1)) + b"\n")
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'w.duckdb'}") as learner:
        assert learner.ingest_workers(path, None) == 1  # small file
        assert learner.ingest_workers(path, 3) == 3  # asked for
        monkeypatch.setattr(ingest_runner, "PARALLEL_MIN_BYTES", 1)
        monkeypatch.setattr(ingest_runner.os, "cpu_count", lambda: 64)
        assert learner.ingest_workers(path, None) == ingest_runner.MAX_WORKERS
        row_store = cast(Store, object())  # any store that is not a TableWriter (Neo4j)
        assert ingest_runner.ingest_workers(row_store, path, 3) == 1  # a store that writes rows
    assert issubclass(DuckDBStore, TableWriter) and not issubclass(Neo4jStore, TableWriter)


def _dies_on_second_chunk(chunk: list) -> ingest_workers.PreparedChunk:
    if chunk[0][0] > 1:  # not the chunk that starts at line 1
        os._exit(9)
    return _prepare_chunk(chunk)


_prepare_chunk = ingest_workers._prepare_chunk


def test_a_worker_that_dies_fails_the_ingest_and_keeps_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_workers, "CHUNK_ROWS", 300)
    monkeypatch.setattr(ingest_workers, "_prepare_chunk", _dies_on_second_chunk)
    path = _history(tmp_path)
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'd.duckdb'}") as learner:
        with pytest.raises(WorkerError, match="worker process"):
            learner.ingest(path, workers=2)
        written = learner.store.stats().executions
        monkeypatch.setattr(ingest_workers, "_prepare_chunk", _prepare_chunk)
        report = learner.ingest(path, workers=2)
    assert written in (0, 299)  # the first chunk (one bad line), if written before the failure
    assert report.accepted + written == 1_201
