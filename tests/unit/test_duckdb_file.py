"""Properties of the embedded store that only its file can show."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.errors import ConflictError, InvalidStoreUrlError, StoreUnavailableError
from deploylearn.store import open_store
from deploylearn.store.duckdb.sql import LEGACY_COUNT_COLUMNS
from tests.conftest import failed_record, make_record

SECRET = "Hunter2-PLAINTEXT-CANARY"


def _bytes_of(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.iterdir() if p.is_file())


@pytest.mark.parametrize("secret_key", [None, "a passphrase of the operator"])
def test_secret_never_reaches_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret_key: str | None
) -> None:
    if secret_key:
        monkeypatch.setenv("DEPLOYLEARN_SECRET_KEY", secret_key)
    else:
        monkeypatch.delenv("DEPLOYLEARN_SECRET_KEY", raising=False)
    url = f"duckdb://{tmp_path / 'db' / 'store.duckdb'}"
    record = make_record(
        1,
        execution_name="VISIBLE-CANARY deployment",
        configuration_used={"db_password": SECRET, "nested": {"api_token": SECRET}},
        execution_log=f"login password={SECRET}",
        lessons_learned=[f"rotate secret: {SECRET}"],
    )
    with DeploymentPatternLearner.open(url) as learner:
        execution_id = learner.record_deployment_execution(**record)
        stored = learner.store.get_execution(execution_id)
        revealed = learner.get_execution(execution_id, decrypt=True) if secret_key else None
    raw = _bytes_of(tmp_path / "db")
    assert b"VISIBLE-CANARY" in raw  # control: the file is searchable as plain bytes
    assert SECRET.encode() not in raw
    assert stored is not None
    value = stored["configuration_used"]["db_password"]
    if secret_key:
        assert value.startswith("enc:v1:")
        assert revealed is not None and revealed["configuration_used"]["db_password"] == SECRET
    else:
        assert value == "<redacted>"


def test_store_urls(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "plain.duckdb")) as store:
        assert store.url == f"duckdb://{tmp_path / 'plain.duckdb'}"
    with pytest.raises(InvalidStoreUrlError, match="not understood"):
        open_store("postgres://x")
    with pytest.raises(InvalidStoreUrlError, match="mode"):
        open_store(f"duckdb://{tmp_path / 'x.duckdb'}?mode=weird")


def test_locked_file_gives_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(path)!r})
            print("ready", flush=True)
            time.sleep(30)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreUnavailableError, match="cannot open DuckDB store"):
            open_store(f"duckdb://{path}?lock_timeout=0.3")
    finally:
        holder.kill()
        holder.wait()


def test_threads_option_in_url(tmp_path: Path) -> None:
    with open_store(f"duckdb://{tmp_path / 't.duckdb'}?threads=2") as store:
        assert store._con.execute("SELECT current_setting('threads')").fetchone()[0] == 2
    with pytest.raises(InvalidStoreUrlError, match="threads"):
        open_store(f"duckdb://{tmp_path / 't.duckdb'}?threads=0")


def test_store_with_stored_counts_is_migrated(tmp_path: Path) -> None:
    """Files written when counts were stored columns open fine: the columns are dropped and
    counts come from the executions, as before."""
    url = f"duckdb://{tmp_path / 'legacy.duckdb'}"
    with DeploymentPatternLearner.open(url) as learner:
        for i in range(4):
            learner.record_deployment_execution(**make_record(i))
        learner.record_deployment_execution(**failed_record(4))
        before = learner.store.patterns(), learner.store.stats()
        con = learner.store._con
        for table, columns in LEGACY_COUNT_COLUMNS.items():
            for column in columns:
                kind = "TIMESTAMPTZ" if column.endswith(("_seen", "_used")) else "BIGINT DEFAULT 7"
                con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    with DeploymentPatternLearner.open(url) as learner:
        learner.record_deployment_execution(**make_record(5))
        columns = {
            r[0]
            for r in learner.store._con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'patterns'"
            ).fetchall()
        }
        after = learner.store.patterns()
    assert "success_count" not in columns
    assert (before[0][0].success_count, before[0][0].failure_count) == (4, 1)
    assert (after[0].success_count, after[0].failure_count) == (5, 1)
    assert before[1].successes == 4 and before[1].failures == 1


def test_single_write_retry_after_new_definitions(tmp_path: Path) -> None:
    """A failed run founds an issue and a scenario in a transaction; its retry hits the
    primary key on the one-statement path and is still a no-op, a changed copy a conflict."""
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 's.duckdb'}") as learner:
        record = failed_record(1, rollback_triggered=True, rollback_successful=False)
        first = learner.record_deployment_execution(**record)
        assert learner.record_deployment_execution(**record) == first
        with pytest.raises(ConflictError):
            learner.record_deployment_execution(**{**record, "user_id": "someone.else"})
        learner.record_deployment_execution(**failed_record(2))  # known issue: one statement
        stats = learner.store.stats()
        scenarios = learner.store.rollback_scenarios()
    assert (stats.executions, stats.failures, stats.issues, stats.rollback_scenarios) == (
        2,
        2,
        1,
        1,
    )
    assert [(s.success_count, s.failure_count) for s in scenarios] == [(0, 1)]


def test_failed_batch_leaves_no_pattern_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails after planning rolls back; the patterns it planned must not stay in
    the store's in-memory index, or the retried batch would never write them."""
    from deploylearn.store.duckdb import store as duckdb_store
    batch = [make_record(i, configuration_used={"canary_knob": "only-here"}) for i in range(3)]
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'f.duckdb'}") as learner:
        original = duckdb_store._insert_definitions

        def fail(*args: object, **kwargs: object) -> None:
            raise duckdb_store.duckdb.IOException("disk full (simulated)")

        monkeypatch.setattr(duckdb_store, "_insert_definitions", fail)
        with pytest.raises(Exception, match="disk full"):
            learner.record_executions(batch)
        assert learner.store.stats().executions == 0
        monkeypatch.setattr(duckdb_store, "_insert_definitions", original)
        report = learner.record_executions(batch)
        patterns = {p.pattern_id for p in learner.store.patterns()}
        used = set(learner.store.executions_frame()["pattern_id"])
    assert report.accepted == 3
    assert used and used <= patterns
