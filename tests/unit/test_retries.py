"""Retries never duplicate; a write that gives up says what it committed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.errors import StoreUnavailableError
from tests.conftest import make_record, neo4j_url
from tests.unit.test_cli import ign

RECORD = ("deploy", "record", "-n", "HMI update", "-e", "production", "-g", "gw-1")
RECORD += ("-s", "canary", "-r", "project", "--json")


def test_record_needs_a_start_or_an_id_so_a_retry_records_once(duckdb_url: str) -> None:
    result = ign(*RECORD, store=duckdb_url)
    assert result.returncode == 2
    error = json.loads(result.stderr)  # --json: the one error line is a JSON object
    assert error["exit_code"] == 2
    assert "--started-at" in error["error"] and "--execution-id" in error["error"]
    ids = set()
    for _ in range(2):  # the same command, retried
        result = ign(*RECORD, "--started-at", "2025-01-01T10:00:00Z", store=duckdb_url)
        assert result.returncode == 0, result.stderr
        ids.add(json.loads(result.stdout)["execution_id"])
    assert len(ids) == 1
    status = ign("db", "status", "--json", store=duckdb_url)
    assert json.loads(status.stdout)["executions"] == 1


def test_an_ingest_that_gives_up_says_how_many_were_committed(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    source = tmp_path / "h.jsonl"
    source.write_bytes(b"".join(orjson.dumps(make_record(i)) + b"\n" for i in range(50)))
    holder: list[subprocess.Popen[str]] = []

    def lock_after_first_batch(done: int) -> None:
        if done and not holder:  # another process takes the file and keeps it
            script = (
                "import duckdb, sys, time\n"
                f"con = duckdb.connect({str(store)!r})\n"
                "print('locked', flush=True)\n"
                "time.sleep(60)\n"
            )
            holder.append(
                subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
            )
            assert holder[0].stdout is not None and holder[0].stdout.readline() == "locked\n"

    url = f"duckdb://{store}?mode=shared&lock_timeout=0.5"
    try:
        with (
            DeploymentPatternLearner.open(url) as learner,
            pytest.raises(StoreUnavailableError) as info,
        ):
            learner.ingest(source, batch_size=20, progress=lock_after_first_batch)
    finally:
        for process in holder:
            process.kill()
            process.wait()
    assert "20 executions of" in str(info.value)
    assert "ingesting it again adds only the rest" in str(info.value)
    with DeploymentPatternLearner.open(f"duckdb://{store}") as learner:
        assert learner.store.stats().executions == 20
        report = learner.ingest(source)
    assert (report.accepted, report.duplicates) == (30, 20)


@pytest.mark.neo4j
def test_concurrent_ingests_of_one_new_file_on_neo4j_count_duplicates(tmp_path: Path) -> None:
    url = neo4j_url()
    if url is None:
        pytest.skip("no Neo4j server (set DEPLOYLEARN_TEST_NEO4J, see scripts/neo4j-server)")
    with DeploymentPatternLearner.open(url) as learner:
        learner.store.wipe()
    source = tmp_path / "h.jsonl"
    records = [make_record(i, configuration_used={"knob": i % 7}) for i in range(2_500)]
    source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    command = [sys.executable, "-m", "deploylearn", "deploy", "ingest", str(source), "--json"]
    processes = [
        subprocess.Popen([*command, "--store", url], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    reports = []
    for process in processes:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0
        reports.append(json.loads(out))
    assert sum(r["accepted"] for r in reports) == 2_500
    assert sum(r["duplicates"] for r in reports) == 2 * 2_500
    with DeploymentPatternLearner.open(url) as learner:
        stats = learner.store.stats()
        learner.store.wipe()
    assert (stats.executions, stats.patterns) == (2_500, 7)
