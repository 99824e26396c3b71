"""``ign serve`` as a process for the tests that talk to it over real HTTP: a free local port,
a small trained demo store, start (until ``/v1/health`` answers) and stop by signal.

Shared by ``test_service.py`` (the routes) and ``test_client.py`` (``ign deploy … --server``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from deploylearn.learner import DeploymentPatternLearner
from deploylearn.synthetic import SyntheticWorld
from tests.conftest import train_quick_champion

IGN = shutil.which("ign", path=str(Path(sys.executable).parent)) or "ign"


@dataclass
class Server:
    url: str
    store_url: str
    tracking_uri: str
    tokens: dict[str, str]  # name -> token in clear
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)  # beyond os.environ and the tracking URI

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def start(self) -> None:
        env = {**os.environ, "MLFLOW_TRACKING_URI": self.tracking_uri, **self.env}
        self.process = subprocess.Popen(
            [
                *(IGN, "serve", "--port", str(self.port), "--store", self.store_url),
                *("--model-check-seconds", "1"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stderr.read() if self.process.stderr else b""
                raise RuntimeError(f"ign serve exited: {output.decode(errors='replace')}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise TimeoutError("ign serve did not answer within 90 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.process = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_server(folder: Path, token_scopes: dict[str, list[str]]) -> Server:
    """A stopped ``Server`` over a new store in ``folder``: 2,500 synthetic executions over 120
    days, a token per name in ``token_scopes``, and a quick champion promoted for it."""
    url = f"duckdb://{folder / 'store.duckdb'}"
    tracking_uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    world = SyntheticWorld(seed=5, start=datetime(2025, 1, 1, tzinfo=UTC), days=120)
    with DeploymentPatternLearner.open(url, tracking_uri=tracking_uri) as learner:
        for batch in world.generate(n_executions=2500, batch_size=5000):
            learner.record_executions(batch.records)
        tokens = {
            name: learner.create_api_token(name, scopes)  # type: ignore[arg-type]
            for name, scopes in token_scopes.items()
        }
    train_quick_champion(url, folder, tracking_uri)
    port = free_port()
    return Server(f"http://127.0.0.1:{port}", url, tracking_uri, tokens, port=port)
