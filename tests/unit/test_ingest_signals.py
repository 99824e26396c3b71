"""Killing a parallel ingest takes its worker processes with it (real processes, real signals)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from deploylearn.ingest import workers as ingest_workers
from tests.conftest import make_record

pytestmark = pytest.mark.skipif(
    not (ingest_workers.can_fork() and Path("/proc").is_dir()), reason="forked workers, /proc"
)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ingest") / "big.jsonl"
    with path.open("wb") as handle:
        for i in range(120_000):
            handle.write(orjson.dumps(make_record(i)) + b"\n")
    return path


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_exit_when_the_ingest_is_killed(
    big_file: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    store = f"duckdb://{tmp_path / 'store.duckdb'}"
    stderr = (tmp_path / "stderr").open("wb")  # not a pipe: orphans would hold it open
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploylearn",
            "deploy",
            "ingest",
            str(big_file),
            "--workers",
            "2",
            "--store",
            store,
        ],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.05)
        workers = _children(parent.pid)
    assert len(workers) >= 2, "the ingest ended before its workers were seen"
    os.kill(parent.pid, sig)
    try:
        code = parent.wait(timeout=60)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [w for w in workers if _alive(w)]
        if sig == signal.SIGTERM:
            assert code == 128 + signal.SIGTERM, (tmp_path / "stderr").read_text()
    finally:
        for pid in workers:  # never leave them behind, whatever failed
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
