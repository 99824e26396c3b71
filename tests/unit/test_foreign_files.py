"""Files that are not deploylearn's are never changed; a read never creates a store."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.errors import StoreUnavailableError
from deploylearn.store import open_store
from tests.conftest import make_record
from tests.unit.test_cli import ign, one_line_error


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _foreign_duckdb(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE patterns (pattern_id VARCHAR, success_count INTEGER)")
    con.execute("INSERT INTO patterns VALUES ('theirs', 7)")
    con.close()


def _newer_store(path: Path) -> None:
    with open_store(f"duckdb://{path}") as store:
        store.close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()


def _text(path: Path) -> None:
    path.write_text("not a database\n")


def _sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (a INTEGER)")
    con.commit()
    con.close()


def _empty_duckdb(path: Path) -> None:
    duckdb.connect(str(path)).close()


FOREIGN: dict[str, Callable[[Path], None]] = {
    "foreign duckdb": _foreign_duckdb,
    "newer schema": _newer_store,
    "text file": _text,
    "sqlite file": _sqlite,
    "empty duckdb": _empty_duckdb,
    "empty file": lambda path: path.write_bytes(b""),
}


@pytest.mark.parametrize("kind", list(FOREIGN))
def test_a_foreign_file_is_refused_and_left_byte_for_byte(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "theirs.duckdb"
    FOREIGN[kind](path)
    before = _sha(path)
    listing = sorted(p.name for p in tmp_path.iterdir())
    for create in (True, False):
        with pytest.raises(StoreUnavailableError, match=r"refusing|not a DuckDB"):
            open_store(f"duckdb://{path}", create=create)
    with pytest.raises(StoreUnavailableError):
        DeploymentPatternLearner.open(f"duckdb://{path}?mode=shared")
    assert _sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no WAL, no temporary left


def test_foreign_table_keeps_its_columns_and_newer_version_stays(tmp_path: Path) -> None:
    theirs, newer = tmp_path / "theirs.duckdb", tmp_path / "newer.duckdb"
    _foreign_duckdb(theirs)
    _newer_store(newer)
    for path in (theirs, newer):
        with pytest.raises(StoreUnavailableError):
            open_store(f"duckdb://{path}")
    con = duckdb.connect(str(theirs), read_only=True)
    assert con.execute("SELECT * FROM patterns").fetchall() == [("theirs", 7)]
    assert [r[0] for r in con.execute("SHOW TABLES").fetchall()] == ["patterns"]
    con.close()
    con = duckdb.connect(str(newer), read_only=True)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("99",)
    con.close()


@pytest.mark.parametrize("kind", ["foreign duckdb", "newer schema", "text file", "sqlite file"])
def test_cli_refuses_a_foreign_file_with_one_line_and_rc_4(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "theirs.duckdb"
    FOREIGN[kind](path)
    before = _sha(path)
    for args in (
        ("db", "status"),
        (
            "deploy",
            "record",
            "-e",
            "production",
            "-g",
            "gw",
            "-s",
            "canary",
            "-r",
            "project",
            "--started-at",
            "2025-01-01T10:00:00Z",
        ),
    ):
        result = ign(*args, store=f"duckdb://{path}")
        assert result.returncode == 4, result.stderr
        assert str(path) in one_line_error(result)
    assert _sha(path) == before


def test_a_read_never_creates_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "store.duckdb"
    with pytest.raises(StoreUnavailableError, match="no store at"):
        open_store(f"duckdb://{missing}", create=False)
    result = ign("db", "status", store=f"duckdb://{missing}")
    assert result.returncode == 4
    assert "no store at" in one_line_error(result)
    result = ign("deploy", "analytics", store=f"duckdb://{missing}")
    assert result.returncode == 4, result.stderr
    assert not (tmp_path / "typo").exists()
    assert ign("db", "init", store=f"duckdb://{missing}").returncode == 0
    assert missing.is_file()


def test_own_store_reopens_and_legacy_layout_is_migrated_and_audited(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    with DeploymentPatternLearner.open(f"duckdb://{path}") as learner:
        learner.record_deployment_execution(**make_record(1))
    with open_store(f"duckdb://{path}", create=False) as store:
        assert store.stats().executions == 1
        assert [e.action for e in store.audit_log()].count("create_schema") == 1
    # a store of the first layout: no marker row, counts kept in patterns
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM meta WHERE key = 'store_format'")
    con.execute("ALTER TABLE patterns ADD COLUMN success_count INTEGER")
    con.close()
    with open_store(f"duckdb://{path}", create=False) as store:
        assert store.stats().executions == 1
        actions = [e.action for e in store.audit_log()]
    assert "migrate_schema" in actions
    con = duckdb.connect(str(path), read_only=True)
    columns = {r[0] for r in con.execute("DESCRIBE patterns").fetchall()}
    con.close()
    assert "success_count" not in columns


def test_wipe_keeps_the_audit_trail_and_records_itself(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    with DeploymentPatternLearner.open(url) as learner:
        learner.record_deployment_execution(**make_record(1))
        learner.record_deployment_execution(**make_record(2))
        learner.record_environment_adaptation(
            adaptation_name="staging to production",
            source_environment="staging",
            target_environment="production",
            adaptation_rules=["raise timeout"],
            original_configuration={"timeout": 30},
            adapted_configuration={"timeout": 60},
        )
        learner.store.wipe(actor="tester")
        entries = learner.store.audit_log()
        assert learner.store.stats().executions == 0
    actions = [e.action for e in entries]
    assert actions[0] == "wipe" and entries[0].actor == "tester"
    assert "erased 2 executions" in entries[0].detail
    assert {"record_adaptation", "create_schema"} <= set(actions)
