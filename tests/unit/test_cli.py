"""The ``ign`` command as a user runs it: real process, real exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import failed_record, make_record


def ign(*args: str, store: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "deploylearn", *args]
    if store:
        command += ["--store", store]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_record_then_status(duckdb_url: str) -> None:
    result = ign(
        "deploy",
        "record",
        "-n",
        "Production HMI Update",
        "-e",
        "production",
        "-g",
        "prod-gateway-01.company.com",
        "-s",
        "blue_green",
        "-r",
        "project,database",
        "--config",
        '{"backup_enabled": true, "validation_timeout": 300}',
        "--started-at",
        "2025-01-01T10:00:00+00:00",
        "--completed-at",
        "2025-01-01T10:15:00Z",
        "--execution-id",
        "ci-42",
        "--json",
        store=duckdb_url,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"execution_id": "ci-42"}
    status = ign("db", "status", "--json", store=duckdb_url)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["executions"] == 1


def test_bad_record_exits_2_naming_the_field(duckdb_url: str) -> None:
    result = ign(
        "deploy",
        "record",
        "-n",
        "x",
        "-e",
        "production",
        "-g",
        "gw",
        "-s",
        "canary",
        "-r",
        "project",
        "--status",
        "exploded",
        "--execution-id",
        "ci-1",
        store=duckdb_url,
    )
    assert result.returncode == 2
    assert "status" in one_line_error(result)


def test_bad_config_json_exits_2(duckdb_url: str) -> None:
    result = ign(
        "deploy",
        "record",
        "-n",
        "x",
        "-e",
        "production",
        "-g",
        "gw",
        "-s",
        "canary",
        "-r",
        "project",
        "--config",
        "{oops",
        "--execution-id",
        "ci-1",
        store=duckdb_url,
    )
    assert result.returncode == 2
    assert "--config" in one_line_error(result)


def test_ingest_reports_lines_and_exits_3(duckdb_url: str, tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    rows = [orjson.dumps(make_record(i)).decode() for i in range(3)] + ["[1, 2]"]
    path.write_text("\n".join(rows) + "\n")
    result = ign("deploy", "ingest", str(path), "--json", store=duckdb_url)
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    assert (report["accepted"], report["rejected"]) == (3, 1)
    assert report["errors"] == [{"line": 4, "field": "record", "message": "must be a JSON object"}]
    again = ign("deploy", "ingest", str(path), "--json", store=duckdb_url)
    assert json.loads(again.stdout)["duplicates"] == 3


def test_export_and_recommendations(duckdb_url: str, tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    rows = [make_record(i) for i in range(12)] + [failed_record(i) for i in range(12, 16)]
    path.write_text("\n".join(orjson.dumps(r).decode() for r in rows) + "\n")
    assert ign("deploy", "ingest", str(path), store=duckdb_url).returncode == 0
    out = tmp_path / "out.csv"
    exported = ign("deploy", "export", str(out), "--json", store=duckdb_url)
    assert json.loads(exported.stdout)["exported"] == 16
    import csv

    with out.open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 16
    result = ign(
        "deploy",
        "recommendations",
        "-e",
        "production",
        "-r",
        "project,database",
        "--json",
        store=duckdb_url,
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)["recommendations"]
    assert answers[0]["success_count"] == 12 and answers[0]["failure_count"] == 4
    low, high = answers[0]["credible_interval"]
    assert low < answers[0]["success_probability"] < high


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["deploy", "ingest", "/nonexistent/file.jsonl"], "no such file"),
        (["deploy", "ingest", "data.txt"], "no such file"),
        (["db", "status", "--store", "postgres://nowhere"], "not understood"),
        (["deploy", "recommendations", "-e", "production"], "--resources"),
        (["deploy", "export", "x.jsonl", "--format", "xml"], "--format"),
    ],
)
def test_bad_arguments_exit_nonzero_with_one_line(
    args: list[str], fragment: str, duckdb_url: str
) -> None:
    store = None if "--store" in args else duckdb_url
    result = ign(*args, store=store)
    assert result.returncode != 0
    assert fragment in one_line_error(result)


def test_help_is_available() -> None:
    result = ign("deploy", "ingest", "--help")
    assert result.returncode == 0
    assert "bad lines" in result.stdout


def test_demo_records_writes_and_recommends(duckdb_url: str, tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    result = ign("demo", "-n", "600", "--seed", "3", "--out", str(out), "--json", store=duckdb_url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["executions"] == 600 and summary["recorded_now"] == 600
    assert len(out.read_text().splitlines()) == 600
    assert summary["recommendations"], "the demo must end with recommendations"
    again = json.loads(ign("demo", "-n", "600", "--seed", "3", "--json", store=duckdb_url).stdout)
    assert again["executions"] == 600 and again["recorded_now"] == 0  # same seed: same ids


def test_demo_refuses_a_store_with_real_records(duckdb_url: str) -> None:
    """Issue 12 item 7: demo into a store with real records added synthetic ones silently."""
    from deploylearn import DeploymentPatternLearner

    with DeploymentPatternLearner.open(duckdb_url) as learner:
        learner.record_executions([make_record(i) for i in range(3)])
    result = ign("demo", "-n", "100", store=duckdb_url)
    assert result.returncode == 2, result.stdout
    message = one_line_error(result)
    assert "3 execution(s) that are not demo data" in message and "--store" in message
    status = json.loads(ign("db", "status", "--json", store=duckdb_url).stdout)
    assert status["executions"] == 3


def test_delete_and_amend_from_the_command_line(duckdb_url: str) -> None:
    from deploylearn import DeploymentPatternLearner

    with DeploymentPatternLearner.open(duckdb_url) as learner:
        learner.record_executions([make_record(i) for i in range(3)])
    amended = ign(
        "deploy",
        "amend",
        "t-000001",
        "--status",
        "failed",
        "--failure-reason",
        "Gateway down",
        "--reason",
        "the run had failed",
        "--json",
        store=duckdb_url,
    )
    assert amended.returncode == 0, amended.stderr
    assert json.loads(amended.stdout)["amended"]["status"] == "failed"
    deleted = ign("deploy", "delete", "t-000002", "--reason", "test run", store=duckdb_url)
    assert deleted.returncode == 0, deleted.stderr
    status = json.loads(ign("db", "status", "--json", store=duckdb_url).stdout)
    assert (status["executions"], status["successes"], status["failures"]) == (2, 1, 1)
    missing = ign("deploy", "delete", "t-000002", "--reason", "again", store=duckdb_url)
    assert missing.returncode == 2 and "t-000002" in one_line_error(missing)
    nothing = ign("deploy", "amend", "t-000001", "--reason", "why", store=duckdb_url)
    assert nothing.returncode == 2 and "at least one field" in one_line_error(nothing)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"duckdb://{tmp_path_factory.mktemp('cli-demo') / 'store.duckdb'}"
    result = ign("demo", "-n", "4000", "--days", "120", "--json", store=url)
    assert result.returncode == 0, result.stderr
    return url


DEPLOY_QUESTIONS = [
    ["deploy", "recommendations", "-e", "production", "-r", "project,database", "-s", "canary"],
    ["deploy", "recommendations", "-e", "production", "-r", "project", "-g", "x.local"],
    [
        "deploy",
        "predict",
        "-e",
        "production",
        "-s",
        "direct",
        "-r",
        "project,database",
        "-c",
        '{"backup_enabled": false}',
    ],
    ["deploy", "adaptations", "-s", "staging", "-t", "production"],
    ["deploy", "rollback-scenarios", "-e", "production", "-r", "database,project"],
    ["deploy", "analytics", "-e", "production", "-d", "30", "-m", "duration,success_rate"],
]


@pytest.mark.parametrize("args", DEPLOY_QUESTIONS, ids=lambda a: a[1])
def test_every_question_prints_json_and_a_table(args: list[str], demo_store: str) -> None:
    result = ign(*args, "--json", store=demo_store)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert isinstance(answer, dict) and answer
    table = ign(*args, store=demo_store)
    assert table.returncode == 0, table.stderr
    assert table.stdout.strip()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["deploy", "recommendations", "-e", "production", "-r", " , "], "--resources"),
        (["deploy", "recommendations", "-e", "production", "-r", "project", "-l", "0"], "--limit"),
        (["deploy", "predict", "-e", "production"], "--strategy"),
        (
            ["deploy", "predict", "-e", "production", "-s", "direct", "-r", "project", "-c", "{"],
            "--config",
        ),
        (["deploy", "predict", "--fail-below", "2"], "--fail-below"),
        (["deploy", "adaptations", "-s", "production", "-t", "production"], "the same"),
        (["deploy", "adaptations", "-s", "staging"], "--target"),
        (["deploy", "rollback-scenarios"], "--environment"),
        (["deploy", "analytics", "-d", "0"], "--days"),
        (["deploy", "analytics", "-m", "happiness"], "happiness"),
    ],
)
def test_bad_question_arguments_exit_nonzero_with_one_line(
    args: list[str], fragment: str, demo_store: str
) -> None:
    result = ign(*args, store=demo_store)
    assert result.returncode != 0
    assert fragment in one_line_error(result)


def test_predict_file_and_fail_below_gate(demo_store: str, tmp_path: Path) -> None:
    planned = tmp_path / "planned.jsonl"
    rows = [
        {
            "target_environment": "production",
            "deployment_strategy": "direct",
            "resources_deployed": ["project", "database"],
            "configuration": {"timeout": 5},
        },
        {
            "target_environment": "development",
            "deployment_strategy": "rolling",
            "resources_deployed": ["project"],
        },
    ]
    planned.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    passed = ign(
        "deploy",
        "predict",
        "--file",
        str(planned),
        "--fail-below",
        "0.01",
        "--json",
        store=demo_store,
    )
    assert passed.returncode == 0, passed.stderr
    answer = json.loads(passed.stdout)
    assert len(answer["predictions"]) == 2 and answer["gate"]["passed"] is True
    blocked = ign(
        "deploy", "predict", "--file", str(planned), "--fail-below", "0.99", store=demo_store
    )
    assert blocked.returncode == 7
    assert "risk gate" in blocked.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps({**rows[1], "deployment_strategy": ""}))
    error = one_line_error(ign("deploy", "predict", "--file", str(bad), store=demo_store))
    assert "line 2" in error and "deployment_strategy" in error


def test_record_resources_take_commas_or_semicolons(duckdb_url: str) -> None:
    # one rule with records and CSV (records.split_resources); ';' was not a separator here
    result = ign(
        "deploy",
        "record",
        "-n",
        "x",
        "-e",
        "production",
        "-g",
        "gw",
        "-s",
        "canary",
        "-r",
        "project; Database,",
        "--execution-id",
        "ci-7",
        store=duckdb_url,
    )
    assert result.returncode == 0, result.stderr
    exported = ign("deploy", "export", "-", store=duckdb_url)
    assert exported.returncode == 0, exported.stderr
    assert orjson.loads(exported.stdout)["resources_deployed"] == ["database", "project"]


def test_question_resources_split_like_records() -> None:
    from deploylearn.cli.deploy_commands import _split

    assert _split(" project;database , tags", "--resources") == ["project", "database", "tags"]
    assert _split("a;b, c", "--metrics") == ["a;b", "c"]  # other lists stay comma-separated
