"""The Neo4j store: the system of record as a graph, written in batched ``UNWIND``s.

Each batch of up to ``TRANSACTION_ROWS`` executions is one managed write transaction (the
driver retries transient faults such as deadlocks, re-running the whole function, plan
included). Counts are added with ``SET x = x + delta``, which takes the node's write lock
before reading, so concurrent writers lose nothing. Bulk reads come back column-wise in a few
large records. All Cypher is in ``cypher.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from operator import attrgetter
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import orjson
import pandas as pd
from neo4j import Driver, GraphDatabase, ManagedTransaction
from neo4j.exceptions import AuthError, ConstraintError, Neo4jError, ServiceUnavailable
from neo4j.time import DateTime

from deploylearn.domain.execution_schema import BY_NAME, COLUMNS, Kind, Source
from deploylearn.domain.identity import PatternIndex
from deploylearn.domain.prepared import PreparedExecution, adaptation_id_for
from deploylearn.domain.records import DeploymentPattern, EnvironmentAdaptation, RollbackScenario
from deploylearn.domain.tokens import (
    META_KEY_PREFIX,
    ApiToken,
    meta_key,
    parse_entry,
)
from deploylearn.domain.vocabulary import Label
from deploylearn.errors import InvalidStoreUrlError, StoreError, StoreUnavailableError
from deploylearn.store.base import (
    EXECUTION_FRAME_DTYPES,
    ISSUE_FRAME_DTYPES,
    METRIC_FRAME_DTYPES,
    SCHEMA_VERSION,
    AuditEntry,
    KeyRecord,
    Store,
    StoreStats,
    process_actor,
    removal_detail,
    typed_frame,
    wipe_detail,
)
from deploylearn.store.neo4j import cypher
from deploylearn.store.plan import WritePlan, WriteResult, plan_write


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _texts(value: list[str] | None) -> list[str]:
    return list(value or [])


def _native(value: Any) -> Any:
    """Neo4j temporal values back to timezone-aware UTC datetimes."""
    if isinstance(value, DateTime):
        return value.to_native().astimezone(UTC)
    return value


_NAT = np.iinfo(np.int64).min  # numpy's NaT as int64


def _utc_from_micros(values: list[int | None]) -> pd.DatetimeIndex:
    """Microseconds since the epoch (None: missing) as UTC datetimes, converted at once."""
    micros = np.fromiter((_NAT if v is None else v for v in values), np.int64, len(values))
    return pd.DatetimeIndex(micros.view("M8[us]")).tz_localize(UTC)


@dataclass(frozen=True)
class Neo4jAddress:
    """A Neo4j store URL taken apart; ``shown`` is the URL without the credentials."""

    address: str  # scheme://host[:port], for the driver
    auth: tuple[str, str] | None
    database: str | None

    @property
    def shown(self) -> str:
        return self.address + (f"/{self.database}" if self.database else "")


def parse_neo4j_url(url: str) -> Neo4jAddress:
    """``scheme://[user[:password]@]host[:port][/database]``.

    The credentials end at the last ``@``, so a password may hold ``/``, ``#``, ``?`` or
    ``@`` unescaped (``urlsplit`` would cut it there and show the rest as a path); the
    password never appears in a message.
    """
    scheme, _, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    auth = None
    if at:
        user, _, password = credentials.partition(":")
        auth = (unquote(user), unquote(password))
    hostport, _, database = location.split("?", 1)[0].split("#", 1)[0].partition("/")
    parts = urlsplit(f"{scheme}://{hostport}")
    try:
        port = parts.port
    except ValueError:
        raise InvalidStoreUrlError(
            f"Neo4j store URL {scheme}://{hostport}: the port is not a number"
        ) from None
    if not parts.hostname:
        raise InvalidStoreUrlError(f"Neo4j store URL {scheme}://{hostport}: no host")
    address = f"{scheme}://{parts.hostname}" + (f":{port}" if port else "")
    return Neo4jAddress(address, auth, database.strip("/") or None)


# Executions per write transaction: larger batches are written as consecutive transactions
# of this size. The JVM's CPU per execution grows with the transaction (its state and
# garbage): ~130-150 µs at 1,000-2,000 rows, ~180-240 µs at 5,000-10,000; end to end 1,000
# was as fast as 2,000 or faster in every run (docs/performance.md).
TRANSACTION_ROWS = 1_000
# Re-runs of a write transaction that met a row another writer committed meanwhile (each
# re-run sees that row and counts it as a duplicate, so more than one is rare).
CONSTRAINT_RETRIES = 5
# Rows per record of the chunked bulk reads (cypher.FRAME): big enough that per-record costs
# vanish, small enough that no single Bolt message gets large.
READ_CHUNK = 10_000


class Neo4jStore(Store):
    """Deployment history in Neo4j Community/Enterprise 5.x (GDS for embeddings)."""

    def __init__(
        self, driver: Driver, url: str, database: str | None = None, *, create: bool = True
    ) -> None:
        self._driver = driver
        self.url = url
        self._database = database
        self._index: PatternIndex | None = None
        self._check_ours(create)
        self.init_schema()

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> Neo4jStore:
        """``neo4j://user:pass@host:7687[/database]``; no user means no authentication."""
        parsed = parse_neo4j_url(url)
        shown = parsed.shown
        try:
            driver = GraphDatabase.driver(
                parsed.address, auth=parsed.auth, max_transaction_retry_time=60.0
            )
            driver.verify_connectivity()
        except (ServiceUnavailable, AuthError, Neo4jError, OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if parsed.auth and parsed.auth[1]:
                reason = reason.replace(parsed.auth[1], "***")
            raise StoreUnavailableError(f"cannot reach Neo4j at {shown}: {reason}") from exc
        try:
            return cls(driver, shown, parsed.database, create=create)
        except BaseException:
            driver.close()
            raise

    @property
    def database(self) -> str | None:
        """The database name (None: the server's default)."""
        return self._database

    def _check_ours(self, create: bool) -> None:
        """Refuse a database holding other data, or a newer deploylearn's schema; with
        ``create=False``, one where deploylearn never created its schema."""
        rows = self._run(cypher.OWNERSHIP, labels=[label.value for label in Label])
        version, foreign = rows[0]["version"], rows[0]["foreign"]
        where = f"Neo4j database {self.url}"
        if version is None and foreign:
            self._driver.close()
            raise StoreUnavailableError(
                f"{where} holds data but no deploylearn marker; refusing to write it"
            )
        if version is not None and int(version) > SCHEMA_VERSION:
            self._driver.close()
            raise StoreUnavailableError(
                f"{where}: schema version {version} was written by a newer deploylearn "
                f"(this one knows up to {SCHEMA_VERSION}); refusing to open it"
            )
        if version is None and not create:
            self._driver.close()
            raise StoreUnavailableError(
                f"no deploylearn store in {where}: `ign db init` or a first write creates it"
            )

    def close(self) -> None:
        self._driver.close()

    def _run(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """A read query's rows, with the store's error mapping (also for ``gds``)."""
        try:
            records, _, _ = self._driver.execute_query(
                query, params, database_=self._database, routing_="r"
            )
        except ServiceUnavailable as exc:
            raise StoreUnavailableError(f"Neo4j at {self.url} went away: {exc}") from exc
        except Neo4jError as exc:
            raise StoreError(f"Neo4j query failed: {exc}") from exc
        return [record.data() for record in records]

    def _run_batched(self, query: str, **params: Any) -> None:
        """A write that commits in batches itself (``CALL {…} IN TRANSACTIONS``): such a
        query runs only in an auto-commit transaction, not in a managed one."""
        try:
            with self._driver.session(database=self._database) as session:
                session.run(query, params).consume()
        except ServiceUnavailable as exc:
            raise StoreUnavailableError(f"Neo4j at {self.url} went away: {exc}") from exc
        except Neo4jError as exc:
            raise StoreError(f"Neo4j write failed: {exc}") from exc

    def _write(self, work: Any, *args: Any) -> Any:
        """Run ``work`` in a managed write transaction. A uniqueness violation means another
        writer committed the same execution or pattern first: the transaction is run again
        (``work`` plans afresh, so those become duplicates), up to ``CONSTRAINT_RETRIES``."""
        for attempt in range(CONSTRAINT_RETRIES + 1):
            try:
                with self._driver.session(database=self._database) as session:
                    return session.execute_write(work, *args)
            except ConstraintError as exc:
                self._index = None  # it may hold the pattern the other writer made
                if attempt == CONSTRAINT_RETRIES:
                    raise StoreError(f"Neo4j write failed: {exc}") from exc
            except ServiceUnavailable as exc:
                raise StoreUnavailableError(f"Neo4j at {self.url} went away: {exc}") from exc
            except Neo4jError as exc:
                raise StoreError(f"Neo4j write failed: {exc}") from exc
        raise AssertionError("unreachable")

    # -- writes ----------------------------------------------------------------------------
    def init_schema(self) -> None:
        try:
            with self._driver.session(database=self._database) as session:
                for statement in [*cypher.CONSTRAINTS, *cypher.INDEXES]:
                    session.run(statement).consume()
                row = session.run(cypher.GET_SCHEMA_VERSION).single()
                version = None if row is None else int(row["value"])
                if version != SCHEMA_VERSION:
                    session.run(
                        cypher.SET_SCHEMA_VERSION,
                        version=SCHEMA_VERSION,
                        logged_at=datetime.now(UTC),
                        actor=process_actor(),
                        action="create_schema" if version is None else "migrate_schema",
                        detail=f"schema version {SCHEMA_VERSION}"
                        if version is None
                        else f"schema version {version} to {SCHEMA_VERSION}",
                    ).consume()
                session.run(cypher.SET_STORE_ID, store_id=uuid.uuid4().hex).consume()
        except Neo4jError as exc:
            raise StoreError(f"cannot create schema in {self.url}: {exc}") from exc

    def _load_index(self, tx: ManagedTransaction) -> PatternIndex:
        count = tx.run(cypher.PATTERN_COUNT).single(strict=True)["n"]
        if self._index is not None and len(self._index) == count:
            return self._index.copy()
        index = PatternIndex()
        for row in tx.run(cypher.ALL_PATTERN_TEMPLATES):
            index.add(row["pattern_id"], row["strategy"], orjson.loads(row["template"]))
        return index

    def write_executions(self, batch: Sequence[PreparedExecution], *, actor: str) -> WriteResult:
        inserted: list[str] = []
        duplicates: list[str] = []
        conflicts: list[tuple[int, str]] = []
        for start in range(0, len(batch), TRANSACTION_ROWS):
            part = self._write_transaction(batch[start : start + TRANSACTION_ROWS], actor)
            inserted += part.inserted
            duplicates += part.duplicates
            conflicts += [(start + position, message) for position, message in part.conflicts]
        return WriteResult(inserted, duplicates, conflicts)

    def _write_transaction(self, batch: Sequence[PreparedExecution], actor: str) -> WriteResult:
        def work(tx: ManagedTransaction) -> tuple[WritePlan[PreparedExecution], PatternIndex]:
            ids = [e.execution_id for e in batch]
            existing = {
                r["execution_id"]: r["content_hash"]
                for r in tx.run(cypher.EXISTING_HASHES, ids=ids)
            }
            index = self._load_index(tx)
            plan = plan_write(batch, existing, index)
            if plan.inserts:
                _persist(tx, plan, actor)
            return plan, index

        plan, index = self._write(work)
        self._index = index
        return WriteResult([e.execution_id for e in plan.inserts], plan.duplicates, plan.conflicts)

    def record_adaptation(self, adaptation: EnvironmentAdaptation, *, actor: str) -> str:
        adaptation_id = adaptation_id_for(adaptation)
        now = datetime.now(UTC)
        props = {
            "adaptation_id": adaptation_id,
            "adaptation_name": adaptation.adaptation_name,
            "source_environment": adaptation.source_environment,
            "target_environment": adaptation.target_environment,
            "resource_type": adaptation.resource_type,
            "pattern_id": adaptation.pattern_id,
            "adaptation_rules": list(adaptation.adaptation_rules),
            "original_configuration": _dumps(adaptation.original_configuration),
            "adapted_configuration": _dumps(adaptation.adapted_configuration),
            "recorded_at": now,
            "recorded_by": actor,
        }

        def work(tx: ManagedTransaction) -> None:
            if tx.run(cypher.ADAPTATION_EXISTS, id=adaptation_id).single(strict=True)["exists"]:
                return
            tx.run(cypher.CREATE_ADAPTATION, props=props).consume()
            tx.run(
                cypher.CREATE_AUDIT,
                logged_at=now,
                actor=actor,
                action="record_adaptation",
                entity_id=adaptation_id,
                detail=adaptation.adaptation_name,
            ).consume()

        self._write(work)
        return adaptation_id

    def delete_execution(self, execution_id: str, *, actor: str, reason: str) -> bool:
        def work(tx: ManagedTransaction) -> bool:
            detail = _delete(tx, execution_id, reason)
            if detail is not None:
                _audit(tx, actor, "delete_execution", execution_id, detail)
            return detail is not None

        self._index = None  # patterns may go: reload before the next write
        return bool(self._write(work))

    def replace_execution(
        self, execution: PreparedExecution, *, actor: str, reason: str
    ) -> bool:
        def work(tx: ManagedTransaction) -> bool:
            detail = _delete(tx, execution.execution_id, reason)
            if detail is None:
                return False
            self._index = None
            plan = plan_write([execution], {}, self._load_index(tx))
            _persist(tx, plan, actor)
            _audit(tx, actor, "amend_execution", execution.execution_id, detail)
            return True

        self._index = None
        try:
            return bool(self._write(work))
        finally:
            self._index = None

    def key_record(self) -> KeyRecord | None:
        rows = self._run(cypher.GET_KEY_RECORD)
        return KeyRecord(rows[0]["salt"], rows[0]["check"]) if rows else None

    def claim_key_record(self, record: KeyRecord, *, actor: str) -> KeyRecord:
        def work(tx: ManagedTransaction) -> KeyRecord:
            row = tx.run(cypher.CLAIM_KEY_RECORD, salt=record.salt, check=record.check).single(
                strict=True
            )
            kept = KeyRecord(row["salt"], row["check"])
            if kept == record:
                _audit(tx, actor, "set_secret_key", "store", "salt and check value")
            return kept

        kept: KeyRecord = self._write(work)
        return kept

    def api_tokens(self) -> list[ApiToken]:
        rows = self._run(cypher.META_ENTRIES, prefix=META_KEY_PREFIX)
        return [parse_entry(row["value"]) for row in rows]

    def change_token_entry(
        self, name: str, change: Callable[[str | None], str | None], action: str, actor: str
    ) -> bool:

        def work(tx: ManagedTransaction) -> bool:
            row = tx.run(cypher.META_VALUE, key=meta_key(name)).single()
            value = change(str(row["value"]) if row and row["value"] is not None else None)
            if value is None:
                return False
            tx.run(cypher.PUT_META, key=meta_key(name), value=value).consume()
            _audit(tx, actor, action, name, "")
            return True

        done: bool = self._write(work)
        return done

    def record_audit(self, action: str, entity_id: str, *, actor: str, detail: str = "") -> None:
        self._write(lambda tx: _audit(tx, actor, action, entity_id, detail))

    def wipe(self, *, actor: str | None = None) -> None:
        try:
            with self._driver.session(database=self._database) as session:
                summary = session.run(cypher.WIPE_SUMMARY).single(strict=True)
                session.run(cypher.WIPE_RELATIONSHIPS).consume()
                session.run(cypher.WIPE).consume()
                session.run(
                    cypher.CREATE_AUDIT,
                    logged_at=datetime.now(UTC),
                    actor=actor or process_actor(),
                    action="wipe",
                    entity_id="history",
                    detail=wipe_detail(
                        summary["executions"],
                        summary["patterns"],
                        summary["adaptations"],
                        _native(summary["first"]),
                        _native(summary["last"]),
                        ",".join(summary["actors"]),
                    ),
                ).consume()
        except Neo4jError as exc:
            raise StoreError(f"cannot wipe {self.url}: {exc}") from exc
        self._index = None

    # -- reads -----------------------------------------------------------------------------
    def store_id(self) -> str | None:
        rows = self._run(cypher.GET_STORE_ID)
        return str(rows[0]["value"]) if rows else None

    def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        rows = self._run(cypher.GET_EXECUTION, id=execution_id)
        if not rows:
            return None
        record = _export(rows[0]["e"])
        record["pattern_id"] = rows[0]["e"]["pattern_id"]
        return record

    def iter_executions(self, batch_size: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        with self._driver.session(database=self._database, fetch_size=batch_size) as session:
            result = session.run(cypher.ALL_EXECUTIONS)
            batch: list[dict[str, Any]] = []
            for record in result:
                batch.append(_export(record["e"]))
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
            if batch:
                yield batch

    def _columns(self, query: str, names: Iterable[str], **params: Any) -> dict[str, list[Any]]:
        """A chunked, column-wise query (see ``cypher.FRAME``) as one list per column."""
        columns: dict[str, list[Any]] = {name: [] for name in names}
        try:
            records, _, keys = self._driver.execute_query(
                query, {**params, "chunk": READ_CHUNK}, database_=self._database, routing_="r"
            )
        except Neo4jError as exc:
            raise StoreError(f"Neo4j query failed: {exc}") from exc
        for record in records:  # raw values: Record.data() would walk every value again
            for name, values in zip(keys, record, strict=True):
                columns[name] += values
        return columns

    def executions_frame(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        columns = self._columns(cypher.FRAME, cypher.FRAME_COLUMNS, since=since, until=until)
        return self._typed_frame(columns)

    def executions_frame_of(self, execution_ids: Sequence[str]) -> pd.DataFrame:
        columns = self._columns(cypher.FRAME_OF, cypher.FRAME_COLUMNS, ids=list(execution_ids))
        return self._typed_frame(columns)

    @staticmethod
    def _typed_frame(columns: dict[str, list[Any]]) -> pd.DataFrame:
        for name in ("started_at", "completed_at"):
            columns[name] = _utc_from_micros(columns[name])
        for name in ("resources_deployed", "issue_ids"):
            columns[name] = [v or [] for v in columns[name]]
        return typed_frame(pd.DataFrame(columns), EXECUTION_FRAME_DTYPES)

    def metrics_frame(
        self,
        *,
        metric_types: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pd.DataFrame:
        types = None if metric_types is None else list(metric_types)
        columns = self._columns(
            cypher.METRICS, cypher.METRIC_COLUMNS, since=since, until=until, types=types
        )
        # One row per execution here: repeat its context once per value, flatten the values.
        types_per_row = columns.pop("metric_types")
        values_per_row = columns.pop("metric_values")
        counts = np.fromiter(map(len, types_per_row), np.int64, len(types_per_row))
        frame = pd.DataFrame(
            {
                "execution_id": np.repeat(np.array(columns["execution_id"], object), counts),
                "metric_type": list(chain.from_iterable(types_per_row)),
                "value": np.fromiter(chain.from_iterable(values_per_row), np.float64),
                "recorded_at": np.repeat(_utc_from_micros(columns["recorded_at"]), counts),
                **{
                    name: np.repeat(np.array(columns[name], object), counts)
                    for name in ("target_environment", "deployment_strategy", "pattern_id")
                },
            }
        )
        if types is not None:
            frame = frame[frame["metric_type"].isin(types)]
        frame = frame.sort_values(
            ["recorded_at", "execution_id", "metric_type", "value"], kind="stable"
        )
        return typed_frame(frame, METRIC_FRAME_DTYPES)

    def metric_types(self) -> list[str]:
        return [str(row["metric_type"]) for row in self._run(cypher.METRIC_TYPES)]

    def issues(self) -> pd.DataFrame:
        frame = pd.DataFrame(self._run(cypher.ISSUES), columns=list(ISSUE_FRAME_DTYPES))
        return typed_frame(frame, ISSUE_FRAME_DTYPES)

    def patterns(self) -> list[DeploymentPattern]:
        return [
            DeploymentPattern(
                **{k: _native(v) for k, v in row.items() if k != "configuration_template"},
                configuration_template=orjson.loads(row["configuration_template"]),
            )
            for row in self._run(cypher.PATTERNS)
        ]

    def rollback_scenarios(self) -> list[RollbackScenario]:
        return [
            RollbackScenario(**{k: _native(v) for k, v in row["s"].items()})
            for row in self._run(cypher.SCENARIOS)
        ]

    def adaptations(self) -> list[EnvironmentAdaptation]:
        out = []
        for row in self._run(cypher.ADAPTATIONS):
            a = row["a"]
            out.append(
                EnvironmentAdaptation(
                    adaptation_id=a["adaptation_id"],
                    adaptation_name=a["adaptation_name"],
                    source_environment=a["source_environment"],
                    target_environment=a["target_environment"],
                    resource_type=a.get("resource_type"),
                    pattern_id=a.get("pattern_id"),
                    adaptation_rules=list(a.get("adaptation_rules") or []),
                    original_configuration=orjson.loads(a["original_configuration"]),
                    adapted_configuration=orjson.loads(a["adapted_configuration"]),
                )
            )
        return out

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        return [
            AuditEntry(
                _native(r["logged_at"]), r["actor"], r["action"], r["entity_id"], r["detail"]
            )
            for r in self._run(cypher.AUDIT_LOG, limit=limit)
        ]

    def stats(self) -> StoreStats:
        version = self._run(cypher.GET_SCHEMA_VERSION)
        row = self._run(cypher.STATS)[0]
        return StoreStats(
            self.url,
            int(version[0]["value"]) if version else None,
            *(
                int(row[k])
                for k in (
                    "executions",
                    "patterns",
                    "successes",
                    "failures",
                    "issues",
                    "rollback_scenarios",
                    "metrics",
                    "adaptations",
                    "audit_entries",
                )
            ),
        )


class _Rows(list[Any]):
    """A statement's rows, shown by their number only.

    The driver formats every RUN's parameters for its debug log even when debug logging is
    off (neo4j 6.4: ~10 µs per execution), and no log should repeat whole records anyway.
    """

    def __repr__(self) -> str:
        return f"<{len(self)} rows>"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _persist(tx: ManagedTransaction, plan: WritePlan[PreparedExecution], actor: str) -> None:
    """Write a plan in six statements at most; results are not awaited one by one.

    ``tx.run`` returns once the server has accepted a statement, so Python builds the next
    statement's parameters while the server executes the previous one; the commit waits for
    all of them (and raises the first error).
    """
    inserts = plan.inserts
    environments = sorted(
        {e.target_environment for e in inserts}
        | {e.source_environment for e in inserts if e.source_environment}
    )
    gateways = sorted({(e.gateway_host, e.target_environment) for e in inserts})
    tx.run(
        cypher.MERGE_CONTEXT,
        environments=environments,
        resource_types=sorted({r for e in inserts for r in e.resources_deployed}),
        gateways=[{"host": h, "environment": env} for h, env in gateways],
    )
    if plan.new_patterns:
        first_seen = {pid: plan.pattern_deltas[pid].first for pid in plan.pattern_deltas}
        tx.run(
            cypher.MERGE_PATTERNS,
            rows=[
                {
                    "pattern_id": p.pattern_id,
                    "deployment_strategy": p.deployment_strategy,
                    "pattern_name": p.pattern_name,
                    "configuration_template": _dumps(p.configuration_template),
                    "first_seen": _iso(first_seen.get(p.pattern_id)),
                    "settings": [
                        {"id": f"{k}={_dumps(v)}", "key": k, "value": _dumps(v)}
                        for k, v in p.configuration_template.items()
                    ],
                }
                for p in plan.new_patterns
            ],
        )
    if plan.issue_deltas:
        tx.run(
            cypher.UPSERT_ISSUES,
            rows=[
                {
                    "issue_id": issue_id,
                    "normalized": plan.issue_info[issue_id][0],
                    "example": plan.issue_info[issue_id][1],
                    "total": d.total,
                    "first": _iso(d.first),
                    "last": _iso(d.last),
                }
                for issue_id, d in sorted(plan.issue_deltas.items())
            ],
        )
    if plan.scenario_deltas:
        tx.run(
            cypher.UPSERT_SCENARIOS,
            rows=[
                {
                    "scenario_id": sid,
                    "environment": plan.scenario_info[sid].environment,
                    "deployment_strategy": plan.scenario_info[sid].deployment_strategy,
                    "trigger_issue": plan.scenario_info[sid].trigger_issue,
                    "resource_types": plan.scenario_info[sid].resource_types,
                    "success": d.success,
                    "failure": d.failure,
                    "first": _iso(d.first),
                    "last": _iso(d.last),
                }
                for sid, d in sorted(plan.scenario_deltas.items())
            ],
        )
    founders = {p.pattern_id for p in plan.new_patterns}
    rows = _Rows(
        _execution_row(e, pattern_id, founders)
        for e, pattern_id in zip(inserts, plan.pattern_ids, strict=True)
    )
    tx.run(cypher.CREATE_EXECUTIONS, rows=rows, now=datetime.now(UTC), actor=actor)
    tx.run(
        cypher.ADD_PATTERN_COUNTS,
        rows=[
            {
                "id": pid,
                "success": d.success,
                "failure": d.failure,
                "total": d.total,
                "first": _iso(d.first),
                "last": _iso(d.last),
            }
            for pid, d in sorted(plan.pattern_deltas.items())
        ],
    )


def _delete(tx: ManagedTransaction, execution_id: str, reason: str) -> str | None:
    """Delete one execution and its part in every count (``cypher.DELETE_*``); the audit
    detail, or None if there is no such execution."""
    found = tx.run(cypher.EXECUTION_TO_DELETE, id=execution_id).single()
    if found is None:
        return None
    pattern_id = found["pattern_id"]
    tx.run(cypher.DELETE_EXECUTION, id=execution_id).consume()
    tx.run(
        cypher.SUBTRACT_PATTERN_COUNTS,
        pattern_id=pattern_id,
        success=int(found["outcome"] == "success"),
        failure=int(found["outcome"] == "failure"),
    ).consume()
    tx.run(cypher.RELINK_PATTERN_FOUNDER, pattern_id=pattern_id).consume()
    tx.run(cypher.DELETE_UNUSED_PATTERN, pattern_id=pattern_id).consume()
    if found["issue_ids"]:
        tx.run(cypher.SUBTRACT_ISSUE_COUNTS, issue_ids=list(found["issue_ids"])).consume()
    if found["scenario_id"] is not None:
        rolled = found["rollback_successful"]
        tx.run(
            cypher.SUBTRACT_SCENARIO_COUNTS,
            scenario_id=found["scenario_id"],
            success=int(rolled is True),
            failure=int(rolled is False),
        ).consume()
    recorded_at = found["recorded_at"]
    return removal_detail(
        reason,
        pattern_id,
        recorded_at.to_native() if recorded_at is not None else None,
        found["recorded_by"],
    )


def _audit(tx: ManagedTransaction, actor: str, action: str, entity_id: str, detail: str) -> None:
    tx.run(
        cypher.CREATE_AUDIT,
        logged_at=datetime.now(UTC),
        actor=actor,
        action=action,
        entity_id=entity_id,
        detail=detail,
    ).consume()


def _execution_row(e: PreparedExecution, pattern_id: str, founders: set[str]) -> list[Any]:
    """A row of ``cypher.CREATE_EXECUTIONS``, in the order of ``cypher.EXECUTION_ROW``."""
    metrics = e.metrics()
    founder = pattern_id in founders
    founders.discard(pattern_id)  # only the pattern's first execution founds it
    row = list(_ROW_ATTRIBUTES(e))  # the Source.RECORD properties, in row order
    for position in _ROW_JSON:
        row[position] = _dumps(row[position])
    computed = {"pattern_id": pattern_id, "issue_ids": [i.issue_id for i in e.issues]}
    for position, name in _ROW_COMPUTED:  # ascending, so each lands at its own position
        row.insert(position, computed[name])
    row += [_iso(t) for t in _ROW_TIMES(e)]
    row += [founder, [[m[0] for m in metrics], [m[1] for m in metrics]] if metrics else None]
    return row


def _getter(names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The attributes ``names`` of an object as a tuple (one C call)."""
    get = attrgetter(*names)
    return get if len(names) > 1 else lambda e: (get(e),)


_RECORD_PROPERTIES = [
    name for name in cypher.EXECUTION_PROPERTIES if BY_NAME[name].source is Source.RECORD
]
_ROW_ATTRIBUTES = _getter(_RECORD_PROPERTIES)
_ROW_JSON = [i for i, name in enumerate(_RECORD_PROPERTIES) if BY_NAME[name].kind is Kind.JSON]
_ROW_COMPUTED = [
    (i, name)
    for i, name in enumerate(cypher.EXECUTION_PROPERTIES)
    if BY_NAME[name].source is not Source.RECORD
]
_ROW_TIMES = _getter(cypher.TIME_PROPERTIES)
# How _export reads each exported property: a property that is null is absent from a node
# (so nullable ones are read with get), a text list may be absent too (read as empty).
_EXPORT_CONVERTERS: dict[Kind, Callable[[Any], Any]] = {
    Kind.TEXTS: _texts,
    Kind.JSON: orjson.loads,
    Kind.TIME: _native,
}
_EXPORT_READS = tuple(
    (c.name, c.nullable or c.kind is Kind.TEXTS, _EXPORT_CONVERTERS.get(c.kind))
    for c in COLUMNS
    if c.exported
)


def _export(e: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, optional, convert in _EXPORT_READS:
        value = e.get(name) if optional else e[name]
        record[name] = value if convert is None else convert(value)
    return record
