"""The embedded default store: one DuckDB file, no server, the first command just works.

DuckDB lets one process write a file at a time. By default the store holds the file open
(fast single writes); with ``?mode=shared`` in the URL every operation opens the file, works
in one transaction and closes it, so several processes can write one file in turn, each
waiting for DuckDB's file lock (up to ``lock_timeout`` seconds). Counts are applied as deltas
inside the writing transaction, so no interleaving loses an update.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pandas as pd
import pyarrow as pa

from deploylearn.errors import StoreError, StoreUnavailableError
from deploylearn.identity import PatternIndex
from deploylearn.preparation import PreparedExecution, adaptation_id_for
from deploylearn.records import DeploymentPattern, EnvironmentAdaptation, RollbackScenario
from deploylearn.store import duckdb_sql as sql
from deploylearn.store.base import SCHEMA_VERSION, AuditEntry, Store, StoreStats
from deploylearn.store.plan import WritePlan, WriteResult, plan_write

# DuckDB's own default is 80 % of RAM; a recorder should leave memory to the learning jobs.
DEFAULT_MEMORY_LIMIT = "1GB"
_TS = pa.timestamp("us", tz="UTC")
_STRS = pa.list_(pa.string())


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class DuckDBStore(Store):
    """Deployment history in a DuckDB file (or in memory for ``duckdb://:memory:``)."""

    def __init__(
        self,
        path: str,
        *,
        shared: bool = False,
        lock_timeout: float = 60.0,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        if path != ":memory:":
            path = str(Path(path).expanduser().resolve())
        self.path = path
        self.url = f"duckdb://{path}"
        self._shared = shared and path != ":memory:"
        self._lock_timeout = lock_timeout
        self._memory_limit = memory_limit
        self._mutex = threading.RLock()
        self._index: PatternIndex | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if not self._shared:
            self._con = self._connect()
        self.init_schema()

    # -- connections -----------------------------------------------------------------------
    def _connect(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.005
        while True:
            try:
                con = duckdb.connect(self.path, config={"memory_limit": self._memory_limit})
                con.execute("SET TimeZone = 'UTC'")
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
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                self._index = None  # it may hold patterns that were rolled back
                raise
            con.execute("COMMIT")

    def close(self) -> None:
        with self._mutex:
            if self._con is not None:
                self._con.close()
                self._con = None

    # -- writes ----------------------------------------------------------------------------
    def init_schema(self) -> None:
        try:
            with self._transaction() as con:
                for statement in sql.SCHEMA:
                    con.execute(statement)
                con.execute(sql.SET_SCHEMA_VERSION, [str(SCHEMA_VERSION)])
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
        if not batch:
            return WriteResult([], [], [])
        try:
            with self._transaction() as con:
                con.register(
                    "batch_ids", pa.table({"execution_id": [e.execution_id for e in batch]})
                )
                existing = dict(con.execute(sql.EXISTING_HASHES).fetchall())
                con.unregister("batch_ids")
                index = self._pattern_index(con)
                plan = plan_write(batch, existing, index)
                self._persist(con, plan, index, actor)
        except duckdb.Error as exc:
            raise StoreError(f"write to {self.path} failed: {exc}") from exc
        return WriteResult([e.execution_id for e in plan.inserts], plan.duplicates, plan.conflicts)

    def _persist(
        self, con: duckdb.DuckDBPyConnection, plan: WritePlan, index: PatternIndex, actor: str
    ) -> None:
        if not plan.inserts:
            return
        now = datetime.now(UTC)
        tables = {
            "batch_executions": _executions_table(plan, now, actor),
            "batch_patterns": _patterns_table(plan, index),
            "batch_issues": _issues_table(plan),
            "batch_scenarios": _scenarios_table(plan),
            "batch_metrics": _metrics_table(plan),
            "batch_audit": pa.table(
                {
                    "at": pa.array([now] * len(plan.inserts), _TS),
                    "actor": [actor] * len(plan.inserts),
                    "action": ["record_execution"] * len(plan.inserts),
                    "entity_id": [e.execution_id for e in plan.inserts],
                    "detail": [f"pattern {p}" for p in plan.pattern_ids],
                }
            ),
        }
        for name, table in tables.items():
            con.register(name, table)
        try:
            con.execute(sql.INSERT_EXECUTIONS)
            con.execute(sql.UPSERT_PATTERNS)
            if plan.issue_deltas:
                con.execute(sql.UPSERT_ISSUES)
            if plan.scenario_deltas:
                con.execute(sql.UPSERT_SCENARIOS)
            con.execute(sql.INSERT_METRICS)
            con.execute(sql.INSERT_AUDIT)
        finally:
            for name in tables:
                con.unregister(name)

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
                        sql.INSERT_ONE_AUDIT,
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

    def wipe(self) -> None:
        with self._transaction() as con:
            for table in sql.HISTORY_TABLES:
                con.execute(f"DELETE FROM {table}")  # names from a fixed list
        self._index = None

    # -- reads -----------------------------------------------------------------------------
    def _read(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            with self._connection() as con:
                return con.execute(query, params or []).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"read from {self.path} failed: {exc}") from exc

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

    def executions_frame(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        try:
            with self._connection() as con:
                frame = con.execute(sql.SELECT_FRAME, [since, until]).df()
        except duckdb.Error as exc:
            raise StoreError(f"read from {self.path} failed: {exc}") from exc
        for column in ("resources_deployed", "issue_ids"):
            frame[column] = frame[column].map(list)
        return frame

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


def _export_row(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "execution_id": row[0],
        "execution_name": row[1],
        "deployment_type": row[2],
        "target_environment": row[3],
        "source_environment": row[4],
        "gateway_host": row[5],
        "deployment_strategy": row[6],
        "resources_deployed": list(row[7]),
        "configuration_used": orjson.loads(row[8]),
        "status": row[9],
        "started_at": row[10],
        "completed_at": row[11],
        "failure_reasons": list(row[12]),
        "rollback_triggered": row[13],
        "rollback_successful": row[14],
        "user_id": row[15],
        "automation_triggered": row[16],
        "execution_log": row[17],
        "performance_data": orjson.loads(row[18]),
        "lessons_learned": list(row[19]),
    }


def _executions_table(plan: WritePlan, now: datetime, actor: str) -> pa.Table:
    rows = plan.inserts
    n = len(rows)
    return pa.table(
        {
            "execution_id": [e.execution_id for e in rows],
            "content_hash": [e.content_hash for e in rows],
            "pattern_id": plan.pattern_ids,
            "execution_name": [e.execution_name for e in rows],
            "deployment_type": [e.deployment_type for e in rows],
            "target_environment": [e.target_environment for e in rows],
            "source_environment": [e.source_environment for e in rows],
            "gateway_host": [e.gateway_host for e in rows],
            "deployment_strategy": [e.deployment_strategy for e in rows],
            "resources_deployed": pa.array([e.resources_deployed for e in rows], _STRS),
            "configuration_used": [_dumps(e.configuration_used) for e in rows],
            "status": [e.status for e in rows],
            "outcome": [e.outcome for e in rows],
            "started_at": pa.array([e.started_at for e in rows], _TS),
            "completed_at": pa.array([e.completed_at for e in rows], _TS),
            "duration_seconds": pa.array([e.duration_seconds for e in rows], pa.float64()),
            "failure_reasons": pa.array([e.failure_reasons for e in rows], _STRS),
            "issue_ids": pa.array([[i.issue_id for i in e.issues] for e in rows], _STRS),
            "rollback_triggered": pa.array([e.rollback_triggered for e in rows], pa.bool_()),
            "rollback_successful": pa.array([e.rollback_successful for e in rows], pa.bool_()),
            "rollback_scenario_id": pa.array([e.rollback_scenario_id for e in rows], pa.string()),
            "user_id": pa.array([e.user_id for e in rows], pa.string()),
            "automation_triggered": pa.array([e.automation_triggered for e in rows], pa.bool_()),
            "execution_log": pa.array([e.execution_log for e in rows], pa.string()),
            "performance_data": [_dumps(e.performance_data) for e in rows],
            "lessons_learned": pa.array([e.lessons_learned for e in rows], _STRS),
            "recorded_at": pa.array([now] * n, _TS),
            "recorded_by": [actor] * n,
        }
    )


def _patterns_table(plan: WritePlan, index: PatternIndex) -> pa.Table:
    new_names = {p.pattern_id: p.pattern_name for p in plan.new_patterns}
    ids = list(plan.pattern_deltas)
    infos = [index.info(i) for i in ids]
    deltas = [plan.pattern_deltas[i] for i in ids]
    return pa.table(
        {
            "pattern_id": ids,
            "deployment_strategy": [info[0] for info in infos],
            "pattern_name": [new_names.get(i, "") for i in ids],
            "configuration_template": [
                orjson.dumps(info[1], option=orjson.OPT_SORT_KEYS).decode() for info in infos
            ],
            "success_count": pa.array([d.success for d in deltas], pa.int64()),
            "failure_count": pa.array([d.failure for d in deltas], pa.int64()),
            "execution_count": pa.array([d.total for d in deltas], pa.int64()),
            "first_seen": pa.array([d.first for d in deltas], _TS),
            "last_used": pa.array([d.last for d in deltas], _TS),
        }
    )


def _issues_table(plan: WritePlan) -> pa.Table:
    ids = list(plan.issue_deltas)
    deltas = [plan.issue_deltas[i] for i in ids]
    return pa.table(
        {
            "issue_id": ids,
            "normalized": [plan.issue_info[i][0] for i in ids],
            "example": [plan.issue_info[i][1] for i in ids],
            "occurrences": pa.array([d.total for d in deltas], pa.int64()),
            "first_seen": pa.array([d.first for d in deltas], _TS),
            "last_seen": pa.array([d.last for d in deltas], _TS),
        }
    )


def _scenarios_table(plan: WritePlan) -> pa.Table:
    ids = list(plan.scenario_deltas)
    deltas = [plan.scenario_deltas[i] for i in ids]
    infos = [plan.scenario_info[i] for i in ids]
    return pa.table(
        {
            "scenario_id": ids,
            "environment": [s.environment for s in infos],
            "deployment_strategy": [s.deployment_strategy for s in infos],
            "trigger_issue": [s.trigger_issue for s in infos],
            "resource_types": pa.array([s.resource_types for s in infos], _STRS),
            "success_count": pa.array([d.success for d in deltas], pa.int64()),
            "failure_count": pa.array([d.failure for d in deltas], pa.int64()),
            "first_seen": pa.array([d.first for d in deltas], _TS),
            "last_seen": pa.array([d.last for d in deltas], _TS),
        }
    )


def _metrics_table(plan: WritePlan) -> pa.Table:
    ids: list[str] = []
    kinds: list[str] = []
    values: list[float] = []
    times: list[datetime] = []
    for e in plan.inserts:
        at = e.completed_at or e.started_at
        for kind, value in e.metrics():
            ids.append(e.execution_id)
            kinds.append(kind)
            values.append(value)
            times.append(at)
    return pa.table(
        {
            "execution_id": pa.array(ids, pa.string()),
            "metric_type": pa.array(kinds, pa.string()),
            "value": pa.array(values, pa.float64()),
            "recorded_at": pa.array(times, _TS),
        }
    )
