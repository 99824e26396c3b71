"""`ign serve` over real HTTP on a large embedded store: latency, throughput, writes, cold CLI.

    .venv/bin/python benchmarks/service_benchmark.py --executions 1000000

1. Records a seeded demo history (skipped when the store already holds exactly that many) and
   trains a champion on the newest ``--train-window`` executions, as serving_benchmark.py does.
2. Starts ``ign serve`` on a free local port (a read+write token made for it), times the first
   answer (the serving state is built then: frame, snapshot, champion), warms up.
3. One client, keep-alive: ``--requests`` recommendations and as many predicts over random
   contexts; p50/p90/p99.
4. ``--clients`` concurrent clients for ``--seconds``: requests/s and p50/p99 (half of them
   recommendations, half predicts).
5. Writes: ``--writes`` times, POST one new execution then ask a predict for its context;
   the write's latency, the next predict's latency and their sum (the time until an answer
   reflects the write), and a check that the answer changed with it (the pattern's run count).
6. Stops the service and times a cold ``ign deploy predict`` process (model load included),
   side by side with a cold ``ign deploy predict --server`` against a fresh service, if given.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from serving_benchmark import _ensure_history, _train

from deploylearn import DeploymentPatternLearner

IGN = str(Path(sys.executable).with_name("ign"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--duckdb-path", default="benchmarks/out/serving.duckdb")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--train-window", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    Path(args.duckdb_path).parent.mkdir(parents=True, exist_ok=True)
    url = f"duckdb://{Path(args.duckdb_path).resolve()}"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        with DeploymentPatternLearner.open(url) as learner:
            _ensure_history(learner, args.executions, args.seed)
            _train(learner, args.train_window, Path(tmp))
            token = learner.create_api_token(f"bench-{os.getpid()}", ["read", "write"])
            contexts = _contexts(learner, 2 * args.requests + args.writes, args.seed)
        port = _free_port()
        server = subprocess.Popen(
            [IGN, "serve", "--port", str(port), "--store", url, "--model-check-seconds", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}/v1"
        headers = {"Authorization": f"Bearer {token}"}
        try:
            _wait_ready(base)
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                t = time.perf_counter()
                _recommend(client, contexts[0])
                print(f"first answer (serving state built): {time.perf_counter() - t:.1f} s")
                for c in contexts[:20]:  # warm-up
                    _recommend(client, c)
                    _predict(client, c)
                one_client(client, contexts[: 2 * args.requests], args.executions)
                concurrent(base, headers, contexts, args.clients, args.seconds)
                writes(client, contexts[2 * args.requests :], args.executions)
        finally:
            server.terminate()
            server.wait(30)
        cold_predict(url, contexts[0], args.executions)


def _contexts(learner: DeploymentPatternLearner, n: int, seed: int) -> list[dict[str, Any]]:
    """Random contexts the history has: environment, a bundle of it, a strategy, a gateway."""
    frame = learner.store.executions_frame()
    sample = frame.sample(n, random_state=seed)
    return [
        {
            "target_environment": row.target_environment,
            "resources_deployed": list(row.resources_deployed),
            "deployment_strategy": row.deployment_strategy,
            "gateway_host": row.gateway_host,
        }
        for row in sample.itertuples(index=False)
    ]


def _recommend(client: httpx.Client, c: dict[str, Any]) -> dict[str, Any]:
    response = client.get(
        "/recommendations",
        params={
            "target_environment": c["target_environment"],
            "resource_types": ",".join(c["resources_deployed"]),
        },
    )
    response.raise_for_status()
    return dict(response.json())


def _planned(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "target_environment": c["target_environment"],
        "deployment_strategy": c["deployment_strategy"],
        "resources_deployed": c["resources_deployed"],
        "gateway_host": c["gateway_host"],
    }


def _predict(client: httpx.Client, c: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/predict", json={"planned": _planned(c), "fail_below": 0.5})
    response.raise_for_status()
    return dict(response.json())


def _percentiles(ms: list[float]) -> str:
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return f"p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms, max {max(ms):.1f} ms"


def one_client(client: httpx.Client, contexts: list[dict[str, Any]], n: int) -> None:
    half = len(contexts) // 2
    for name, ask, chosen in (
        ("recommendations", _recommend, contexts[:half]),
        ("predict", _predict, contexts[half:]),
    ):
        ms = []
        for c in chosen:
            t = time.perf_counter()
            ask(client, c)
            ms.append((time.perf_counter() - t) * 1000)
        print(f"1 client, {name} over HTTP ({len(chosen)} requests, {n} executions): "
              f"{_percentiles(ms)}")


def concurrent(
    base: str, headers: dict[str, str], contexts: list[dict[str, Any]], clients: int, seconds: float
) -> None:
    ms: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def work(k: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            i = k
            while time.perf_counter() < stop:
                c = contexts[i % len(contexts)]
                t = time.perf_counter()
                (_recommend if i % 2 else _predict)(client, c)
                with lock:
                    ms.append((time.perf_counter() - t) * 1000)
                i += clients

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    print(f"{clients} clients for {elapsed:.0f} s: {len(ms) / elapsed:.0f} requests/s, "
          f"{_percentiles(ms)}")


def writes(client: httpx.Client, contexts: list[dict[str, Any]], n: int) -> None:
    write_ms, predict_ms, changed = [], [], 0
    for i, c in enumerate(contexts):
        before = _predict(client, c)["predictions"][0]
        record = {
            **_planned(c),
            "execution_id": f"bench-write-{os.getpid()}-{i}",
            "execution_name": "benchmark write",
            "deployment_type": "update",
            "source_environment": "staging",
            "configuration_used": {},
            "status": "failed",
            "started_at": _iso(time.time() - 120),
            "completed_at": _iso(time.time() - 60),
            "failure_reasons": ["benchmark write"],
            "rollback_triggered": False,
            "rollback_successful": None,
            "user_id": "benchmark",
            "automation_triggered": True,
            "execution_log": "benchmark write",
            "performance_data": {},
            "lessons_learned": [],
        }
        t = time.perf_counter()
        posted = client.post("/executions", json=record)
        if posted.status_code >= 400:
            raise SystemExit(f"POST /executions: {posted.status_code} {posted.text}")
        t_write = time.perf_counter()
        after = _predict(client, c)["predictions"][0]
        t_answer = time.perf_counter()
        write_ms.append((t_write - t) * 1000)
        predict_ms.append((t_answer - t_write) * 1000)
        changed += json.dumps(after, sort_keys=True) != json.dumps(before, sort_keys=True)
    total = [w + p for w, p in zip(write_ms, predict_ms, strict=True)]
    print(f"writes ({len(contexts)}, {n} executions): POST {_percentiles(write_ms)}")
    print(f"  next predict {_percentiles(predict_ms)}")
    print(f"  write + next predict (time until an answer reflects it): {_percentiles(total)}; "
          f"answers that changed with the write: {changed}/{len(contexts)}")


def cold_predict(url: str, c: dict[str, Any], n: int) -> None:
    args = [
        IGN, "deploy", "predict", "--store", url,
        "-e", c["target_environment"], "-s", c["deployment_strategy"],
        "-r", ",".join(c["resources_deployed"]), "--json",
    ]
    times = []
    for _ in range(2):
        t = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t)
        assert done.returncode in (0, 3, 4), done.stderr[-2000:]
    print(f"cold `ign deploy predict` process ({n} executions): "
          f"{', '.join(f'{s:.1f}' for s in times)} s (median {statistics.median(times):.1f} s)")


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the service did not become ready in 120 s")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
