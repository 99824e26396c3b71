"""``export`` writes a whole file or none, never over an existing one unasked, never a file
named ``-``, never a format its extension does not say."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.errors import OutputFileError
from deploylearn.ingest.formats import write_records
from tests.conftest import make_record
from tests.unit.test_cli import ign, one_line_error


@pytest.fixture
def stored(tmp_path: Path) -> str:
    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    with DeploymentPatternLearner.open(url) as learner:
        learner.record_executions([make_record(i) for i in range(5)])
    return url


def _batches_then(failure: BaseException) -> Iterator[list[dict[str, Any]]]:
    yield [make_record(1), make_record(2)]
    raise failure


def test_an_interrupted_export_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "backup.jsonl"
    target.write_bytes(b"the previous backup\n")
    with pytest.raises(KeyboardInterrupt):
        write_records(target, _batches_then(KeyboardInterrupt()), "jsonl")
    assert target.read_bytes() == b"the previous backup\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.jsonl"]


def test_a_killed_export_never_leaves_a_file_under_the_name(tmp_path: Path) -> None:
    target = tmp_path / "backup.jsonl"
    script = f"""
import os, signal
from pathlib import Path
from deploylearn.ingest.formats import write_records
from tests.conftest import make_record
def batches():
    yield [make_record(i) for i in range(100)]
    os.kill(os.getpid(), signal.SIGKILL)
write_records(Path({str(target)!r}), batches(), "jsonl")
"""
    result = subprocess.run([sys.executable, "-c", script], env=os.environ, timeout=60)
    assert result.returncode == -signal.SIGKILL
    assert not target.exists()


def test_export_refuses_an_existing_file_unless_forced(stored: str, tmp_path: Path) -> None:
    target = tmp_path / "backup.jsonl"
    target.write_bytes(b"keep me\n")
    with DeploymentPatternLearner.open(stored) as learner:
        with pytest.raises(OutputFileError, match="--force"):
            learner.export(target)
        assert target.read_bytes() == b"keep me\n"
        assert learner.export(target, overwrite=True) == 5
    assert len(target.read_bytes().splitlines()) == 5
    result = ign("deploy", "export", str(target), store=stored)
    assert result.returncode == 2
    assert "--force" in one_line_error(result)
    assert ign("deploy", "export", str(target), "--force", store=stored).returncode == 0


def test_export_refuses_unknown_extensions_and_names_the_supported(
    stored: str, tmp_path: Path
) -> None:
    result = ign("deploy", "export", str(tmp_path / "x.parquet"), store=stored)
    assert result.returncode == 2
    line = one_line_error(result)
    assert ".parquet" in line and ".jsonl" in line and ".csv" in line
    assert not (tmp_path / "x.parquet").exists()
    result = ign("deploy", "export", str(tmp_path / "x.csv"), "--format", "json", store=stored)
    assert result.returncode == 2
    assert not (tmp_path / "x.csv").exists()


def test_export_dash_writes_standard_output(
    stored: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    command = [sys.executable, "-m", "deploylearn", "deploy", "export", "-", "--store", stored]
    result = subprocess.run(command, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [r["execution_id"] for r in rows] == [f"t-{i:06d}" for i in range(5)]
    assert not (tmp_path / "-").exists()


def test_unwritable_or_missing_paths_are_one_line(stored: str, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    result = ign("deploy", "export", str(blocked / "x.jsonl"), store=stored)
    assert result.returncode == 2
    assert str(blocked) in one_line_error(result)
    result = ign("deploy", "record", "--from", str(tmp_path / "missing.json"), store=stored)
    assert result.returncode == 2
    assert "missing.json" in one_line_error(result)
