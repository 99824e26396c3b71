"""The stored execution record, declared once: every column in stored order.

The copies that used to be kept in step by hand derive from ``COLUMNS``: the DuckDB table
(``store.duckdb.sql``: DDL, column count, INSERTs by column name), its Arrow schema
(``store.duckdb.store``), the properties of a Neo4j Execution node (``store.neo4j.cypher``),
both stores' export readers, ``PreparedExecution.to_seed_dict`` and the import/export field
order with the CSV header (``ingest.formats.FIELD_ORDER``). ``tests/unit/test_schema.py``
fails when any of them drifts.

A column has a logical ``Kind``; each store maps kinds to its own types (DuckDB SQL types in
``store.duckdb.sql``, Arrow types in ``store.duckdb.store``), so nothing of a database lives
here. The order is the stored order of the DuckDB table: a DuckDB file written before keeps
its columns where they are, so **new columns go at the end** (and need a migration).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What a column holds, independent of any database."""

    TEXT = "text"  # a string
    TEXTS = "texts"  # a list of strings (never null: empty instead)
    JSON = "json"  # a JSON object, stored as its compact JSON text
    NUMBER = "number"  # a float
    NUMBERS = "numbers"  # a list of floats
    FLAG = "flag"  # a boolean
    TIME = "time"  # an aware datetime, in UTC


class Source(StrEnum):
    """Where a writer gets a column's value."""

    RECORD = "record"  # the ``PreparedExecution`` attribute of the same name (JSON: encoded)
    ASSIGNED = "assigned"  # assigned by the write: pattern_id, against the stored patterns
    STAMPED = "stamped"  # the write's time and actor, one value for a whole batch
    ISSUES = "issues"  # the ids of the prepared execution's issues
    METRICS = "metrics"  # its ``metrics()``: DuckDB list columns, a Metric node in Neo4j


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = False
    exported: bool = True  # in the import/export record: the seed's keywords + execution_id
    source: Source = Source.RECORD
    primary_key: bool = False


def _stored(
    name: str, kind: Kind, *, nullable: bool = False, source: Source = Source.RECORD
) -> Column:
    """A column computed when the execution is stored: never imported or exported."""
    return Column(name, kind, nullable, exported=False, source=source)


COLUMNS: tuple[Column, ...] = (
    Column("execution_id", Kind.TEXT, primary_key=True),
    _stored("content_hash", Kind.TEXT),
    _stored("pattern_id", Kind.TEXT, source=Source.ASSIGNED),
    Column("execution_name", Kind.TEXT),
    Column("deployment_type", Kind.TEXT),
    Column("target_environment", Kind.TEXT),
    Column("source_environment", Kind.TEXT, nullable=True),
    Column("gateway_host", Kind.TEXT),
    Column("deployment_strategy", Kind.TEXT),
    Column("resources_deployed", Kind.TEXTS),
    Column("configuration_used", Kind.JSON),
    Column("status", Kind.TEXT),
    _stored("outcome", Kind.TEXT, nullable=True),
    Column("started_at", Kind.TIME),
    Column("completed_at", Kind.TIME, nullable=True),
    _stored("duration_seconds", Kind.NUMBER, nullable=True),
    Column("failure_reasons", Kind.TEXTS),
    _stored("issue_ids", Kind.TEXTS, source=Source.ISSUES),
    Column("rollback_triggered", Kind.FLAG),
    Column("rollback_successful", Kind.FLAG, nullable=True),
    _stored("rollback_scenario_id", Kind.TEXT, nullable=True),
    Column("user_id", Kind.TEXT, nullable=True),
    Column("automation_triggered", Kind.FLAG),
    Column("execution_log", Kind.TEXT, nullable=True),
    Column("performance_data", Kind.JSON),
    Column("lessons_learned", Kind.TEXTS),
    _stored("recorded_at", Kind.TIME, source=Source.STAMPED),
    _stored("recorded_by", Kind.TEXT, source=Source.STAMPED),
    _stored("metric_types", Kind.TEXTS, source=Source.METRICS),
    _stored("metric_values", Kind.NUMBERS, source=Source.METRICS),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
# The import/export record (JSON Lines, JSON, CSV header, ``Store.iter_executions``), in
# stored order: the seed's ``record_deployment_execution`` keywords plus ``execution_id``.
EXPORT_FIELDS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.exported)
# Fields of ``records.DeploymentExecution`` that are deliberately not stored (none today):
# a new field must become a column (at the end of COLUMNS) or be listed here.
NOT_STORED: frozenset[str] = frozenset()


def names(*, kind: Kind | None = None, exported: bool | None = None) -> tuple[str, ...]:
    """Column names in stored order, of one ``kind`` and/or only the (not) exported ones."""
    return tuple(
        c.name
        for c in COLUMNS
        if (kind is None or c.kind is kind) and (exported is None or c.exported is exported)
    )
