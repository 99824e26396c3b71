"""The ``Store`` port: the only way the rest of deploylearn reads or writes history.

Two adapters implement it (``DuckDBStore``, the embedded default, and ``Neo4jStore``); one
contract test-suite holds both to identical answers on identical data. Implementations add no
public methods, so code written against this class works on either.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import pandas as pd

from deploylearn.preparation import PreparedExecution
from deploylearn.records import DeploymentPattern, EnvironmentAdaptation, RollbackScenario
from deploylearn.store.plan import WriteResult

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class AuditEntry:
    """Who changed what, when: one per written entity (execution, adaptation, schema)."""

    at: datetime
    actor: str
    action: str
    entity_id: str
    detail: str = ""


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
    def write_executions(self, batch: Sequence[PreparedExecution], *, actor: str) -> WriteResult:
        """Write a batch in one transaction: executions, their links, count deltas, audit.

        Idempotent on ``execution_id``: a record already stored with the same content is a
        duplicate and changes nothing; with different content it is a conflict, reported and
        not written. Other records of the batch are written regardless.
        """

    @abstractmethod
    def record_adaptation(self, adaptation: EnvironmentAdaptation, *, actor: str) -> str:
        """Store a recorded environment adaptation (idempotent on its id); returns the id."""

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

        Columns: execution_id, pattern_id, deployment_type, target_environment,
        source_environment, gateway_host, deployment_strategy, resources_deployed (list),
        status, outcome, started_at, completed_at, duration_seconds, rollback_triggered,
        rollback_successful, automation_triggered, user_id, issue_ids (list).
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
    def wipe(self) -> None:
        """Delete all history (for tests and demos); the schema stays."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and locks."""
