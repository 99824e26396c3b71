"""The ingest runner: rows of a file (or of memory), prepared here or in worker processes,
written to a store in batches, with a report of what was accepted, duplicated or rejected.

A batch is a transaction: a failure part way keeps what was committed, and says so; running
the same ingest again adds only the rest (identities are content-derived or caller-given).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploylearn.domain.answers.ingest import IngestProblem, IngestSummary
from deploylearn.domain.prepared import PreparedExecution
from deploylearn.domain.redaction import SecretCipher
from deploylearn.errors import FieldProblem, InvalidRecordError, StoreError, WorkerError
from deploylearn.ingest.formats import Format, read_rows
from deploylearn.ingest.workers import (
    Prepared,
    PreparedChunk,
    can_fork,
    prepare_in_workers,
    prepare_rows,
)
from deploylearn.store import Store
from deploylearn.store.base import TableWriter
from deploylearn.store.plan import WriteResult

MAX_KEPT_ERRORS = 1000
# An ingest lists the ids it inserted up to this many (a serving state folds them in); past
# it, ``inserted_ids`` is None: a rebuild is cheaper than folding that many rows one by one.
MAX_LISTED_IDS = 10_000
# ingest() prepares in worker processes from this file size on (~20,000 demo executions):
# below it, forking and the pipeline's start cost more than they save.
PARALLEL_MIN_BYTES = 20 * 2**20
# The writer takes ~23 µs per execution, a worker ~50 µs: past 3–4 workers the writer bounds.
MAX_WORKERS = 4


@dataclass
class IngestReport:
    """What an ingest did. ``errors`` keeps the first ``MAX_KEPT_ERRORS`` problems."""

    source: str
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[FieldProblem] = field(default_factory=list)
    inserted_ids: list[str] | None = field(default_factory=list, repr=False)

    @property
    def read(self) -> int:
        return self.accepted + self.duplicates + self.rejected

    def _tally(self, result: WriteResult, lines: Sequence[int]) -> None:
        """Count a batch write; ``lines[i]`` is the line of the batch's i-th execution."""
        self.accepted += len(result.inserted)
        self.duplicates += len(result.duplicates)
        if self.inserted_ids is not None:
            self.inserted_ids += result.inserted
            if len(self.inserted_ids) > MAX_LISTED_IDS:
                self.inserted_ids = None
        for position, message in result.conflicts:
            self._reject([FieldProblem("execution_id", message, lines[position])])

    def _reject(self, problems: Iterable[FieldProblem]) -> None:
        self.rejected += 1
        for problem in problems:
            if len(self.errors) < MAX_KEPT_ERRORS:
                self.errors.append(problem)

    def summary(self) -> IngestSummary:
        """The report as its typed answer (what ``--json`` prints)."""
        return IngestSummary(
            source=self.source,
            read=self.read,
            accepted=self.accepted,
            duplicates=self.duplicates,
            rejected=self.rejected,
            errors=[
                IngestProblem(line=e.line, field=e.field, message=e.message) for e in self.errors
            ],
        )

    def as_dict(self) -> dict[str, Any]:
        return self.summary().model_dump(mode="json")


def ingest_file(
    store: Store,
    path: str | Path,
    *,
    cipher: SecretCipher | None,
    actor: str,
    fmt: Format | None = None,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> IngestReport:
    """``DeploymentPatternLearner.ingest`` (see there): read, prepare, write, report."""
    path = Path(path)
    rows = read_rows(path, fmt)
    workers = ingest_workers(store, path, workers)
    if workers > 1 and isinstance(store, TableWriter):
        chunks = prepare_in_workers(
            rows, cipher=cipher, build=type(store).execution_table, workers=workers
        )
        return write_chunks(store, chunks, source=str(path), actor=actor, progress=progress)
    return write_prepared(
        store,
        prepare_rows(rows, cipher),
        source=str(path),
        actor=actor,
        batch_size=batch_size,
        progress=progress,
    )


def ingest_workers(store: Store, path: str | Path, requested: int | None = None) -> int:
    """How many worker processes an ingest of ``path`` uses (1: none): only stores that
    write prepared tables, on systems that fork; by default one per CPU (at most
    ``MAX_WORKERS``) for files of ``PARALLEL_MIN_BYTES`` or more."""
    if not isinstance(store, TableWriter) or not can_fork():
        return 1
    if requested is not None:
        return max(1, requested)
    if Path(path).stat().st_size < PARALLEL_MIN_BYTES:
        return 1
    return min(os.cpu_count() or 1, MAX_WORKERS)


def write_prepared(
    store: Store,
    prepared: Iterable[Prepared],
    *,
    source: str,
    actor: str,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Write executions prepared in this process, ``batch_size`` per transaction."""
    # Tried and dropped: writing batch N in a thread while batch N+1 is prepared. DuckDB
    # releases the GIL, but the store's Python half (plan, columns, Arrow) competes with
    # the preparing thread: 16.3k/s against 17.9k/s without the thread; on Neo4j the writes
    # slowed by what preparation cost (docs/performance.md).
    report = IngestReport(source)
    batch: list[PreparedExecution] = []
    lines: list[int] = []

    def flush() -> None:
        result = store.write_executions(batch, actor=actor)
        report._tally(result, lines)
        if progress:
            progress(report.read)
        batch.clear()
        lines.clear()

    with _cyclic_gc_paused(), _says_what_was_committed(report), store.bulk_load():
        for line, item in prepared:
            if isinstance(item, InvalidRecordError):
                report._reject(item.problems)
                continue
            batch.append(item)
            lines.append(line)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        elif progress:
            progress(report.read)
    return report


def write_chunks(
    store: TableWriter,
    chunks: Iterable[PreparedChunk],
    *,
    source: str,
    actor: str,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Write chunks prepared in worker processes, in order, one transaction each."""
    report = IngestReport(source)
    with _cyclic_gc_paused(), _says_what_was_committed(report), store.bulk_load():
        for chunk in chunks:
            for problems in chunk.rejected:
                report._reject(problems)
            if chunk.rows and chunk.table is not None:
                result = store.write_execution_table(chunk.rows, chunk.table, actor=actor)
                report._tally(result, chunk.lines)
            if progress:
                progress(report.read)
    return report


@contextmanager
def _says_what_was_committed(report: IngestReport) -> Iterator[None]:
    """A store or worker failure mid-ingest re-raised (same type) with what was committed
    before it: batches are transactions, so those stay, and ingesting again adds the rest."""
    try:
        yield
    except (StoreError, WorkerError) as exc:
        done = report.accepted + report.duplicates
        raise type(exc)(
            f"{exc}; {report.accepted} executions of {report.source} were committed before "
            f"this ({done} lines stored or already present), ingesting it again adds only "
            "the rest"
        ) from exc


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector during a bulk write.

    A batch keeps tens of thousands of prepared executions alive. Each allocation-driven
    collection then walks all of them, which cost a fifth of bulk ingest time (13.7k vs
    17.6k executions/s on 100k demo executions). Records hold no reference cycles, so
    reference counting still frees everything. The previous state is restored at the end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


