"""The embedded default store: one DuckDB file, no server, the first command just works.

DuckDB lets one process write a file at a time. By default the store holds the file open
(fast single writes); with ``?mode=shared`` in the URL every operation opens the file, works
in one transaction and closes it, so several processes can write one file in turn, each
waiting for DuckDB's file lock (up to ``lock_timeout`` seconds). Counts are applied as deltas
inside the writing transaction, so no interleaving loses an update.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import cache
from operator import attrgetter
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pandas as pd
import pyarrow as pa

from deploylearn.domain.execution_schema import COLUMNS, EXPORT_FIELDS, Kind, Source, names
from deploylearn.domain.identity import PatternIndex
from deploylearn.domain.prepared import PreparedExecution, adaptation_id_for
from deploylearn.domain.records import DeploymentPattern, EnvironmentAdaptation, RollbackScenario
from deploylearn.domain.tokens import (
    META_KEY_PREFIX,
    ApiToken,
    meta_key,
    parse_entry,
)
from deploylearn.errors import StoreError, StoreUnavailableError
from deploylearn.store.base import (
    EXECUTION_FRAME_DTYPES,
    ISSUE_FRAME_DTYPES,
    METRIC_FRAME_DTYPES,
    SCHEMA_VERSION,
    AuditEntry,
    KeyRecord,
    StoreStats,
    TableWriter,
    process_actor,
    removal_detail,
    typed_frame,
    wipe_detail,
)
from deploylearn.store.duckdb import sql as sql
from deploylearn.store.plan import (
    Plannable,
    PlannableT,
    PlanRow,
    WritePlan,
    WriteResult,
    plan_write,
)

# DuckDB's own default is 80 % of RAM; a recorder should leave memory to the learning jobs.
DEFAULT_MEMORY_LIMIT = "1GB"
# One worker thread: each statement then skips DuckDB's task scheduling, which took a single
# record_deployment_execution from 2.0-2.2 to 1.75-1.9 ms p50 (docs/performance.md). Bulk
# ingest was unchanged; 1M-row frame reads were 0-30 % slower. ``?threads=N`` in the URL.
DEFAULT_THREADS = 1
# WAL size that triggers a checkpoint during bulk_load(). Each checkpoint rewrites the growing
# table and its primary-key index, so with DuckDB's 16 MB default the COMMIT share of an
# ingest grew from 9 µs per execution at 100k to 23 µs at 1M (docs/performance.md).
BULK_CHECKPOINT_THRESHOLD = "4GB"
_TS = pa.timestamp("us", tz="UTC")
# what execution_table puts where only the writer knows the value (write_execution_table)
_PLACEHOLDER_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_STRS = pa.list_(pa.string())


# Never fetch or load an extension: a file DuckDB reads through one (SQLite, Parquet …) is
# not a store, and opening a store must not reach the network.
_SAFE_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _stored_version(con: duckdb.DuckDBPyConnection) -> int | None:
    tables = {row[0] for row in con.execute(sql.USER_TABLES).fetchall()}
    if "meta" not in tables:
        return None
    row = con.execute(sql.GET_SCHEMA_VERSION).fetchone()
    return int(row[0]) if row else None


def _foreign_reason(con: duckdb.DuckDBPyConnection) -> str | None:
    """Why the database behind ``con`` is not a deploylearn store this version may write
    (None: it is one). Only reads."""
    tables = {row[0] for row in con.execute(sql.USER_TABLES).fetchall()}
    if "meta" not in tables:
        return "not a deploylearn store (no deploylearn marker)"
    try:
        meta = dict(con.execute(sql.META_ROWS).fetchall())
    except duckdb.Error:
        return "not a deploylearn store (no deploylearn marker)"
    if meta.get("store_format") != sql.STORE_FORMAT:
        columns = {row[0] for row in con.execute(sql.TABLE_COLUMNS, ["executions"]).fetchall()}
        legacy = meta.get("schema_version") == "1" and tables >= sql.LEGACY_TABLES
        if not (legacy and "content_hash" in columns):
            return "not a deploylearn store (no deploylearn marker)"
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError:
        return f"schema version {meta.get('schema_version')!r} is not a number"
    if version > SCHEMA_VERSION:
        return (
            f"schema version {version} was written by a newer deploylearn "
            f"(this one knows up to {SCHEMA_VERSION})"
        )
    return None


def _create_schema(con: duckdb.DuckDBPyConnection, version: int | None) -> None:
    """Create or migrate the schema from ``version`` (None: a new store), in the caller's
    transaction; a change of version is an audit event."""
    for statement in sql.SCHEMA:
        con.execute(statement)
    if (con.execute(sql.HAS_LEGACY_COUNTS).fetchone() or (0,))[0]:
        for statement in sql.DROP_LEGACY_COUNTS:
            con.execute(statement)
    con.execute(sql.SET_STORE_ID, [uuid.uuid4().hex])  # kept if the store has one
    marked = con.execute(sql.GET_STORE_FORMAT).fetchone()
    if version == SCHEMA_VERSION and marked:
        return
    con.execute(sql.SET_SCHEMA_VERSION, [str(SCHEMA_VERSION)])
    con.execute(sql.SET_STORE_FORMAT, [sql.STORE_FORMAT])
    action, detail = (
        ("create_schema", f"schema version {SCHEMA_VERSION}")
        if version is None
        else ("migrate_schema", f"schema version {version} to {SCHEMA_VERSION}, marked")
    )
    con.execute(
        sql.INSERT_AUDIT_EVENT, [datetime.now(UTC), process_actor(), action, "schema", detail]
    )


class DuckDBStore(TableWriter):
    """Deployment history in a DuckDB file (or in memory for ``duckdb://:memory:``)."""


    def __init__(
        self,
        path: str,
        *,
        shared: bool = False,
        lock_timeout: float = 60.0,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int = DEFAULT_THREADS,
        create: bool = True,
    ) -> None:
        """``create=False`` (read commands): a missing file is an error, not a new store."""
        if path != ":memory:":
            path = str(Path(path).expanduser().resolve())
        self.path = path
        self.url = f"duckdb://{path}"
        self._shared = shared and path != ":memory:"
        self._lock_timeout = lock_timeout
        self._memory_limit = memory_limit
        self._threads = threads
        self._mutex = threading.RLock()
        self._index: PatternIndex | None = None
        self._known: tuple[set[str], set[str]] | None = None  # issue ids, scenario ids
        self._con: duckdb.DuckDBPyConnection | None = None
        if path != ":memory:":
            if not Path(path).exists():
                if not create:
                    raise StoreUnavailableError(
                        f"no store at {path}: `ign db init` or a first write creates it"
                    )
                self._create_file()
            self._check_ours()
        if not self._shared:
            self._con = self._connect()
        self.init_schema()

    # -- opening: only files deploylearn made ----------------------------------------------
    def _create_file(self) -> None:
        """A new store, built under a temporary name and linked into place: a crash never
        leaves a half-made file, and a file another process created meanwhile is kept."""
        target = Path(self.path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.creating")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary.unlink(missing_ok=True)
            con = duckdb.connect(str(temporary), config=_SAFE_CONFIG)
            try:
                con.execute(sql.SET_UTC)
                _create_schema(con, None)
            finally:
                con.close()
            # another process may have created it first: it is then checked like any other
            with suppress(FileExistsError):
                os.link(temporary, target)
        except (OSError, duckdb.Error) as exc:
            raise StoreUnavailableError(
                f"cannot create DuckDB store {self.path}: {_first_line(exc)}"
            ) from exc
        finally:
            temporary.unlink(missing_ok=True)
            Path(f"{temporary}.wal").unlink(missing_ok=True)

    def _check_ours(self) -> None:
        """Refuse, before any write, a file that is not a deploylearn store or is newer."""
        try:
            with open(self.path, "rb") as handle:
                header = handle.read(12)
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot open DuckDB store {self.path}: {_first_line(exc)}"
            ) from exc
        if header[8:12] != b"DUCK":
            raise StoreUnavailableError(
                f"{self.path} is not a DuckDB file; refusing to open it as a store"
            )
        try:
            con = self._connect(read_only=True)
        except StoreUnavailableError as exc:
            if not isinstance(exc.__cause__, duckdb.ConnectionException):
                raise
            # This process already holds the file open read-write (DuckDB shares one instance
            # per file and refuses a second configuration): ask through that instance.
            con = self._connect()
        try:
            problem = _foreign_reason(con)
        finally:
            con.close()
        if problem:
            raise StoreUnavailableError(f"{self.path}: {problem}; refusing to open it")

    # -- connections -----------------------------------------------------------------------
    def _connect(self, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.005
        config = {**_SAFE_CONFIG, "memory_limit": self._memory_limit, "threads": self._threads}
        while True:
            try:
                con = duckdb.connect(self.path, read_only=read_only, config=config)
                con.execute(sql.SET_UTC)
                return con
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise StoreUnavailableError(
                        f"cannot open DuckDB store {self.path}: {exc}".splitlines()[0]
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
            except duckdb.Error as exc:
                raise StoreUnavailableError(
                    f"cannot open DuckDB store {self.path}: {exc}".splitlines()[0]
                ) from exc

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._mutex:
            if self._con is not None:
                yield self._con
                return
            if not self._shared:
                raise StoreError("store is closed")
            con = self._connect()
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connection() as con:
            con.execute(sql.BEGIN)
            try:
                yield con
            except BaseException:
                con.execute(sql.ROLLBACK)
                self._index = None  # it may hold patterns that were rolled back
                self._known = None
                raise
            con.execute(sql.COMMIT)

    def close(self) -> None:
        with self._mutex:
            if self._con is not None:
                self._con.close()
                self._con = None

    # -- writes ----------------------------------------------------------------------------
    def init_schema(self) -> None:
        try:
            with self._transaction() as con:
                version = _stored_version(con)
                new_in_memory = self.path == ":memory:" and version is None
                if not new_in_memory and (problem := _foreign_reason(con)):
                    raise StoreUnavailableError(f"{self.path}: {problem}; refusing to write it")
                _create_schema(con, version)
        except duckdb.Error as exc:
            raise StoreError(f"cannot create schema in {self.path}: {exc}") from exc

    def _pattern_index(self, con: duckdb.DuckDBPyConnection) -> PatternIndex:
        if self._index is not None and not self._shared:
            return self._index
        index = PatternIndex()
        for pattern_id, strategy, template in con.execute(sql.ALL_PATTERN_TEMPLATES).fetchall():
            index.add(pattern_id, strategy, orjson.loads(template))
        self._index = index
        return index

    def write_executions(self, batch: Sequence[PreparedExecution], *, actor: str) -> WriteResult:
        if len(batch) == 1 and not self._shared:
            try:
                return self._write_one(batch[0], actor)
            except duckdb.Error as exc:
                raise StoreError(f"write to {self.path} failed: {exc}") from exc
        return self._write_batch(batch, lambda con, plan: _insert_executions(con, plan, actor))

    @staticmethod
    def execution_table(batch: Sequence[PreparedExecution]) -> pa.Table:
        placeholders = [""] * len(batch)
        columns = _execution_columns(batch, placeholders, _PLACEHOLDER_TIME, "")
        return _arrow_table(columns, _EXECUTION_SCHEMA)

    def write_execution_table(
        self, rows: Sequence[PlanRow], table: pa.Table, *, actor: str
    ) -> WriteResult:
        return self._write_batch(
            rows, lambda con, plan: _insert_execution_table(con, table, plan, actor)
        )

    def _write_batch(
        self,
        batch: Sequence[PlannableT],
        insert: Callable[[duckdb.DuckDBPyConnection, WritePlan[PlannableT]], None],
    ) -> WriteResult:
        """One transaction: plan ``batch`` against the stored ids and patterns, then ``insert``
        its new executions and the patterns, issues and scenarios they are the first of."""
        if not batch:
            return WriteResult([], [], [])
        try:
            with self._transaction() as con:
                existing = _existing_hashes(con, batch)
                index = self._pattern_index(con)
                plan = plan_write(batch, existing, index)
                # the issues and scenarios this process knows are stored need no insert
                known = None if self._shared else self._known_ids(con)
                _persist(con, plan, index, insert, known)
        except duckdb.Error as exc:  # _transaction rolled back and dropped both caches
            raise StoreError(f"write to {self.path} failed: {exc}") from exc
        if known is not None:
            known[0].update(plan.issue_deltas)
            known[1].update(plan.scenario_deltas)
        return WriteResult([e.execution_id for e in plan.inserts], plan.duplicates, plan.conflicts)

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Checkpoint once at the end instead of every 16 MB of WAL (commits stay durable:
        the WAL is synced at each one). Not in shared mode: other processes use the file."""
        if self._shared or self._con is None:
            yield
            return
        con = self._con
        with self._mutex:
            previous = con.execute(sql.GET_CHECKPOINT_THRESHOLD).fetchone()
            con.execute(sql.set_checkpoint_threshold(BULK_CHECKPOINT_THRESHOLD))
        try:
            yield
        finally:
            with self._mutex:
                restored = str(previous[0]) if previous else sql.DEFAULT_CHECKPOINT_THRESHOLD
                con.execute(sql.set_checkpoint_threshold(restored))
                con.execute(sql.CHECKPOINT)

    def _write_one(self, execution: PreparedExecution, actor: str) -> WriteResult:
        """The seed's hot path: one execution, committed before returning.

        When its pattern, issues and rollback scenario already exist (nearly always), the write
        is a single autocommitted INSERT: there are no counts to update, and the primary key
        rejects a repeated ``execution_id``, which is then told apart as a retry (same content)
        or a conflict. Otherwise the definitions and the execution go in one transaction.
        Only used when this process holds the file, so the caches below cannot go stale.
        """

        def insert_rows(con: duckdb.DuckDBPyConnection, plan: WritePlan[PreparedExecution]) -> None:
            _insert_executions(con, plan, actor)

        with self._connection() as con:
            index = self._pattern_index(con)
            plan = plan_write([execution], {}, index)
            issues, scenarios = self._known_ids(con)
            try:
                if (
                    plan.new_patterns
                    or not issues.issuperset(plan.issue_deltas)
                    or not scenarios.issuperset(plan.scenario_deltas)
                ):
                    with self._transaction() as tx:
                        _persist(tx, plan, index, insert_rows, (issues, scenarios))
                else:
                    insert_rows(con, plan)
            except (duckdb.ConstraintException, duckdb.TransactionException):
                if plan.new_patterns:
                    self._index = None  # it holds the pattern that was not written
                existing = dict(con.execute(sql.EXISTING_HASH, [execution.execution_id]).fetchall())
                if not existing:
                    raise
                retry = plan_write([execution], existing, PatternIndex())
                return WriteResult([], retry.duplicates, retry.conflicts)
            issues.update(plan.issue_deltas)
            scenarios.update(plan.scenario_deltas)
        return WriteResult([execution.execution_id], [], [])

    def _known_ids(self, con: duckdb.DuckDBPyConnection) -> tuple[set[str], set[str]]:
        if self._known is None:
            self._known = (
                {r[0] for r in con.execute(sql.KNOWN_ISSUE_IDS).fetchall()},
                {r[0] for r in con.execute(sql.KNOWN_SCENARIO_IDS).fetchall()},
            )
        return self._known

    def record_adaptation(self, adaptation: EnvironmentAdaptation, *, actor: str) -> str:
        adaptation_id = adaptation_id_for(adaptation)
        now = datetime.now(UTC)
        try:
            with self._transaction() as con:
                inserted = con.execute(
                    sql.INSERT_ADAPTATION,
                    [
                        adaptation_id,
                        adaptation.adaptation_name,
                        adaptation.source_environment,
                        adaptation.target_environment,
                        adaptation.resource_type,
                        adaptation.pattern_id,
                        list(adaptation.adaptation_rules),
                        _dumps(adaptation.original_configuration),
                        _dumps(adaptation.adapted_configuration),
                        now,
                        actor,
                    ],
                ).fetchall()
                if inserted and inserted[0][0]:
                    con.execute(
                        sql.INSERT_AUDIT_EVENT,
                        [
                            now,
                            actor,
                            "record_adaptation",
                            adaptation_id,
                            adaptation.adaptation_name,
                        ],
                    )
        except duckdb.Error as exc:
            raise StoreError(f"write to {self.path} failed: {exc}") from exc
        return adaptation_id

    def delete_execution(self, execution_id: str, *, actor: str, reason: str) -> bool:
        try:
            with self._transaction() as con:
                detail = _delete(con, execution_id, reason)
                if detail is not None:
                    event = [datetime.now(UTC), actor, "delete_execution", execution_id, detail]
                    con.execute(sql.INSERT_AUDIT_EVENT, event)
        except duckdb.Error as exc:
            raise StoreError(f"delete in {self.path} failed: {exc}") from exc
        finally:
            self._index = None  # patterns, issues and scenarios may have gone
            self._known = None
        return detail is not None

    def replace_execution(
        self, execution: PreparedExecution, *, actor: str, reason: str
    ) -> bool:
        try:
            with self._transaction() as con:
                detail = _delete(con, execution.execution_id, reason)
                if detail is not None:
                    self._index = None
                    index = self._pattern_index(con)  # without what went with the old row
                    plan = plan_write([execution], {}, index)
                    _persist(
                        con, plan, index, lambda c, p: _insert_executions(c, p, actor), None
                    )
                    event = [
                        datetime.now(UTC),
                        actor,
                        "amend_execution",
                        execution.execution_id,
                        detail,
                    ]
                    con.execute(sql.INSERT_AUDIT_EVENT, event)
        except duckdb.Error as exc:
            raise StoreError(f"amend in {self.path} failed: {exc}") from exc
        finally:
            self._index = None
            self._known = None
        return detail is not None

    def key_record(self) -> KeyRecord | None:
        values = dict(self._read(sql.GET_KEY_RECORD))
        if "secret_salt" not in values:
            return None
        return KeyRecord(values["secret_salt"], values["secret_check"])

    def claim_key_record(self, record: KeyRecord, *, actor: str) -> KeyRecord:
        try:
            with self._transaction() as con:
                values = dict(con.execute(sql.GET_KEY_RECORD).fetchall())
                if "secret_salt" in values:
                    return KeyRecord(values["secret_salt"], values["secret_check"])
                con.execute(sql.INSERT_KEY_RECORD, [record.salt, record.check])
                con.execute(
                    sql.INSERT_AUDIT_EVENT,
                    [datetime.now(UTC), actor, "set_secret_key", "store", "salt and check value"],
                )
        except duckdb.Error as exc:
            raise StoreError(f"write to {self.path} failed: {exc}") from exc
        return record

    def api_tokens(self) -> list[ApiToken]:
        return [parse_entry(v) for _, v in self._read(sql.META_ENTRIES, [META_KEY_PREFIX])]

    def change_token_entry(
        self, name: str, change: Callable[[str | None], str | None], action: str, actor: str
    ) -> bool:
        try:
            with self._transaction() as con:
                row = con.execute(sql.META_VALUE, [meta_key(name)]).fetchone()
                value = change(str(row[0]) if row else None)
                if value is None:
                    return False
                con.execute(sql.PUT_META, [meta_key(name), value])
                con.execute(sql.INSERT_AUDIT_EVENT, [datetime.now(UTC), actor, action, name, ""])
        except duckdb.Error as exc:
            raise StoreError(f"write to {self.path} failed: {exc}") from exc
        return True

    def record_audit(self, action: str, entity_id: str, *, actor: str, detail: str = "") -> None:
        try:
            with self._connection() as con:
                con.execute(
                    sql.INSERT_AUDIT_EVENT, [datetime.now(UTC), actor, action, entity_id, detail]
                )
        except duckdb.Error as exc:
            raise StoreError(f"write to {self.path} failed: {exc}") from exc

    def wipe(self, *, actor: str | None = None) -> None:
        try:
            with self._transaction() as con:
                row = con.execute(sql.WIPE_SUMMARY).fetchone()
                for statement in sql.WIPE_HISTORY:
                    con.execute(statement)
                con.execute(
                    sql.INSERT_AUDIT_EVENT,
                    [
                        datetime.now(UTC),
                        actor or process_actor(),
                        "wipe",
                        "history",
                        wipe_detail(*row) if row else "",
                    ],
                )
        except duckdb.Error as exc:
            raise StoreError(f"cannot wipe {self.path}: {exc}") from exc
        self._index = None
        self._known = None

    # -- reads -----------------------------------------------------------------------------
    def _read(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            with self._connection() as con:
                return con.execute(query, params or []).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"read from {self.path} failed: {exc}") from exc

    def store_id(self) -> str | None:
        rows = self._read(sql.GET_STORE_ID)
        return str(rows[0][0]) if rows else None

    def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        rows = self._read(sql.SELECT_EXECUTION, [execution_id])
        if not rows:
            return None
        record = _export_row(rows[0])
        record["pattern_id"] = rows[0][-1]
        return record

    def iter_executions(self, batch_size: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        with self._connection() as con:
            cursor = con.cursor() if not self._shared else con
            cursor.execute(sql.SELECT_ALL_EXECUTIONS)
            while rows := cursor.fetchmany(batch_size):
                yield [_export_row(row) for row in rows]

    def _frame(self, query: str, params: list[Any] | dict[str, Any]) -> pd.DataFrame:
        try:
            with self._connection() as con:
                return con.execute(query, params).df()
        except duckdb.Error as exc:
            raise StoreError(f"read from {self.path} failed: {exc}") from exc

    def executions_frame(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        return self._typed_frame(self._frame(sql.SELECT_FRAME, [since, until]))

    def executions_frame_of(self, execution_ids: Sequence[str]) -> pd.DataFrame:
        return self._typed_frame(self._frame(sql.SELECT_FRAME_OF, [list(execution_ids)]))

    @staticmethod
    def _typed_frame(frame: pd.DataFrame) -> pd.DataFrame:
        for column in ("resources_deployed", "issue_ids"):
            frame[column] = frame[column].map(list)
        return typed_frame(frame, EXECUTION_FRAME_DTYPES)

    def metrics_frame(
        self,
        *,
        metric_types: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pd.DataFrame:
        types = None if metric_types is None else list(metric_types)
        frame = self._frame(sql.SELECT_METRICS, {"since": since, "until": until, "types": types})
        return typed_frame(frame, METRIC_FRAME_DTYPES)

    def metric_types(self) -> list[str]:
        return [str(r[0]) for r in self._read(sql.SELECT_METRIC_TYPES)]

    def issues(self) -> pd.DataFrame:
        return typed_frame(self._frame(sql.SELECT_ISSUES, []), ISSUE_FRAME_DTYPES)

    def patterns(self) -> list[DeploymentPattern]:
        return [
            DeploymentPattern(
                pattern_id=r[0],
                pattern_name=r[1],
                deployment_strategy=r[2],
                configuration_template=orjson.loads(r[3]),
                success_count=r[4],
                failure_count=r[5],
                first_seen=r[6],
                last_used=r[7],
            )
            for r in self._read(sql.SELECT_PATTERNS)
        ]

    def rollback_scenarios(self) -> list[RollbackScenario]:
        return [
            RollbackScenario(
                scenario_id=r[0],
                environment=r[1],
                deployment_strategy=r[2],
                trigger_issue=r[3],
                resource_types=list(r[4]),
                success_count=r[5],
                failure_count=r[6],
                first_seen=r[7],
                last_seen=r[8],
            )
            for r in self._read(sql.SELECT_SCENARIOS)
        ]

    def adaptations(self) -> list[EnvironmentAdaptation]:
        return [
            EnvironmentAdaptation(
                adaptation_id=r[0],
                adaptation_name=r[1],
                source_environment=r[2],
                target_environment=r[3],
                resource_type=r[4],
                pattern_id=r[5],
                adaptation_rules=list(r[6]),
                original_configuration=orjson.loads(r[7]),
                adapted_configuration=orjson.loads(r[8]),
            )
            for r in self._read(sql.SELECT_ADAPTATIONS)
        ]

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        return [AuditEntry(*row) for row in self._read(sql.SELECT_AUDIT, [limit])]

    def stats(self) -> StoreStats:
        version = self._read(sql.GET_SCHEMA_VERSION)
        counts = self._read(sql.STATS)[0]
        return StoreStats(
            self.url, int(version[0][0]) if version else None, *(int(c) for c in counts)
        )


# Export rows are the columns of ``sql.EXPORT_COLUMNS``: EXPORT_FIELDS, then pattern_id.
_EXPORT_LISTS = names(kind=Kind.TEXTS, exported=True)
_EXPORT_JSON = names(kind=Kind.JSON, exported=True)


def _export_row(row: tuple[Any, ...]) -> dict[str, Any]:
    record = dict(zip(EXPORT_FIELDS, row, strict=False))  # not the trailing pattern_id
    for name in _EXPORT_LISTS:
        record[name] = list(record[name])
    for name in _EXPORT_JSON:
        record[name] = orjson.loads(record[name])
    return record


# Arrow's type for each kind of execution column (domain.execution_schema). Fields stay
# nullable, as DuckDB's NOT NULL is what is enforced (Arrow does not check the flag).
_ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.TEXT: pa.string(),
    Kind.TEXTS: _STRS,
    Kind.JSON: pa.string(),
    Kind.NUMBER: pa.float64(),
    Kind.NUMBERS: pa.list_(pa.float64()),
    Kind.FLAG: pa.bool_(),
    Kind.TIME: _TS,
}
_EXECUTION_SCHEMA = pa.schema([(c.name, _ARROW_TYPES[c.kind]) for c in COLUMNS])


_PATTERN_SCHEMA = pa.schema(
    [
        ("pattern_id", pa.string()),
        ("deployment_strategy", pa.string()),
        ("pattern_name", pa.string()),
        ("configuration_template", pa.string()),
    ]
)
_ISSUE_SCHEMA = pa.schema(
    [("issue_id", pa.string()), ("normalized", pa.string()), ("example", pa.string())]
)
_SCENARIO_SCHEMA = pa.schema(
    [
        ("scenario_id", pa.string()),
        ("environment", pa.string()),
        ("deployment_strategy", pa.string()),
        ("trigger_issue", pa.string()),
        ("resource_types", _STRS),
    ]
)


def _delete(con: duckdb.DuckDBPyConnection, execution_id: str, reason: str) -> str | None:
    """Delete one execution and the definitions only it used; its audit detail, or None."""
    found = con.execute(sql.EXECUTION_TO_DELETE, [execution_id]).fetchall()
    if not found:
        return None
    pattern_id, issue_ids, scenario_id, recorded_at, recorded_by = found[0]
    con.execute(sql.DELETE_EXECUTION, [execution_id])
    con.execute(sql.DELETE_UNUSED_PATTERN, {"id": pattern_id})
    if issue_ids:
        con.execute(sql.DELETE_UNUSED_ISSUES, {"ids": list(issue_ids)})
    if scenario_id is not None:
        con.execute(sql.DELETE_UNUSED_SCENARIO, {"id": scenario_id})
    return removal_detail(reason, pattern_id, recorded_at, recorded_by)


def _existing_hashes(con: duckdb.DuckDBPyConnection, batch: Sequence[Plannable]) -> dict[str, str]:
    if len(batch) == 1:
        return dict(con.execute(sql.EXISTING_HASH, [batch[0].execution_id]).fetchall())
    con.register("batch_ids", pa.table({"execution_id": [e.execution_id for e in batch]}))
    try:
        return dict(con.execute(sql.EXISTING_HASHES).fetchall())
    finally:
        con.unregister("batch_ids")


@cache
def _parsed(statement: str) -> duckdb.Statement:
    """A statement parsed once; executing it skips DuckDB's parser (~0.08 ms a call)."""
    return duckdb.extract_statements(statement)[0]


def _write_columns(
    con: duckdb.DuckDBPyConnection,
    columns: Sequence[Sequence[Any]],
    statement: str,
    table_statement: str,
    schema: pa.Schema,
) -> None:
    """Rows given column-major. One row: a parameterized statement (DuckDB's cheapest path);
    more: each column to Arrow in one call, then one Arrow scan. ``executemany`` is not used:
    it costs ~1.7 ms per row (25 scenario rows: 43 ms against 3 ms through Arrow)."""
    count = len(columns[0]) if columns else 0
    if count == 0:
        return
    if count == 1:
        con.execute(_parsed(statement), [column[0] for column in columns])
        return
    _insert_table(con, _arrow_table(columns, schema), table_statement)


def _arrow_table(columns: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """Each column to Arrow in one call."""
    arrays = [pa.array(column, f.type) for column, f in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _insert_table(con: duckdb.DuckDBPyConnection, table: pa.Table, statement: str) -> None:
    """Run ``statement`` (which reads ``batch_rows``) over an Arrow table."""
    con.register("batch_rows", table)
    try:
        con.execute(statement)
    finally:
        con.unregister("batch_rows")


def _write_rows(
    con: duckdb.DuckDBPyConnection,
    rows: Sequence[Sequence[Any]],
    statement: str,
    table_statement: str,
    schema: pa.Schema,
) -> None:
    if rows:
        _write_columns(con, list(zip(*rows, strict=True)), statement, table_statement, schema)


def _persist(
    con: duckdb.DuckDBPyConnection,
    plan: WritePlan[PlannableT],
    index: PatternIndex,
    insert: Callable[[duckdb.DuckDBPyConnection, WritePlan[PlannableT]], None],
    known: tuple[set[str], set[str]] | None,
) -> None:
    """Write a plan: ``insert`` its executions, then the patterns, issues and scenarios they
    are the first of (counts are aggregated at read time, see ``store.duckdb.sql``)."""
    if not plan.inserts:
        return
    insert(con, plan)
    _insert_definitions(con, plan, index, known)


def _insert_executions(
    con: duckdb.DuckDBPyConnection, plan: WritePlan[PreparedExecution], actor: str
) -> None:
    _write_columns(
        con,
        _execution_columns(plan.inserts, plan.pattern_ids, datetime.now(UTC), actor),
        sql.INSERT_EXECUTION_ROWS,
        sql.INSERT_EXECUTION_TABLE,
        _EXECUTION_SCHEMA,
    )


def _insert_execution_table(
    con: duckdb.DuckDBPyConnection, table: pa.Table, plan: WritePlan[PlanRow], actor: str
) -> None:
    """Insert the planned rows of a table from ``DuckDBStore.execution_table``, filling in
    what only the writer knows: pattern ids, recording time and actor."""
    positions = [row.position for row in plan.inserts]
    if len(positions) != table.num_rows:  # rows are in table order: fewer means some dropped
        table = table.take(positions)
    count = len(positions)
    filled = {
        "pattern_id": pa.array(plan.pattern_ids, pa.string()),
        "recorded_at": pa.array([datetime.now(UTC)] * count, _TS),
        "recorded_by": pa.array([actor] * count, pa.string()),
    }
    for name, values in filled.items():
        index = _EXECUTION_SCHEMA.get_field_index(name)
        table = table.set_column(index, _EXECUTION_SCHEMA.field(index), values)
    _insert_table(con, table, sql.INSERT_EXECUTION_TABLE)


def _insert_definitions(
    con: duckdb.DuckDBPyConnection,
    plan: WritePlan[Any],
    index: PatternIndex,
    known: tuple[set[str], set[str]] | None,
) -> None:
    """Insert the plan's new patterns, and its issues and scenarios not in ``known`` (issue
    ids, scenario ids already stored); an insert that meets a stored one is a no-op."""
    issues, scenarios = known or (set(), set())
    _write_rows(
        con,
        [
            (
                p.pattern_id,
                p.deployment_strategy,
                p.pattern_name,
                orjson.dumps(index.info(p.pattern_id)[1], option=orjson.OPT_SORT_KEYS).decode(),
            )
            for p in plan.new_patterns
        ],
        sql.INSERT_PATTERN,
        sql.INSERT_PATTERN_TABLE,
        _PATTERN_SCHEMA,
    )
    _write_rows(
        con,
        [
            (issue_id, *plan.issue_info[issue_id])
            for issue_id in sorted(plan.issue_deltas.keys() - issues)
        ],
        sql.INSERT_ISSUE,
        sql.INSERT_ISSUE_TABLE,
        _ISSUE_SCHEMA,
    )
    _write_rows(
        con,
        [
            (
                sid,
                plan.scenario_info[sid].environment,
                plan.scenario_info[sid].deployment_strategy,
                plan.scenario_info[sid].trigger_issue,
                plan.scenario_info[sid].resource_types,
            )
            for sid in sorted(plan.scenario_deltas.keys() - scenarios)
        ],
        sql.INSERT_SCENARIO,
        sql.INSERT_SCENARIO_TABLE,
        _SCENARIO_SCHEMA,
    )


def _execution_columns(
    inserts: Sequence[PreparedExecution], pattern_ids: Sequence[str], now: datetime, actor: str
) -> list[list[Any]]:
    """The executions as columns in ``_EXECUTION_SCHEMA`` order (column-major: on bulk paths
    each column goes to Arrow in one call, with no per-row tuples in between)."""
    metrics = [e.metrics() for e in inserts]
    computed: dict[str, list[Any]] = {  # the columns whose Source is not RECORD
        "pattern_id": list(pattern_ids),
        "issue_ids": [[i.issue_id for i in e.issues] for e in inserts],
        "recorded_at": [now] * len(inserts),
        "recorded_by": [actor] * len(inserts),
        "metric_types": [[name for name, _ in m] for m in metrics],
        "metric_values": [[value for _, value in m] for m in metrics],
    }
    # every other column is the PreparedExecution attribute of the same name (JSON as text)
    return [
        computed[c.name]
        if c.source is not Source.RECORD
        else [_dumps(v) for v in map(attrgetter(c.name), inserts)]
        if c.kind is Kind.JSON
        else list(map(attrgetter(c.name), inserts))
        for c in COLUMNS
    ]
