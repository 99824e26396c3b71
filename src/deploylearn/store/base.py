"""The ``Store`` port: the only way the rest of deploylearn reads or writes history.

Two adapters implement it (``DuckDBStore``, the embedded default, and ``Neo4jStore``); one
contract test-suite holds both to identical answers on identical data. Implementations add no
public methods, so code written against this class works on either.
"""

from __future__ import annotations

import getpass
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import pandas as pd
import pyarrow as pa

from deploylearn.domain.prepared import PreparedExecution
from deploylearn.domain.records import DeploymentPattern, EnvironmentAdaptation, RollbackScenario
from deploylearn.domain.tokens import ApiToken, entry_to_save, revoked_entry
from deploylearn.store.plan import PlanRow, WriteResult

SCHEMA_VERSION = 1

_UTC_US = "datetime64[us, UTC]"
# Column dtypes of the frames every store returns: fixed, whatever the data (DuckDB's own
# conversion would depend on it, e.g. bool without NULLs, boolean with them).
EXECUTION_FRAME_DTYPES: dict[str, str] = {
    "execution_id": "str",
    "pattern_id": "str",
    "deployment_type": "str",
    "target_environment": "str",
    "source_environment": "str",
    "gateway_host": "str",
    "deployment_strategy": "str",
    "resources_deployed": "object",
    "status": "str",
    "outcome": "str",
    "started_at": _UTC_US,
    "completed_at": _UTC_US,
    "duration_seconds": "float64",
    "rollback_triggered": "bool",
    "rollback_successful": "boolean",
    "automation_triggered": "bool",
    "user_id": "str",
    "issue_ids": "object",
}
METRIC_FRAME_DTYPES: dict[str, str] = {
    "execution_id": "str",
    "metric_type": "str",
    "value": "float64",
    "recorded_at": _UTC_US,
    "target_environment": "str",
    "deployment_strategy": "str",
    "pattern_id": "str",
}
ISSUE_FRAME_DTYPES: dict[str, str] = {
    "issue_id": "str",
    "normalized": "str",
    "example": "str",
    "executions": "int64",
}


def process_actor() -> str:
    """Who this process acts for in the audit trail: ``DEPLOYLEARN_ACTOR`` or the OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return os.environ.get("DEPLOYLEARN_ACTOR") or user


def wipe_detail(
    executions: int,
    patterns: int,
    adaptations: int,
    first: datetime | None,
    last: datetime | None,
    actors: str,
) -> str:
    """The audit entry of a wipe: what it erased (their own audit stamps go with them)."""
    text = f"erased {executions} executions, {patterns} patterns, {adaptations} adaptations"
    if executions:
        text += f"; executions recorded {first} to {last} by {actors or 'unknown'}"
    return text


def typed_frame(frame: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` with exactly the port's columns, in order, and their dtypes."""
    return frame[list(dtypes)].astype(dict(dtypes)).reset_index(drop=True)


def removal_detail(
    reason: str, pattern_id: str, recorded_at: datetime | None, recorded_by: str | None
) -> str:
    """The audit detail of a delete or amend: why, and the record entry it takes away (an
    execution's own row is its ``record_execution`` entry)."""
    when = recorded_at.isoformat() if recorded_at is not None else "unknown time"
    return f"{reason} (was pattern {pattern_id}, recorded {when} by {recorded_by or 'unknown'})"


@dataclass(frozen=True)
class AuditEntry:
    """Who changed what, when: one per written entity (execution, adaptation, schema)."""

    at: datetime
    actor: str
    action: str
    entity_id: str
    detail: str = ""


@dataclass(frozen=True)
class KeyRecord:
    """What a store keeps of the key its secrets are encrypted under (never the key): the
    salt its passphrase is stretched with, and a check value, a token of a constant that only
    that key decrypts, so a writer holding another key is refused."""

    salt: str  # base64
    check: str


@dataclass(frozen=True)
class StoreStats:
    """Entity counts, for ``ign db status`` and for comparing stores."""

    url: str
    schema_version: int | None
    executions: int
    patterns: int
    successes: int
    failures: int
    issues: int
    rollback_scenarios: int
    metrics: int
    adaptations: int
    audit_entries: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Store(ABC):
    """Deployment history: executions, patterns, context, outcomes, adaptations, audit."""

    url: str

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @abstractmethod
    def init_schema(self) -> None:
        """Create tables / constraints / indexes; safe to run any number of times."""

    @abstractmethod
    def store_id(self) -> str | None:
        """This store's identity: a random id written once, when its schema is first created
        (``wipe`` keeps it). Models record it so serving can refuse one learned elsewhere.
        None for a store whose schema was never created."""

    @abstractmethod
    def write_executions(self, batch: Sequence[PreparedExecution], *, actor: str) -> WriteResult:
        """Write a batch: executions, their links, count deltas, audit.

        Idempotent on ``execution_id``: a record already stored with the same content is a
        duplicate and changes nothing; with different content it is a conflict, reported and
        not written. Other records of the batch are written regardless. A store may split a
        large batch into consecutive transactions (Neo4j: 1,000 executions each); if one
        fails, the earlier ones stay written and retrying the batch adds only the rest.
        """

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Around a run of large ``write_executions`` calls (an ingest): lets a store defer
        housekeeping to the end. Every write inside still commits as usual. No-op by default.
        """
        yield

    @abstractmethod
    def delete_execution(self, execution_id: str, *, actor: str, reason: str) -> bool:
        """Delete one execution, in one transaction, as if it had never been recorded: its
        pattern's, issues' and rollback scenario's counts lose its outcome, and a pattern,
        issue or scenario no execution refers to any more goes with it. Audited
        (``delete_execution``, ``removal_detail``). False if no such execution."""

    @abstractmethod
    def replace_execution(
        self, execution: PreparedExecution, *, actor: str, reason: str
    ) -> bool:
        """Amend: delete the stored execution with ``execution.execution_id`` and record
        ``execution`` in its place, in one transaction (pattern assigned afresh, every count
        exact). Audited (``amend_execution``); the new row's record stamp is this write's.
        False if no such execution (nothing written)."""

    @abstractmethod
    def record_adaptation(self, adaptation: EnvironmentAdaptation, *, actor: str) -> str:
        """Store a recorded environment adaptation (idempotent on its id); returns the id."""

    @abstractmethod
    def key_record(self) -> KeyRecord | None:
        """The store's ``KeyRecord``; None until a writer with a key claimed one."""

    @abstractmethod
    def claim_key_record(self, record: KeyRecord, *, actor: str) -> KeyRecord:
        """Keep ``record`` unless the store has one already; returns the one kept. Keeping it
        is audited (``set_secret_key``); a wipe keeps it."""

    @abstractmethod
    def api_tokens(self) -> list[ApiToken]:
        """Every API token entry, revoked ones included (``ign serve`` checks requests with
        them; a wipe keeps them)."""

    def save_api_token(self, token: ApiToken, *, actor: str) -> None:
        """Keep ``token`` (a new one, or a revoked one's name taken again): audited
        (``create_api_token``). ``ConflictError`` if an active token has the name."""
        self.change_token_entry(
            token.name, lambda old: entry_to_save(old, token), "create_api_token", actor
        )

    def revoke_api_token(self, name: str, *, actor: str) -> bool:
        """Mark the active token ``name`` revoked (audited: ``revoke_api_token``); False if
        there is none."""
        at = datetime.now(UTC)
        return self.change_token_entry(
            name, lambda old: revoked_entry(old, at), "revoke_api_token", actor
        )

    @abstractmethod
    def change_token_entry(
        self, name: str, change: Callable[[str | None], str | None], action: str, actor: str
    ) -> bool:
        """Replace token ``name``'s meta entry by ``change(old)`` (old: None if there is
        none; the result None: leave it) in one transaction, audited as ``action``. True if
        written. The token rules are ``domain.tokens``'; this is only the store's part."""

    @abstractmethod
    def record_audit(self, action: str, entity_id: str, *, actor: str, detail: str = "") -> None:
        """Append an audit entry for something that is not a write (e.g. decrypting)."""

    @abstractmethod
    def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        """One execution in the import/export shape, with ``pattern_id`` added; None if absent."""

    @abstractmethod
    def iter_executions(self, batch_size: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        """All executions in the import/export shape, ordered by (started_at, execution_id)."""

    @abstractmethod
    def executions_frame(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Executions as a DataFrame for learning and analytics, ordered by start time.

        Columns and dtypes: ``EXECUTION_FRAME_DTYPES`` (resources_deployed and issue_ids hold
        lists). ``since``/``until`` bound started_at (``until`` excluded).
        """

    @abstractmethod
    def executions_frame_of(self, execution_ids: Sequence[str]) -> pd.DataFrame:
        """The ``executions_frame`` rows of these executions (those stored), same order and
        dtypes: what a running service folds into its serving state after a write."""

    @abstractmethod
    def metrics_frame(
        self,
        *,
        metric_types: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pd.DataFrame:
        """One row per stored DeploymentMetric value, with its execution's context.

        For dashboards and duration/resource models, which need the measured numbers without
        parsing ``performance_data``. Columns: ``METRIC_FRAME_DTYPES``; ``since``/``until``
        bound the execution's started_at. Ordered by (recorded_at, execution_id, metric_type).
        """

    def metric_types(self) -> list[str]:
        """Names of every stored metric (the numeric ``performance_data`` keys seen, and
        ``duration_seconds``), sorted: what analytics and rollback recovery can read."""
        frame = self.metrics_frame()
        return sorted(str(t) for t in frame["metric_type"].dropna().unique())

    @abstractmethod
    def issues(self) -> pd.DataFrame:
        """Every normalized failure reason, with one raw example and how many executions link
        to it: what fails, in one table. Columns ``ISSUE_FRAME_DTYPES``, ordered by issue_id.
        """

    @abstractmethod
    def patterns(self) -> list[DeploymentPattern]:
        """Every pattern with its exact success and failure counts."""

    @abstractmethod
    def rollback_scenarios(self) -> list[RollbackScenario]:
        """Every rollback scenario with rollback success and failure counts."""

    @abstractmethod
    def adaptations(self) -> list[EnvironmentAdaptation]:
        """Recorded environment adaptations."""

    @abstractmethod
    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        """The newest audit entries first."""

    @abstractmethod
    def stats(self) -> StoreStats:
        """Entity counts."""

    @abstractmethod
    def wipe(self, *, actor: str | None = None) -> None:
        """Delete all history (for tests and demos); the schema stays, and so does the audit
        trail of other writes, to which the wipe appends what it erased (who recorded the
        executions, when) under ``actor`` (default: ``process_actor()``)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and locks."""


class TableWriter(Store):
    """A store with one more capability than the port: bulk ingest may prepare its batches in
    worker processes. A pure ``execution_table`` builds the write table there,
    ``write_execution_table`` writes it here. Row-based stores (Neo4j), whose writes the
    server rather than Python bounds, do not have it."""

    @staticmethod
    @abstractmethod
    def execution_table(batch: Sequence[PreparedExecution]) -> pa.Table:
        """Pure (runs in a worker process): ``batch`` as this store's bulk-write table, with
        placeholders for what only the writer knows (pattern ids, recording time and actor)."""

    @abstractmethod
    def write_execution_table(
        self, rows: Sequence[PlanRow], table: pa.Table, *, actor: str
    ) -> WriteResult:
        """``write_executions`` for a batch prepared elsewhere: ``rows`` in batch order, each
        naming its row of ``table`` (from ``execution_table``). Same idempotency and result."""
