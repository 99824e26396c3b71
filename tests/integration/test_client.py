"""``ign deploy … --server URL``: the same question asked of a real ``ign serve`` process over
HTTP gives the same output, byte for byte, as asking the store directly.

The embedded store is held by one process, so every local answer is computed first, from the
store the service then opens; both are "as of" the replayed history's end, so they must agree.
Also: the CI gate's exit code through the service, token errors (missing, invalid), an
unreachable server, a 422 that names the field like the local error, and the options that
cannot go together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.conftest import make_record
from tests.integration.service_process import Server, demo_server, free_port

PLANNED = [
    {
        "target_environment": "production",
        "deployment_strategy": "blue_green",
        "resources_deployed": ["project", "database"],
        "configuration_used": {"backup_enabled": True},
    },
    {"target_environment": "prod", "deployment_strategy": "rolling", "resources_deployed": ["x"]},
]
INVALID = [PLANNED[0], {"deployment_strategy": "rolling", "resources_deployed": ["project"]}]


def _questions(folder: Path) -> dict[str, list[str]]:
    """Each question as ``ign deploy`` arguments; files they name live in ``folder``."""
    lines = lambda rows: b"".join(orjson.dumps(r) + b"\n" for r in rows)  # noqa: E731
    (folder / "planned.jsonl").write_bytes(lines(PLANNED))
    (folder / "invalid.jsonl").write_bytes(lines(INVALID))
    predict = ["predict", "-e", "production", "-s", "blue_green", "-r", "project,database"]
    return {
        "recommendations": ["recommendations", "-e", "production", "-r", "project,database"],
        "recommendations-narrow": [
            *("recommendations", "-e", "staging", "-r", "project", "-s", "rolling", "-l", "2"),
        ],
        "predict": [*predict, "--config", '{"backup_enabled": true}'],
        "predict-gate-passes": [*predict, "--fail-below", "0"],
        "predict-gate-fails": [
            *("predict", "--file", str(folder / "planned.jsonl"), "--fail-below", "0.01"),
        ],
        "predict-invalid": ["predict", "--file", str(folder / "invalid.jsonl")],
        "adaptations": ["adaptations", "-s", "staging", "-t", "production"],
        "rollback-scenarios": ["rollback-scenarios", "-e", "production", "-r", "database,project"],
        "analytics": [
            *("analytics", "-e", "production", "-d", "60", "-m", "duration,success_rate"),
            *("--plot", str(folder / "analytics.png")),
        ],
    }


TABLES = ("recommendations", "predict-gate-fails", "rollback-scenarios", "analytics")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYLEARN_")}
    return {**env, "COLUMNS": "120", **extra}


def ign(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "deploylearn", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


@dataclass
class Served:
    server: Server
    folder: Path
    questions: dict[str, list[str]]
    local: dict[str, tuple[int, str, str, bytes | None]]  # as (exit code, stdout, stderr, png)

    def env(self, token: str | None = "reader", **extra: str) -> dict[str, str]:
        given = {"DEPLOYLEARN_TOKEN": self.server.tokens[token]} if token else {}
        return _env(MLFLOW_TRACKING_URI=self.server.tracking_uri, **given, **extra)


def _run_all(
    questions: dict[str, list[str]], where: list[str], env: dict[str, str], plot: Path
) -> dict[str, tuple[int, str, str, bytes | None]]:
    """Each question's exit code, stdout, stderr (and the PNG of ``--plot`` at ``plot``), with
    ``--json`` and, for ``TABLES``, also without."""
    answers = {}
    for name, args in questions.items():
        for as_json in (True, False) if name in TABLES else (True,):
            plot.unlink(missing_ok=True)
            result = ign("deploy", *args, *where, *(["--json"] if as_json else []), env=env)
            png = plot.read_bytes() if name == "analytics" and plot.exists() else None
            key = f"{name}{'' if as_json else ' (table)'}"
            answers[key] = (result.returncode, result.stdout, result.stderr, png)
    return answers


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("client")
    server = demo_server(folder, {"reader": ["read"]})
    questions = _questions(folder)
    env = _env(MLFLOW_TRACKING_URI=server.tracking_uri)
    local = _run_all(questions, ["--store", server.store_url], env, folder / "analytics.png")
    server.start()
    try:
        yield Served(server, folder, questions, local)
    finally:
        server.stop()


def test_every_question_through_the_server_prints_what_the_store_does(served: Served) -> None:
    where = ["--server", served.server.url]
    remote = _run_all(served.questions, where, served.env(), served.folder / "analytics.png")
    assert remote.keys() == served.local.keys()
    for name, (code, stdout, stderr, png) in served.local.items():
        assert remote[name][:3] == (code, stdout, stderr), name
        if png is not None:
            assert remote[name][3] == png, f"{name}: another PNG"
    # the comparisons above compare answers, not empty output: each question answered
    by_name = served.local
    assert json.loads(by_name["recommendations"][1])["recommendations"]
    assert json.loads(by_name["recommendations"][1])["model"]["version"] == "1"
    assert json.loads(by_name["adaptations"][1])["adaptations"]
    assert json.loads(by_name["rollback-scenarios"][1])["scenarios"]
    assert by_name["analytics"][3] is not None and by_name["analytics"][3][:4] == b"\x89PNG"


def test_the_gate_and_input_errors_exit_as_they_do_locally(served: Served) -> None:
    """Read from the comparison above: the exit codes the local commands gave."""
    assert served.local["predict-gate-passes"][0] == 0
    assert json.loads(served.local["predict-gate-passes"][1])["gate"]["passed"] is True
    code, stdout, stderr, _ = served.local["predict-gate-fails"]
    assert code == 7 and json.loads(stdout)["gate"]["unknown"] == 1
    assert stderr.startswith("risk gate: failed:")
    code, _, stderr, _ = served.local["predict-invalid"]
    assert code == 2 and "line 2: target_environment" in stderr


def test_the_server_url_may_come_from_the_environment_and_end_in_v1(served: Served) -> None:
    args = served.questions["recommendations"]
    env = served.env(DEPLOYLEARN_SERVER=f"{served.server.url}/v1/")
    result = ign("deploy", *args, "--json", env=env)
    assert (result.returncode, result.stdout) == served.local["recommendations"][:2], result.stderr


def test_a_token_on_the_command_line_works_and_is_never_echoed(served: Served) -> None:
    token = served.server.tokens["reader"]
    args = [*served.questions["adaptations"], "--server", served.server.url, "--json"]
    result = ign("deploy", *args, "--token", token, env=served.env(token=None))
    assert (result.returncode, result.stdout) == served.local["adaptations"][:2], result.stderr
    help_text = ign("deploy", "adaptations", "--help", env=served.env()).stdout
    assert token not in help_text and "DEPLOYLEARN_TOKEN" in help_text


def _one_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_missing_or_invalid_token_is_said_so(served: Served) -> None:
    args = [*served.questions["recommendations"], "--server", served.server.url]
    missing = ign("deploy", *args, env=served.env(token=None))
    assert missing.returncode == 2
    assert "token is missing" in _one_error(missing) and "DEPLOYLEARN_TOKEN" in missing.stderr
    wrong = ign("deploy", *args, env=served.env(token=None, DEPLOYLEARN_TOKEN="dl_not-a-token"))
    assert wrong.returncode == 2
    error = _one_error(wrong)
    assert "refused the token as invalid (unknown or revoked token)" in error
    assert "dl_not-a-token" not in wrong.stderr + wrong.stdout
    as_json = ign("deploy", *args, "--json", env=served.env(token=None))
    assert json.loads(as_json.stderr)["exit_code"] == 2 and as_json.stdout == ""


# -- without a running service ---------------------------------------------------------------
@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"duckdb://{tmp_path_factory.mktemp('small') / 'store.duckdb'}"
    history = tmp_path_factory.mktemp("history") / "h.jsonl"
    history.write_bytes(b"".join(orjson.dumps(make_record(i)) + b"\n" for i in range(20)))
    assert ign("deploy", "ingest", str(history), "--store", url, env=_env()).returncode == 0
    return url


QUESTION = ["deploy", "rollback-scenarios", "-e", "production"]


def test_an_unreachable_server_is_said_so_and_exits_like_an_unreachable_store() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = ign(*QUESTION, "--server", url, env=_env(DEPLOYLEARN_TOKEN="dl_x"))
    assert result.returncode == 4
    assert f"the server is not reachable at {url}" in _one_error(result)
    assert "dl_x" not in result.stderr


def test_server_and_store_together_are_refused_naming_both(small_store: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (
        [*QUESTION, "--server", url, "--store", small_store],
        ["--store", small_store, *QUESTION, "--server", url],  # the global --store too
    ):
        result = ign(*args, env=_env())
        assert result.returncode == 2, result.stderr
        assert "--server and --store: give one" in _one_error(result)
    both_set = ign(*QUESTION, env=_env(DEPLOYLEARN_SERVER=url, DEPLOYLEARN_STORE=small_store))
    assert both_set.returncode == 2
    assert "DEPLOYLEARN_SERVER and DEPLOYLEARN_STORE are both set" in _one_error(both_set)


def test_an_option_on_the_command_line_wins_over_the_other_from_the_environment(
    small_store: str,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    local = ign(*QUESTION, "--store", small_store, "--json", env=_env(DEPLOYLEARN_SERVER=url))
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["environment"] == "production"
    remote = ign(*QUESTION, "--server", url, env=_env(DEPLOYLEARN_STORE=small_store))
    assert remote.returncode == 4 and "not reachable" in remote.stderr  # it asked the server


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--server", "ftp://127.0.0.1:8765"], "--server: 'ftp://127.0.0.1:8765' is not an http"),
        (["--server", "127.0.0.1:8765"], "--server: '127.0.0.1:8765' is not an http(s) URL"),
        (["--server", "http://127.0.0.1:8765?x=1"], "without ? or #"),
        (["--server", "http://127.0.0.1:99999"], "the port is not valid"),
        (["--token", "dl_x"], "--token: only with --server"),
    ],
)
def test_bad_server_options_are_named(args: list[str], named: str, small_store: str) -> None:
    result = ign(*QUESTION, *args, env=_env(DEPLOYLEARN_STORE=small_store))
    assert result.returncode == 2, result.stderr
    assert named in _one_error(result)
    assert "dl_x" not in result.stderr


def test_no_model_is_refused_with_a_server() -> None:
    args = ["deploy", "recommendations", "-e", "production", "-r", "project", "--no-model"]
    result = ign(*args, "--server", "http://127.0.0.1:8765", env=_env())
    assert result.returncode == 2 and "--no-model: not with --server" in _one_error(result)
