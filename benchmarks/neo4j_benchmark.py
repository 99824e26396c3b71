"""Neo4j benchmark: bulk ingest against the seed's path, reads, then GDS (not a test).

Against one Neo4j + GDS server (``--store``; it is WIPED, so never point it at real data):

1. baseline: the seed-style path on the first ``--baseline`` records of the history, into a
             wiped store: one transaction per execution that creates it, looks up a pattern by
             strategy + configuration and updates (or creates) it. It is written here with
             the ``neo4j`` driver, since it is the seed's path, not ours;
2. bulk:     the shipped ``Neo4jStore`` through ``learner.record_executions(records,
             batch_size=…)`` of ``--executions`` demo records into a wiped store, per
             ``--batch-sizes`` entry (executions per transaction: the store's
             ``TRANSACTION_ROWS`` is set to it; also per learner batch unless
             ``--learner-batch`` is given), ``--repeats`` times (the best counts),
             printed next to the baseline with their ratio and the CPU per execution of this
             process and of the Neo4j JVM (JMX), which shared machines disturb far less;
3. reads:    ``executions_frame()``, ``metrics_frame()`` and ``issues()`` on the graph of the
             last bulk run (wall time, µs per row);
4. GDS:      on that graph: GDS's memory estimates, the structural projection, FastRP and node
             similarity, each with wall time and the JVM heap (JMX, sampled every 50 ms).

``--variants pipelined`` also runs the same store with the next batch prepared in this thread
while a writer thread writes the previous one (what ``record_executions`` could do). Whether
the driver's Rust codec (``neo4j-rust-ext``) is active is printed: it changes parameter
encoding a lot.

Usage:
    NEO4J_HOME_DIR=.neo4j-bench NEO4J_BOLT_PORT=7688 scripts/neo4j-server start
    .venv/bin/python benchmarks/neo4j_benchmark.py --store bolt://127.0.0.1:7688
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from neo4j import Driver, ManagedTransaction

from deploylearn import DeploymentPatternLearner
from deploylearn.domain.prepared import PreparedExecution, prepare
from deploylearn.domain.screen import validate_execution
from deploylearn.domain.vocabulary import Label, Rel
from deploylearn.store.neo4j import gds
from deploylearn.store.neo4j import store as neo4j_store
from deploylearn.store.neo4j.store import Neo4jStore

MiB = 2**20


def rust_codec() -> bool:
    try:
        import neo4j._rust  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


# -- 1. the seed's path ---------------------------------------------------------------------
# Explicit Cypher is allowed here only: this is the seed's path, kept as a baseline.
SEED_CREATE_EXECUTION = f"CREATE (e:{Label.EXECUTION}) SET e = $props"
SEED_FIND_PATTERN = f"""
MATCH (p:{Label.PATTERN} {{deployment_strategy: $strategy}})
WHERE p.configuration_template = $template
RETURN p.pattern_id AS pattern_id
LIMIT 1
"""
SEED_UPDATE_PATTERN = f"""
MATCH (p:{Label.PATTERN} {{pattern_id: $pattern_id}})
MATCH (e:{Label.EXECUTION} {{execution_id: $execution_id}})
SET p.success_count = p.success_count + $success, p.execution_count = p.execution_count + 1,
    p.last_used = $at
CREATE (e)-[:{Rel.FOLLOWS_DEPLOYMENT_PATTERN}]->(p)
"""
SEED_CREATE_PATTERN = f"""
MATCH (e:{Label.EXECUTION} {{execution_id: $execution_id}})
CREATE (p:{Label.PATTERN} {{pattern_id: $pattern_id, deployment_strategy: $strategy,
    configuration_template: $template, success_count: $success, failure_count: 0,
    execution_count: 1, first_seen: $at, last_used: $at}})
CREATE (e)-[:{Rel.FOLLOWS_DEPLOYMENT_PATTERN}]->(p)
"""


def _seed_props(record: dict[str, Any]) -> dict[str, Any]:
    props = {}
    for key, value in record.items():
        if isinstance(value, dict):
            value = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        elif key in ("started_at", "completed_at") and isinstance(value, str):
            value = datetime.fromisoformat(value)
        props[key] = value
    return props


def seed_style_ingest(driver: Driver, records: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """One write transaction per execution, as the seed's ``record_deployment_execution`` did.

    The pattern is matched on strategy + the exact configuration (the seed had no canonical
    template), counted only on success (the seed learned from successes only). It writes far
    less than our path per execution (no context nodes, issues, metrics, audit, no
    idempotency check), so the bulk/baseline ratio errs in the seed's favour.
    Returns (executions, patterns created).
    """
    created = 0

    def work(tx: ManagedTransaction, record: dict[str, Any]) -> bool:
        props = _seed_props(record)
        tx.run(SEED_CREATE_EXECUTION, props=props).consume()
        template = props["configuration_used"]
        strategy = record["deployment_strategy"]
        found = tx.run(SEED_FIND_PATTERN, strategy=strategy, template=template).single()
        success = int(record["status"] == "completed" and not record["rollback_triggered"])
        params = {
            "execution_id": record["execution_id"],
            "success": success,
            "at": props["started_at"],
        }
        if found is not None:
            tx.run(SEED_UPDATE_PATTERN, pattern_id=found["pattern_id"], **params).consume()
            return False
        pattern_id = "seed-" + hashlib.sha256(f"{strategy}|{template}".encode()).hexdigest()[:16]
        tx.run(
            SEED_CREATE_PATTERN,
            pattern_id=pattern_id,
            strategy=strategy,
            template=template,
            **params,
        ).consume()
        return True

    with driver.session() as session:
        for record in records:
            created += session.execute_write(work, record)
    return len(records), created


def pipelined_ingest(
    learner: DeploymentPatternLearner, records: Sequence[dict[str, Any]], batch_size: int
) -> int:
    """Prepare batch k+1 in this thread while one writer thread writes batch k (the shipped
    store, called as ``record_executions`` would if it overlapped the two).

    Writes stay strictly ordered (one writer, a queue of one), so pattern assignment sees
    every earlier batch exactly as in ``record_executions``; only Python's validation and
    preparation overlap with the server's work.
    """
    pending: queue.Queue[list[PreparedExecution] | None] = queue.Queue(maxsize=1)
    written = 0
    failure: list[BaseException] = []

    def writer() -> None:
        nonlocal written
        while (batch := pending.get()) is not None:
            try:
                result = learner.store.write_executions(batch, actor=learner.settings.actor)
                written += len(result.inserted)
            except BaseException as exc:  # surfaced below
                failure.append(exc)

    thread = threading.Thread(target=writer, name="neo4j-writer")
    thread.start()
    try:
        for start in range(0, len(records), batch_size):
            pending.put(
                [prepare(validate_execution(r), None) for r in records[start : start + batch_size]]
            )
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]
    return written


# -- heap sampling --------------------------------------------------------------------------
@dataclass
class HeapWindow:
    before: int = 0
    peak: int = 0
    after: int = 0
    seconds: float = 0.0


@contextmanager
def heap_sampled(store: Neo4jStore, interval: float = 0.05) -> Iterator[HeapWindow]:
    """Wall time and the JVM heap before, at peak (sampled) and after the block."""
    window = HeapWindow(before=gds.heap_usage(store).used_bytes)
    window.peak = window.before
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            window.peak = max(window.peak, gds.heap_usage(store).used_bytes)

    thread = threading.Thread(target=sample, name="heap-sampler", daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        yield window
    finally:
        window.seconds = time.perf_counter() - start
        stop.set()
        thread.join()
        window.after = gds.heap_usage(store).used_bytes
        window.peak = max(window.peak, window.after)


# -- runs -----------------------------------------------------------------------------------
# The server's CPU time (all JVM threads, ns), to report CPU per execution: unlike wall time
# it hardly moves when other work shares the machine.
JVM_CPU = """
CALL dbms.queryJmx('java.lang:type=OperatingSystem') YIELD attributes
RETURN attributes.ProcessCpuTime.value AS ns
"""


@dataclass
class BulkRun:
    seconds: float
    accepted: int
    client_cpu: float  # seconds of this process
    jvm_cpu: float  # seconds of the Neo4j JVM
    stats: Any


def jvm_cpu_seconds(store: Neo4jStore) -> float:
    records, _, _ = store.driver.execute_query(JVM_CPU, database_=store.database)
    return float(records[0]["ns"]) / 1e9


def timed_bulk(
    url: str,
    variant: str,
    records: Sequence[dict[str, Any]],
    batch_size: int,
    learner_batch: int | None = None,
) -> BulkRun:
    """One bulk run: ``batch_size`` executions per transaction, and per learner batch unless
    ``learner_batch`` is given."""
    shipped = neo4j_store.TRANSACTION_ROWS
    neo4j_store.TRANSACTION_ROWS = batch_size
    batch_size = learner_batch or batch_size
    try:
        with DeploymentPatternLearner.open(url) as learner:
            store = learner.store
            assert isinstance(store, Neo4jStore)
            store.wipe()
            jvm = jvm_cpu_seconds(store)
            cpu = time.process_time()
            start = time.perf_counter()
            if variant == "pipelined":
                accepted = pipelined_ingest(learner, records, batch_size)
            else:
                report = learner.record_executions(records, batch_size=batch_size)
                assert report.rejected == 0, report.as_dict()["errors"][:3]
                accepted = report.accepted
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu
            jvm = jvm_cpu_seconds(store) - jvm
            return BulkRun(seconds, accepted, cpu, jvm, store.stats())
    finally:
        neo4j_store.TRANSACTION_ROWS = shipped


def timed_reads(url: str, repeats: int, out: Callable[[str], None]) -> None:
    """The serving reads on the graph left by the last bulk run: wall time and µs per row."""
    with DeploymentPatternLearner.open(url) as learner:
        store = learner.store
        reads: list[tuple[str, Callable[[], Any]]] = [
            ("executions_frame()", store.executions_frame),
            ("metrics_frame()", store.metrics_frame),
            ("issues()", store.issues),
        ]
        for name, read in reads:
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                rows = len(read())
                times.append(time.perf_counter() - start)
            best = min(times)
            out(
                f"  {name:<20} {rows:>9,} rows: best {best:.2f}s of {repeats} "
                f"({', '.join(f'{t:.2f}' for t in times)}) = {best / max(rows, 1) * 1e6:.1f} µs/row"
            )


def generate(executions: int, seed: int) -> list[dict[str, Any]]:
    from deploylearn.demo import demo_records

    return [record for batch in demo_records(executions, seed=seed) for record in batch]


def line(*cells: object, widths: Sequence[int] = (12, 8, 10, 9, 10, 10, 8)) -> str:
    return " ".join(f"{c!s:>{w}}" for c, w in zip(cells, widths, strict=False))


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> None:
    out(
        f"store {args.store}; cpu count {os.cpu_count()}; "
        f"neo4j Rust codec {'ON' if rust_codec() else 'off (pure Python packstream)'}; "
        f"shipped transaction size {neo4j_store.TRANSACTION_ROWS:,}"
    )
    start = time.perf_counter()
    records = generate(args.executions, args.seed)
    out(f"generated {len(records):,} demo records in {time.perf_counter() - start:.1f}s (untimed)")

    # Warm the server (JIT, query plans) so the first measured configuration is not penalized.
    warm = records[: min(len(records), 2 * args.batch_sizes[0])]
    warmed = timed_bulk(args.store, "store", warm, args.batch_sizes[0])
    out(f"warm-up: {len(warm):,} executions in {warmed.seconds:.1f}s (untimed)")

    # 2. the seed's path first, into a wiped store; the best of the repeats is the baseline
    # (its one commit per execution makes it the most sensitive to disk latency).
    rates = []
    for _ in range(args.baseline_repeats):
        with DeploymentPatternLearner.open(args.store) as learner:
            store = learner.store
            assert isinstance(store, Neo4jStore)
            store.wipe()
            start = time.perf_counter()
            done, patterns = seed_style_ingest(store.driver, records[: args.baseline])
            baseline_seconds = time.perf_counter() - start
            store.wipe()
        rates.append(done / baseline_seconds)
        out(
            f"baseline (seed-style, 1 tx/execution): {done:,} executions in "
            f"{baseline_seconds:.1f}s = {rates[-1]:,.0f} executions/s; "
            f"{patterns:,} patterns (exact-configuration matching splinters them)"
        )
    baseline_rate = max(rates)

    # 1. bulk, per variant and batch size; the best of the repeats counts
    out("")
    out("  client/JVM CPU = CPU seconds per execution of this process / of the Neo4j JVM")
    out(line("variant", "batch", "seconds", "exec/s", "x seed", "client µs", "JVM µs"))
    results: dict[tuple[str, int], float] = {}
    stats = None
    for variant in args.variants:
        for batch_size in args.batch_sizes:
            for _ in range(args.repeats):
                bulk = timed_bulk(args.store, variant, records, batch_size, args.learner_batch)
                assert bulk.accepted == len(records), (bulk.accepted, len(records))
                stats = bulk.stats
                rate = bulk.accepted / bulk.seconds
                results[variant, batch_size] = max(rate, results.get((variant, batch_size), 0))
                out(
                    line(
                        variant,
                        batch_size,
                        f"{bulk.seconds:.1f}",
                        f"{rate:,.0f}",
                        f"{rate / baseline_rate:.1f}",
                        f"{bulk.client_cpu / bulk.accepted * 1e6:.0f}",
                        f"{bulk.jvm_cpu / bulk.accepted * 1e6:.0f}",
                    )
                )
    out("")
    for variant in args.variants:
        rates_by_batch = {b: r for (v, b), r in results.items() if v == variant}
        batch = max(rates_by_batch, key=lambda b: rates_by_batch[b])
        out(
            f"bulk ({variant}): best {rates_by_batch[batch]:,.0f} executions/s at batch "
            f"{batch:,}; seed-style {baseline_rate:,.0f}/s; ratio "
            f"{rates_by_batch[batch] / baseline_rate:.1f}x (targets: >= 5,000/s and >= 20x)"
        )
    assert stats is not None
    out(
        f"graph: {stats.executions:,} executions, {stats.patterns:,} patterns, "
        f"{stats.issues:,} issues, {stats.rollback_scenarios:,} rollback scenarios"
    )

    # 3. serving reads on the graph left by the last bulk run
    if args.read_repeats:
        out("")
        out(f"reads on {stats.executions:,} executions:")
        timed_reads(args.store, args.read_repeats, out)

    # 4. GDS on the graph left by the last bulk run
    if args.skip_gds:
        return
    out("")
    with DeploymentPatternLearner.open(args.store) as learner:
        store = learner.store
        assert isinstance(store, Neo4jStore)
        heap_max = gds.heap_usage(store).max_bytes
        out(f"GDS on {stats.executions:,} executions; JVM heap max {heap_max / MiB:,.0f} MiB")
        for est in gds.estimate_memory(store, dimension=args.dimension, top_k=args.top_k):
            out(
                f"  GDS estimate {est.algorithm:<15} {est.required_memory} "
                f"(projection included; {est.bytes_max / MiB:,.1f} MiB max)"
            )
        out("  heap = JVM heap used before the step (garbage included: G1 collects lazily);")
        out("  peak = highest sample while it ran; +MiB = peak - heap")
        out(line("step", "seconds", "heap MiB", "peak MiB", "+MiB", widths=(34, 8, 9, 9, 9)))

        def report(step: str, w: HeapWindow) -> None:
            out(
                line(
                    step,
                    f"{w.seconds:.2f}",
                    f"{w.before / MiB:,.0f}",
                    f"{w.peak / MiB:,.0f}",
                    f"{(w.peak - w.before) / MiB:,.0f}",
                    widths=(34, 8, 9, 9, 9),
                )
            )

        with heap_sampled(store) as window:
            projection = gds.project_structure(store)
        assert projection is not None
        report(
            f"project ({projection.node_count:,} n, {projection.relationship_count:,} r)", window
        )
        try:
            with gds.gds_client(store) as client:
                info = client.graph.list(projection.graph_name)[0]
                out(f"  projection size in the catalog: {info.memory_usage}")
            with heap_sampled(store) as window:
                frame = gds.fastrp_embeddings(
                    store, dimension=args.dimension, projection=projection
                )
            report(f"fastRP d={args.dimension} ({len(frame):,} rows)", window)
            with heap_sampled(store) as window:
                frame = gds.fastrp_embeddings(
                    store,
                    dimension=args.dimension,
                    projection=projection,
                    include_executions=True,
                )
            report(f"fastRP +executions ({len(frame):,} rows)", window)
        finally:
            gds.drop_projection(store, projection.graph_name)
        with heap_sampled(store) as window:
            frame = gds.fastrp_embeddings(store, dimension=args.dimension)
        report("fastRP incl. own projection", window)
        with heap_sampled(store) as window:
            sim = gds.write_pattern_similarity_run(store, top_k=args.top_k)
        report(f"node similarity ({sim.relationships:,} rels)", window)
        out(f"  node similarity compared {sim.nodes_compared:,} patterns")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--store", default="bolt://127.0.0.1:7688", help="WIPED before use")
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=5_000, help="seed-style slice size")
    parser.add_argument("--baseline-repeats", type=int, default=2)
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[1_000, 2_000, 5_000],
        help="executions per batch and per transaction (the store's TRANSACTION_ROWS)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["store"],
        choices=["store", "pipelined"],
        help="store: learner.record_executions; pipelined: prepare the next batch meanwhile",
    )
    parser.add_argument(
        "--learner-batch",
        type=int,
        default=None,
        help="record_executions batch for every run (default: each --batch-sizes entry)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="bulk runs per configuration")
    parser.add_argument("--read-repeats", type=int, default=3, help="0 skips the reads")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--skip-gds", action="store_true")
    args = parser.parse_args()
    # The store's queries on an empty database make the driver log "property does not
    # exist" notifications; they are noise here.
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    run(args)


if __name__ == "__main__":
    main()
