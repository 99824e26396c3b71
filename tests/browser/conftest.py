"""A real ``ign serve`` over a trained demo-like store, and Debian's Chromium driven by
Selenium through ``/usr/bin/chromedriver`` (never Selenium Manager: no network).

With ``CI=true`` a missing Chromium fails the run; elsewhere its tests skip, saying why
(``scripts/install-browser`` installs it)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import train_quick_champion

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
IGN = shutil.which("ign", path=str(Path(sys.executable).parent)) or "ign"
LAPTOP, PHONE = (1366, 768), (390, 844)


@dataclass
class Dashboard:
    url: str
    tokens: dict[str, str]  # name -> token in clear
    store_url: str
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def chromium_options(user_data_dir: str, size: tuple[int, int] = LAPTOP) -> Any:
    """Headless Chromium that makes no connection of its own (the network is closed)."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={user_data_dir}",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


def start_chromium(size: tuple[int, int] = LAPTOP) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    folder = tempfile.mkdtemp(prefix="chromium-")
    driver = webdriver.Chrome(
        service=Service(executable_path=CHROMEDRIVER), options=chromium_options(folder, size)
    )
    driver.set_page_load_timeout(60)
    driver._deploylearn_profile = folder  # removed in stop_chromium
    return driver


def stop_chromium(driver: Any) -> None:
    folder = getattr(driver, "_deploylearn_profile", None)
    driver.quit()
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def _need_chromium() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not missing:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {', '.join(missing)} missing (scripts/install-browser)")
    pytest.skip(f"no {', '.join(missing)}: run scripts/install-browser (Debian chromium)")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """``ign serve`` on a free port over 2,500 synthetic executions and a quick champion."""
    _need_chromium()
    from deploylearn.learner import DeploymentPatternLearner
    from deploylearn.synthetic import SyntheticWorld

    folder = tmp_path_factory.mktemp("dashboard")
    url = f"duckdb://{folder / 'store.duckdb'}"
    tracking_uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    world = SyntheticWorld(seed=7, start=datetime(2025, 1, 1, tzinfo=UTC), days=120)
    with DeploymentPatternLearner.open(url, tracking_uri=tracking_uri) as learner:
        for batch in world.generate(n_executions=2500, batch_size=5000):
            learner.record_executions(batch.records)
        tokens = {
            "viewer": learner.create_api_token("viewer", ["read"]),
            "ci": learner.create_api_token("ci", ["write"]),
        }
    train_quick_champion(url, folder, tracking_uri)
    port = _free_port()
    process = subprocess.Popen(
        [IGN, "serve", "--port", str(port), "--store", url, "--model-check-seconds", "0"],
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"ign serve exited: {err}")
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("ign serve did not answer within 90 s")
            time.sleep(0.2)
        yield Dashboard(base, tokens, url, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(dashboard: Dashboard) -> Iterator[Any]:
    driver = start_chromium(LAPTOP)
    try:
        yield driver
    finally:
        stop_chromium(driver)
