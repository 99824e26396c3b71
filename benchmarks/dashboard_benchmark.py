"""Dashboard page load times against ``ign serve`` on a large embedded store.

    .venv/bin/python benchmarks/dashboard_benchmark.py --executions 1000000
    .venv/bin/python benchmarks/dashboard_benchmark.py --store duckdb:///tmp/demo.duckdb

1. Builds a seeded demo store of ``--executions`` (``ign demo``), or reuses ``--store``.
2. Creates a read token and starts ``ign serve`` on it (a free port; no champion unless
   ``MLFLOW_TRACKING_URI`` names a registry holding one for this store).
3. Warms the service: loads every page once (the first builds the serving state) and prints
   each first load, which computes its answers.
4. Loads every page ``--repeats`` times and prints the server time of its HTML (request to
   last byte, over HTTP on localhost) as p50/p95; with Chromium installed, also the browser's
   navigation timing (``performance`` navigation entry: start to loadEventEnd) per page.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

IGN = shutil.which("ign", path=str(Path(sys.executable).parent)) or "ign"
PAGES = [
    "/ui",
    "/ui?environment=production&days=90",
    "/ui/recommendations?environment=production&resources=project&resources=database",
    "/ui/predict?environment=production&strategy=blue_green&resources=project",
    "/ui/patterns",
    "/ui/patterns?environment=production&resources=database&days=7",
    "/ui/rollbacks?environment=production",
    "/ui/adaptations?source=staging&target=production",
    "/ui/model",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _store(args: argparse.Namespace) -> str:
    if args.store:
        return str(args.store)
    url = f"duckdb://{Path(tempfile.mkdtemp(prefix='dash-bench-')) / 'demo.duckdb'}"
    started = time.perf_counter()
    subprocess.run(
        [IGN, "demo", "--executions", str(args.executions), "--store", url, "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"ign demo --executions {args.executions}: {time.perf_counter() - started:.1f} s")
    return url


def _token(url: str) -> str:
    done = subprocess.run(
        [IGN, "token", "create", f"bench-{time.time_ns()}", "--scope", "read", "--store", url,
         "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return str(json.loads(done.stdout)["token"])


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [IGN, "serve", "--port", str(port), "--store", url, "--model-check-seconds", "0"],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise TimeoutError("ign serve did not answer")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _browser_timings(base: str, token: str, repeats: int) -> dict[str, list[float]]:
    if not all(os.access(p, os.X_OK) for p in ("/usr/bin/chromium", "/usr/bin/chromedriver")):
        print("no Chromium: browser timings skipped (scripts/install-browser)")
        return {}
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    profile = tempfile.mkdtemp(prefix="chromium-")
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", "--window-size=1366,768"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"),
                              options=options)
    out: dict[str, list[float]] = {}
    try:
        driver.get(f"{base}/ui/sign-in")
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "form.signin button").click()
        time.sleep(1)
        for page in PAGES:
            for _ in range(repeats):
                driver.get(f"{base}{page}")
                out.setdefault(page, []).append(float(driver.execute_script(
                    "const e = performance.getEntriesByType('navigation')[0];"
                    "return e.loadEventEnd - e.startTime;"
                )))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--store", help="reuse this store (skips ign demo)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--browser-repeats", type=int, default=5)
    args = parser.parse_args()
    url = _store(args)
    token = _token(url)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    process = _serve(url, port)
    print(f"store {url}; ign serve answering after {time.perf_counter() - started:.1f} s")
    try:
        with httpx.Client(base_url=base, cookies={"deploylearn_session": token},
                          timeout=600) as client:
            print("\nfirst load of each page (computes its answers; the first builds the "
                  "serving state):")
            for page in PAGES:
                t = time.perf_counter()
                response = client.get(page)
                assert response.status_code == 200, (page, response.status_code)
                print(f"  {(time.perf_counter() - t) * 1000:9.1f} ms  {page}")
            print(f"\nwarm, {args.repeats} loads each: server time of the HTML (ms)")
            print(f"  {'p50':>8} {'p95':>8} {'max':>8}  page")
            for page in PAGES:
                times = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    client.get(page).raise_for_status()
                    times.append((time.perf_counter() - t) * 1000)
                print(f"  {statistics.median(times):8.1f} {_quantile(times, 0.95):8.1f} "
                      f"{max(times):8.1f}  {page}")
        browser = _browser_timings(base, token, args.browser_repeats)
        if browser:
            print(f"\nbrowser navigation (start to loadEventEnd), {args.browser_repeats} "
                  "loads each (ms)")
            print(f"  {'p50':>8} {'max':>8}  page")
            for page, times in browser.items():
                print(f"  {statistics.median(times):8.1f} {max(times):8.1f}  {page}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


if __name__ == "__main__":
    main()
