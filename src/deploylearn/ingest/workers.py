"""Validating and preparing a file's rows, in this process or in worker processes.

One process spends ~55 µs per execution on a bulk ingest, two thirds of it reading, validating
and preparing (docs/performance.md). For stores that write tables (``store.base.
TableWriter``), ``prepare_in_workers`` moves that work, and building the store's
write table, to forked worker processes. The parent is left to plan and write, ~22 µs per
execution, most of it DuckDB's insert and commit. The workers send back each chunk's table
and its ``PlanRow``s, not the prepared executions, because rebuilding those in the parent
costs as much as preparing them.

Chunks come back in file order, so pattern assignment, which depends on order, and line
numbers come out exactly as on one process. At most ``2 × workers`` chunks are in flight, so
memory stays bounded.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from deploylearn.domain.prepared import PreparedExecution, prepare
from deploylearn.domain.redaction import SecretCipher
from deploylearn.domain.screen import validate_execution
from deploylearn.errors import FieldProblem, InvalidRecordError, WorkerError
from deploylearn.ingest.formats import Row
from deploylearn.store.plan import PlanRow

Prepared = tuple[int, PreparedExecution | InvalidRecordError]
TableBuilder = Callable[[Sequence[PreparedExecution]], pa.Table]

# Rows per worker chunk (one write transaction each). With two workers, 100k / 400k demo files:
# 22.2k / 23.4k/s at 2,000 rows, 23.5k / 24.8k at 5,000, 24.4k / 25.9k at 10,000, 21.9k /
# 25.4k at 20,000. Each chunk costs the writer a few fixed milliseconds (Arrow registrations,
# definition inserts, the id lookup), while large chunks start the pipeline late.
CHUNK_ROWS = 10_000


def prepare_rows(rows: Iterable[Row], cipher: SecretCipher | None) -> Iterator[Prepared]:
    """Each row prepared, or its problems located at its line."""
    for line, raw in rows:
        if isinstance(raw, InvalidRecordError):
            yield line, raw
            continue
        try:
            yield line, prepare(validate_execution(raw), cipher)
        except InvalidRecordError as exc:
            yield line, exc.at_line(line)
        except (RecursionError, TypeError, ValueError, OverflowError) as exc:
            # validation should have named the field; still, one odd record costs its line,
            # never the ingest (nor, with workers, the pool)
            problem = f"cannot be stored ({type(exc).__name__}: {str(exc)[:200]})"
            yield line, InvalidRecordError([FieldProblem("record", problem, line)])


@dataclass
class PreparedChunk:
    """A chunk of rows, prepared: ``rows[i]`` (from line ``lines[i]``) plans row
    ``rows[i].position`` of ``table``; ``rejected`` holds each bad row's located problems."""

    lines: list[int]
    rows: list[PlanRow]
    table: pa.Table | None
    rejected: list[list[FieldProblem]]


def can_fork() -> bool:
    """Workers are forked: they inherit the loaded modules and the cipher, and start at once."""
    return "fork" in multiprocessing.get_all_start_methods()


def prepare_in_workers(
    rows: Iterable[Row],
    *,
    cipher: SecretCipher | None,
    build: TableBuilder,
    workers: int,
    chunk_rows: int | None = None,
) -> Iterator[PreparedChunk]:
    """``rows`` prepared by ``workers`` forked processes, in chunks (``CHUNK_ROWS`` by
    default), in order."""
    # A worker that dies (killed, out of memory) breaks the pool with an error; a bare
    # multiprocessing.Pool would wait for its chunk forever.
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(cipher, build, os.getpid()),
    )
    pending: deque[Future[PreparedChunk]] = deque()
    try:
        for chunk in _chunks(rows, chunk_rows or CHUNK_ROWS):
            pending.append(_submit(pool, chunk))
            if len(pending) >= 2 * workers:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())
    finally:
        pool.shutdown(cancel_futures=True)


_WORKER_DIED = (
    "a worker process preparing the input died (killed, or out of memory?); chunks written "
    "before it stay written, so ingesting the file again adds only the rest"
)


def _submit(pool: ProcessPoolExecutor, chunk: list[Row]) -> Future[PreparedChunk]:
    # A pool broken before this chunk refuses it at once (a race with the chunk that broke it).
    try:
        return pool.submit(_prepare_chunk, chunk)
    except BrokenProcessPool as exc:
        raise WorkerError(_WORKER_DIED) from exc


def _result(future: Future[PreparedChunk]) -> PreparedChunk:
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise WorkerError(_WORKER_DIED) from exc


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# A worker's cipher and table builder, set once when it starts (inherited, never pickled).
_worker: tuple[SecretCipher | None, TableBuilder] | None = None


def _start_worker(cipher: SecretCipher | None, build: TableBuilder, parent: int) -> None:
    global _worker
    _worker = (cipher, build)
    _exit_with_parent(parent)
    # Like the parent's ingest: a chunk's objects hold no reference cycles, and collections
    # that walk them all cost a fifth of the time (see runner._cyclic_gc_paused).
    gc.disable()


# prctl(2) option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1
_WATCH_SECONDS = 0.5


def _exit_with_parent(parent: int) -> None:
    """Make this worker die with the ingest that forked it (killed, SIGTERM, crashed):
    otherwise it lives on, holding its memory (~240 MB), once the pool's parent is gone.

    On Linux the kernel sends SIGKILL at the parent's death (``PR_SET_PDEATHSIG``);
    elsewhere a daemon thread polls the parent id. Either way the parent may have died
    before this ran, which the id check catches.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_WATCH_SECONDS)
    os._exit(1)


def _prepare_chunk(chunk: list[Row]) -> PreparedChunk:
    assert _worker is not None, "prepare_in_workers starts workers with _start_worker"
    cipher, build = _worker
    lines: list[int] = []
    prepared: list[PreparedExecution] = []
    rejected: list[list[FieldProblem]] = []
    for line, item in prepare_rows(chunk, cipher):
        if isinstance(item, InvalidRecordError):
            rejected.append(item.problems)
        else:
            lines.append(line)
            prepared.append(item)
    # Executions with equal templates share one template object, so the chunk pickles each
    # distinct template once (a handful per chunk) instead of once per execution.
    templates: dict[bytes, dict[str, Any]] = {}
    rows = []
    for position, e in enumerate(prepared):
        row = PlanRow.of(position, e)
        key = orjson.dumps(row.template, option=orjson.OPT_SORT_KEYS)
        row.template = templates.setdefault(key, row.template)
        rows.append(row)
    return PreparedChunk(lines, rows, build(prepared) if prepared else None, rejected)
