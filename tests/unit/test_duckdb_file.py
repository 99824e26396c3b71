"""Properties of the embedded store that only its file can show."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.errors import InvalidStoreUrlError, StoreUnavailableError
from deploylearn.redaction import SecretCipher
from deploylearn.store import open_store
from tests.conftest import make_record

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
    raw = _bytes_of(tmp_path / "db")
    assert b"VISIBLE-CANARY" in raw  # control: the file is searchable as plain bytes
    assert SECRET.encode() not in raw
    assert stored is not None
    value = stored["configuration_used"]["db_password"]
    if secret_key:
        assert SecretCipher(secret_key).decrypt(value) == SECRET
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
