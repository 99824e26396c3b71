"""Ingest benchmark for the embedded store (a script, not a timed test).

For each size it writes a demo history to JSON Lines (not timed), then, each in a fresh child
process so peak memory is that run's own:

* bulk:     ``DeploymentPatternLearner.ingest(file)`` into an empty DuckDB file, with the
            shipped default of worker processes (one per CPU for large files);
* 1 process: the same with ``workers=1``, side by side;
* baseline: the seed-style path side by side, one ``record_deployment_execution`` call (one
            transaction) per execution, on the first ``--single`` executions of the same file,
            with p50/p99 latency per call.

Prints executions/s, the bulk/baseline ratio and peak RSS. Usage:
    .venv/bin/python benchmarks/ingest_benchmark.py --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child_bulk(path: str, store: str, workers: str) -> dict[str, float]:
    """``workers``: "auto" (the shipped default) or a number ("1": all in this process)."""
    import resource

    from deploylearn import DeploymentPatternLearner

    with DeploymentPatternLearner.open(store) as learner:
        chosen = learner.ingest_workers(Path(path), None if workers == "auto" else int(workers))
        start = time.perf_counter()
        report = learner.ingest(path, batch_size=20_000, workers=chosen)
        elapsed = time.perf_counter() - start
    assert report.rejected == 0, report.as_dict()["errors"][:3]
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "executions": report.accepted,
        "seconds": elapsed,
        "workers": chosen,
        "worker_peak_mib": worker_peak if chosen > 1 else 0.0,
    }


def child_single(path: str, store: str, limit: int) -> dict[str, float]:
    import orjson

    from deploylearn import DeploymentPatternLearner

    records = []
    with open(path, "rb") as handle:
        for line in handle:
            records.append(orjson.loads(line))
            if len(records) >= limit:
                break
    latencies = []
    with DeploymentPatternLearner.open(store) as learner:
        start = time.perf_counter()
        for record in records:
            t0 = time.perf_counter()
            learner.record_deployment_execution(**record)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "executions": len(records),
        "seconds": elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def run_child(*args: str) -> tuple[dict[str, float], float]:
    """Run this script as a child; return its JSON answer and its peak RSS in MiB."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"child {args[0]} failed with status {status}")
    return json.loads(output), usage.ru_maxrss / 1024


def write_history(path: Path, size: int) -> float:
    from deploylearn.demo import demo_records
    from deploylearn.ingest.formats import write_records

    start = time.perf_counter()
    write_records(path, demo_records(size, seed=1), "jsonl")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--single", type=int, default=5_000, help="baseline slice size")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = (
            child_bulk(*rest) if kind == "bulk" else child_single(rest[0], rest[1], int(rest[2]))
        )
        print(json.dumps(result))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="deploylearn-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"workdir {workdir}; cpu count {os.cpu_count()}")
    columns = ("size", "path", "executions", "seconds", "exec/s", "peak MiB")
    print("{:>9} {:<9} {:>10} {:>8} {:>9} {:>9}  notes".format(*columns))
    for size in args.sizes:
        history = workdir / f"history-{size}.jsonl"
        if not history.exists():
            generated = write_history(history, size)
            mib = history.stat().st_size / 2**20
            print(f"{size:>9} generated {mib:.0f} MiB in {generated:.1f}s (not timed)")
        bulk_store = workdir / f"bulk-{size}.duckdb"
        single_store = workdir / f"single-{size}.duckdb"
        for stale in (bulk_store, single_store):
            stale.unlink(missing_ok=True)
        bulk, bulk_peak = run_child("bulk", str(history), f"duckdb://{bulk_store}", "auto")
        for stale in (bulk_store, Path(f"{bulk_store}.wal")):
            stale.unlink(missing_ok=True)
        one, one_peak = run_child("bulk", str(history), f"duckdb://{bulk_store}", "1")
        single, single_peak = run_child(
            "single", str(history), f"duckdb://{single_store}", str(args.single)
        )
        bulk_rate = bulk["executions"] / bulk["seconds"]
        one_rate = one["executions"] / one["seconds"]
        single_rate = single["executions"] / single["seconds"]
        workers = int(bulk["workers"])
        # Workers are forked: their RSS counts pages shared with the parent again, so the
        # sum is an upper bound of the memory used.
        bound = bulk_peak + workers * bulk["worker_peak_mib"] if workers > 1 else bulk_peak
        print(
            f"{size:>9} {'bulk':<9} {bulk['executions']:>10.0f} {bulk['seconds']:>8.1f} "
            f"{bulk_rate:>9.0f} {bound:>9.0f}  {workers} worker(s): parent {bulk_peak:.0f} MiB"
            f" + workers <= {bulk['worker_peak_mib']:.0f} MiB each; "
            "target >= 50000/s, <= 2048 MiB at 1M"
        )
        print(
            f"{size:>9} {'1 process':<9} {one['executions']:>10.0f} {one['seconds']:>8.1f} "
            f"{one_rate:>9.0f} {one_peak:>9.0f}  bulk without workers; workers give "
            f"{bulk_rate / one_rate:.2f}x"
        )
        print(
            f"{size:>9} {'baseline':<9} {single['executions']:>10.0f} {single['seconds']:>8.1f} "
            f"{single_rate:>9.0f} {single_peak:>9.0f}  one call per execution: "
            f"p50 {single['p50_ms']:.2f} ms, p99 {single['p99_ms']:.2f} ms (target p50 <= 2 ms)"
        )
        print(f"{size:>9} {'ratio':<9} bulk is {bulk_rate / single_rate:.1f}x the seed-style path")
        for stale in (bulk_store, single_store):
            stale.unlink(missing_ok=True)
            Path(f"{stale}.wal").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
