"""What a new user of ``ign`` meets first: --version, errors that say what is wrong (as JSON
under --json), options that are never silently ignored, stdin, and tables at 80 columns."""

from __future__ import annotations

import csv
import io
import json
from importlib.metadata import version
from pathlib import Path

import orjson
import pandas as pd
import pytest
from rich.console import Console

from deploylearn.cli import common, train_commands
from deploylearn.ingest.formats import write_records
from tests.conftest import failed_record, make_record
from tests.unit.test_cli import ign, one_line_error


def _jsonl(records: list[dict[str, object]]) -> str:
    return "".join(orjson.dumps(r).decode() + "\n" for r in records)


def _exported(url: str, tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "exported.jsonl"
    assert ign("deploy", "export", str(path), store=url).returncode == 0
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_version() -> None:
    result = ign("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"deploylearn {version('deploylearn')}"


def test_analytics_plot_as_the_readme_shows_it(duckdb_url: str, tmp_path: Path) -> None:
    records = [make_record(i) for i in range(30)] + [failed_record(i) for i in range(30, 40)]
    history = tmp_path / "h.jsonl"
    history.write_text(_jsonl(records))
    assert ign("deploy", "ingest", str(history), store=duckdb_url).returncode == 0
    plot = tmp_path / "prod.png"
    args = ["deploy", "analytics", "-e", "production", "-d", "30", "-m", "duration,success_rate"]
    result = ign(*args, "--plot", str(plot), store=duckdb_url)
    assert result.returncode == 0, result.stderr
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert f"plot: {plot}" in " ".join(result.stdout.split())


def test_missing_config_file_is_named(duckdb_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "planned.json"
    args = ["deploy", "predict", "-e", "production", "-s", "direct", "-r", "project"]
    error = one_line_error(ign(*args, "--config", str(missing), store=duckdb_url))
    assert f"{missing}: no such file" in error and "JSON object" not in error.split("(")[0]
    recorded = ign("deploy", "record", "-n", "x", "-e", "production", "-g", "gw", "-s", "canary",
                   "-r", "project", "--config", str(missing), store=duckdb_url)  # fmt: skip
    assert recorded.returncode == 2 and "no such file" in one_line_error(recorded)


def test_errors_under_json_are_one_json_object_on_stderr(duckdb_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "planned.json"
    args = ["deploy", "predict", "-e", "production", "-s", "direct", "-r", "project"]
    result = ign(*args, "--config", str(missing), "--json", store=duckdb_url)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert json.loads(lines[0]) == {
        "error": f"--config: {missing}: no such file (give a JSON file or JSON object text)",
        "exit_code": 2,
    }
    usage = ign("deploy", "recommendations", "-e", "production", "--json", store=duckdb_url)
    assert usage.returncode == 2
    assert "--resources" in json.loads(usage.stderr)["error"]


def test_record_from_file_takes_command_line_overrides(duckdb_url: str, tmp_path: Path) -> None:
    two = tmp_path / "two.json"
    two.write_bytes(orjson.dumps(make_record(2, deployment_type="install", execution_id=None)))
    result = ign("deploy", "record", "--from", str(two), "-e", "staging", "-s", "canary",
                 "--status", "failed", "--json", store=duckdb_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    [stored] = _exported(duckdb_url, tmp_path)
    assert (stored["target_environment"], stored["deployment_strategy"], stored["status"]) == (
        "staging",
        "canary",
        "failed",
    )
    # options not given keep the file's values, not the options' defaults
    assert stored["deployment_type"] == "install"
    assert stored["started_at"] == make_record(2)["started_at"]


@pytest.mark.parametrize("path", ["missing.json", "."])
def test_record_from_a_path_that_is_not_a_file(path: str, duckdb_url: str) -> None:
    error = one_line_error(ign("deploy", "record", "--from", path, store=duckdb_url))
    assert ("is a directory" if path == "." else "no such file") in error


def test_ingest_reads_stdin(duckdb_url: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "deploylearn", "deploy", "ingest", "-", "--store", duckdb_url]
    lines = _jsonl([make_record(i) for i in range(3)])
    result = subprocess.run([*command, "--json"], input=lines, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["source"], report["accepted"]) == ("<stdin>", 3)

    table = tmp_path / "more.csv"
    write_records(table, [[make_record(i) for i in range(3, 5)]], "csv")
    result = subprocess.run(
        [*command, "--format", "csv", "--json"],
        input=table.read_text(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accepted"] == 2
    assert len(_exported(duckdb_url, tmp_path)) == 5


def test_ingest_of_a_directory_says_so(duckdb_url: str, tmp_path: Path) -> None:
    error = one_line_error(ign("deploy", "ingest", str(tmp_path), store=duckdb_url))
    assert "is a directory" in error


def test_csv_missing_required_columns_is_one_error(duckdb_url: str, tmp_path: Path) -> None:
    path = tmp_path / "partial.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["execution_name", "target_environment"])
        writer.writerows([["a", "production"], ["b", "staging"]])
    result = ign("deploy", "ingest", str(path), store=duckdb_url)
    assert result.returncode == 2
    error = one_line_error(result)
    assert "line 1: missing required column(s)" in error
    for column in ("deployment_type", "gateway_host", "deployment_strategy", "started_at"):
        assert column in error


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv", "empty.json"])
def test_empty_input_warns(name: str, duckdb_url: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text("[]\n" if name.endswith(".json") else "")
    result = ign("deploy", "ingest", str(path), store=duckdb_url)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"warning: {path}: no records in the input"


# -- 80 columns ------------------------------------------------------------------------------
METHODS = [
    "success model",
    "global rate",
    "Beta posterior (pattern)",
    "Beta posterior (pattern x environment)",
    "seed ranking (popularity, confidence 0.5/1.0)",
]


def _backtest_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [
        {
            "method": method,
            "brier_score": 0.1273 + i / 100,
            "ece": 0.0208,
            "roc_auc": 0.8012,
            "context_auc": 0.7086,
            "regret": 0.0123,
            "cold_brier": 0.0969,
            "brier_skill_first": -0.273,
            "brier_skill_last": -0.253,
            "learning_velocity": 0.0154,
        }
        for i, method in enumerate(METHODS)
    ]
    folds = pd.DataFrame(
        {"fold": [1, 2], "origin": ["2025-07-14T07:40:14+00:00", "2025-11-20T00:00:00+00:00"]}
    )
    return pd.DataFrame(rows), folds


@pytest.mark.parametrize("width", [80, 120])
def test_backtest_is_readable_at_80_and_120_columns(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    console = Console(width=width, record=True, file=io.StringIO())
    monkeypatch.setattr(common, "out", console)
    monkeypatch.setattr(train_commands, "out", console)
    train_commands._print_backtest(*_backtest_frames(), verdict=[])
    text = console.export_text()
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= width
    flat = " ".join(text.split())
    for piece in [*METHODS, "cold-start Brier", "skill first→last", "velocity", "-0.273→-0.253"]:
        assert piece in flat, (piece, text)
    # a method name may wrap once, not over a column of one-word lines
    assert len(text.splitlines()) <= (8 if width >= 120 else 10) * len(METHODS) + 8


def test_a_table_that_fits_stays_a_table() -> None:
    console = Console(width=120, record=True, file=io.StringIO())
    table = common.Table(title="t")
    for header in ("#", "pattern", "P(success)"):
        table.add_column(header)
    table.add_row("1", "blue-green (backup, ssl validation, timeout 30)", "0.876")
    common.show(table, console)
    assert "┃ # ┃ pattern" in console.export_text()
