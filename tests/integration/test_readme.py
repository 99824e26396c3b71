"""Every ``ign`` command of README.md, run as written, and its Python block.

The commands are read from README.md's ``bash`` blocks (so a new command there is tested
without touching this file) and run in order in a temporary directory, against a store and an
MLflow tracking database in that directory, at 80 columns. The one rewrite: ``ign demo`` gets
``--executions 2500 --days 120`` instead of the README's 20,000 (same command, a store that
trains in seconds). The ``make`` lines are what CI itself runs and are not repeated here.

Each command must exit with one of the codes ``EXPECTED_EXIT`` documents, print no traceback,
leave stderr empty when it succeeds (library noise hidden by default) and cut no table cell or
header to ``…``.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.conftest import failed_record, make_record

README = Path(__file__).resolve().parents[2] / "README.md"
DEMO_SIZE = ["--executions", "2500", "--days", "120"]

# exit codes a README command may end with, by its subcommand; everything else must exit 0
EXPECTED_EXIT: dict[str, set[int]] = {
    "deploy predict": {0, 7},  # --fail-below 0.8: 7 when the planned deployment is riskier
    "train": {0, 5},  # 5: the gate refused the challenger (the champion stays)
    "serve": {143},  # stopped by SIGTERM here: uvicorn ends a graceful stop with the signal
}


@dataclass(frozen=True)
class Command:
    argv: list[str]
    line: int

    @property
    def name(self) -> str:
        words = [a for a in self.argv[1:3] if not a.startswith("-")]
        return " ".join(
            words[:2] if words and words[0] in ("deploy", "db", "evaluate") else words[:1]
        )

    @property
    def id(self) -> str:
        return f"{self.name.replace(' ', '-')}@{self.line}"


def _bash_blocks(text: str) -> list[tuple[int, str]]:
    """``(first line number, body)`` of each ```` ```bash ```` block."""
    return [
        (text.count("\n", 0, match.start(1)) + 1, match.group(1))
        for match in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M)
    ]


def readme_commands() -> list[Command]:
    commands = []
    for first, body in _bash_blocks(README.read_text()):
        logical, start = "", first
        for number, raw in enumerate(body.splitlines(), first):
            if not logical:
                start = number
            logical += raw.rstrip().removesuffix("\\") + " "
            if raw.rstrip().endswith("\\"):
                continue
            argv = shlex.split(logical, comments=True)
            logical = ""
            if argv and Path(argv[0]).name == "ign":
                commands.append(Command(argv, start))
    return commands


def python_block() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
    assert len(blocks) == 1, "README.md should have one Python example"
    return blocks[0]


COMMANDS = readme_commands()


def _inputs(folder: Path) -> None:
    """The files the README's commands name."""
    history = [make_record(i, execution_id=f"readme-{i:03d}") for i in range(24)]
    history += [failed_record(i, execution_id=f"readme-{i:03d}") for i in range(24, 32)]
    (folder / "history.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in history))
    (folder / "planned.json").write_bytes(
        orjson.dumps({"backup_enabled": True, "validation_timeout": 300, "timeout": 30})
    )
    planned = [
        {
            "target_environment": "production",
            "deployment_strategy": "blue_green",
            "resources_deployed": ["project", "database"],
            "configuration_used": {"backup_enabled": True},
        },
        {
            "target_environment": "staging",
            "deployment_strategy": "direct",
            "resources_deployed": ["project"],
        },
    ]
    (folder / "planned.jsonl").write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in planned))


def _ign() -> list[str]:
    script = Path(sys.executable).with_name("ign")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "deploylearn"]


def _run(argv: list[str], folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=folder, env=env, capture_output=True, text=True, timeout=900, check=False
    )


@dataclass(frozen=True)
class Session:
    folder: Path
    env: dict[str, str]
    results: dict[str, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    folder = tmp_path_factory.mktemp("readme")
    _inputs(folder)
    env = {
        **os.environ,
        "DEPLOYLEARN_STORE": f"duckdb://{folder / 'store.duckdb'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}",
        "COLUMNS": "80",
    }
    env.pop("MLFLOW_LOGGING_LEVEL", None)
    env.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    for command in COMMANDS:
        argv = _ign() + command.argv[1:]
        if command.name == "demo":
            argv = [a for a in argv if a not in ("--executions", "20000")] + DEMO_SIZE
        if command.name == "serve":
            tokens = [r.stdout.strip() for c, r in results.items() if c.startswith("token@")]
            results[command.id] = _serve_once(argv, folder, env, tokens[-1])
            continue
        results[command.id] = _run(argv, folder, env)
    return Session(folder, env, results)


def _serve_once(
    argv: list[str], folder: Path, env: dict[str, str], token: str
) -> subprocess.CompletedProcess[str]:
    """``ign serve`` as written: up until it answers one authorized request, then SIGTERM."""
    port = argv[argv.index("--port") + 1]
    process = subprocess.Popen(
        argv, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    answered = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and not answered:
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/model", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=2) as response:
                answered = response.read().decode()
        except OSError:
            time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    if not answered:  # a service that never answered fails whatever its exit code
        return subprocess.CompletedProcess(argv, 1, stdout, stderr + "\nno answer from /v1/model")
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def test_readme_names_the_commands_it_documents() -> None:
    names = {c.name for c in COMMANDS}
    assert {"demo", "deploy record", "deploy predict", "train", "evaluate backtest"} <= names
    assert all(c.argv[0] in ("ign", ".venv/bin/ign") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.id)
def test_readme_command_runs_as_written(command: Command, session: Session) -> None:
    result = session.results[command.id]
    shown = (
        f"$ {shlex.join(command.argv)}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr, shown
    assert result.returncode in EXPECTED_EXIT.get(command.name, {0}), shown
    if result.returncode == 0:
        assert result.stderr == "", shown  # no MLflow bars, INFO lines or warnings
    elif result.returncode == 7:
        assert result.stderr.startswith("risk gate: ") and result.stderr.count("\n") == 1, shown
    assert "…" not in result.stdout, shown  # nothing cut at 80 columns


def test_readme_outputs_exist(session: Session) -> None:
    assert (session.folder / "prod.png").read_bytes().startswith(b"\x89PNG")
    assert (session.folder / "backup.csv").read_text().count("\n") > 2500


def test_readme_python_block(session: Session) -> None:
    """The notebook users' API, exactly as README.md shows it (``start``/``end`` defined)."""
    script = session.folder / "readme_example.py"
    prelude = (
        "from datetime import UTC, datetime, timedelta\n"
        "start = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)\n"
        "end = start + timedelta(minutes=12)\n"
    )
    script.write_text(prelude + textwrap.dedent(python_block()))
    result = _run([sys.executable, str(script)], session.folder, session.env)
    assert result.returncode == 0, result.stderr


def test_predict_from_planned_jsonl_and_verbose(session: Session) -> None:
    """The README's ``or --file planned.jsonl``; ``-v`` shows what stays hidden by default."""
    argv = [*_ign(), "deploy", "predict", "--file", "planned.jsonl", "--fail-below", "0.8"]
    quiet = _run(argv, session.folder, session.env)
    assert quiet.returncode in (0, 7) and "Traceback" not in quiet.stderr, quiet.stderr
    assert "…" not in quiet.stdout
    assert all(line.startswith("risk gate: ") for line in quiet.stderr.splitlines())
    trained = any(r.returncode == 0 for c, r in session.results.items() if c.startswith("train@"))
    if trained:  # with a champion, MLflow downloads its artifacts (and says so when asked)
        verbose = _run([*_ign(), "-v", *argv[len(_ign()) :]], session.folder, session.env)
        assert "Downloading artifacts" in verbose.stderr, verbose.stderr
