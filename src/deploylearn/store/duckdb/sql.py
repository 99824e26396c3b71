"""All SQL of the embedded DuckDB store, in one place (as ``cypher.py`` is for Neo4j).

Relational shape of the same graph: foreign-key columns and list columns are the
relationships (``executions.pattern_id`` is FOLLOWS_DEPLOYMENT_PATTERN, ``issue_ids`` is
CAUSED_BY_ISSUE, ``rollback_scenario_id`` is TRIGGERS_ROLLBACK, ``metrics.execution_id`` is
MEASURES_DEPLOYMENT). Only primary keys are indexed: DuckDB scans columns fast and every
extra ART index slows bulk inserts.

Counts (a pattern's successes and failures, a scenario's, an issue's occurrences) and
first/last times are not stored: they are aggregated from ``executions`` when read. A write is
then just inserts, so a single execution is one autocommitted INSERT (no transaction, no
UPDATE; 1.9 vs 4 ms), and no interleaving of writers can lose a count. Reading them costs an
aggregate over ``executions`` (~10 ms at 100k executions).
"""

import re

from deploylearn.domain.execution_schema import COLUMN_NAMES, COLUMNS, EXPORT_FIELDS, Column, Kind
from deploylearn.store.base import EXECUTION_FRAME_DTYPES

# DuckDB's type for each kind of execution column (domain.execution_schema).
SQL_TYPES: dict[Kind, str] = {
    Kind.TEXT: "VARCHAR",
    Kind.TEXTS: "VARCHAR[]",
    Kind.JSON: "VARCHAR",
    Kind.NUMBER: "DOUBLE",
    Kind.NUMBERS: "DOUBLE[]",
    Kind.FLAG: "BOOLEAN",
    Kind.TIME: "TIMESTAMPTZ",
}


def _column_definition(column: Column) -> str:
    constraint = (
        " PRIMARY KEY" if column.primary_key else "" if column.nullable else " NOT NULL"
    )
    return f"{column.name} {SQL_TYPES[column.kind]}{constraint}"


# The executions table, one column per domain.execution_schema.COLUMNS entry, in its order.
EXECUTIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS executions (\n        "
    + ",\n        ".join(map(_column_definition, COLUMNS))
    + "\n    )"
)

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS patterns (
        pattern_id VARCHAR PRIMARY KEY,
        deployment_strategy VARCHAR NOT NULL,
        pattern_name VARCHAR NOT NULL,
        configuration_template VARCHAR NOT NULL
    )""",
    EXECUTIONS_TABLE,
    """CREATE TABLE IF NOT EXISTS issues (
        issue_id VARCHAR PRIMARY KEY,
        normalized VARCHAR NOT NULL,
        example VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS rollback_scenarios (
        scenario_id VARCHAR PRIMARY KEY,
        environment VARCHAR NOT NULL,
        deployment_strategy VARCHAR NOT NULL,
        trigger_issue VARCHAR NOT NULL,
        resource_types VARCHAR[] NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS adaptations (
        adaptation_id VARCHAR PRIMARY KEY,
        adaptation_name VARCHAR NOT NULL,
        source_environment VARCHAR NOT NULL,
        target_environment VARCHAR NOT NULL,
        resource_type VARCHAR,
        pattern_id VARCHAR,
        adaptation_rules VARCHAR[] NOT NULL,
        original_configuration VARCHAR NOT NULL,
        adapted_configuration VARCHAR NOT NULL,
        recorded_at TIMESTAMPTZ NOT NULL,
        recorded_by VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS audit_events (
        logged_at TIMESTAMPTZ NOT NULL,
        actor VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        entity_id VARCHAR NOT NULL,
        detail VARCHAR NOT NULL
    )""",
    # A DeploymentMetric per measured value, MEASURES_DEPLOYMENT its execution: stored as two
    # list columns of the execution (one write instead of one row per value), read as rows.
    """CREATE OR REPLACE VIEW metrics AS
        SELECT execution_id, unnest(metric_types) AS metric_type,
               unnest(metric_values) AS value,
               coalesce(completed_at, started_at) AS recorded_at
        FROM executions""",
    # Recording an execution stamps who and when on its row; that stamp is its audit entry.
    # Every other write (adaptations, schema changes, wipes) appends to audit_events.
    """CREATE OR REPLACE VIEW audit AS
        SELECT recorded_at AS logged_at, recorded_by AS actor, 'record_execution' AS action,
               execution_id AS entity_id, 'pattern ' || pattern_id AS detail
        FROM executions
        UNION ALL
        SELECT logged_at, actor, action, entity_id, detail FROM audit_events""",
]

# Stores written before counts were derived at read time kept them in these columns.
LEGACY_COUNT_COLUMNS = {
    "patterns": ("success_count", "failure_count", "execution_count", "first_seen", "last_used"),
    "issues": ("occurrences", "first_seen", "last_seen"),
    "rollback_scenarios": ("success_count", "failure_count", "first_seen", "last_seen"),
}
HAS_LEGACY_COUNTS = (
    "SELECT count(*) FROM duckdb_columns() "
    "WHERE table_name = 'patterns' AND column_name = 'success_count'"
)
DROP_LEGACY_COUNTS = [
    f"ALTER TABLE {table} DROP COLUMN IF EXISTS {column}"
    for table, columns in LEGACY_COUNT_COLUMNS.items()
    for column in columns
]
# Base tables only: ``metrics`` and ``audit`` are views over them. ``audit_events`` is not
# history: a wipe keeps it and appends what it erased (WIPE_SUMMARY).
HISTORY_TABLES = (
    "executions",
    "patterns",
    "issues",
    "rollback_scenarios",
    "adaptations",
)
WIPE_HISTORY = [f"DELETE FROM {table}" for table in HISTORY_TABLES]
WIPE_SUMMARY = """
    SELECT
        (SELECT count(*) FROM executions),
        (SELECT count(*) FROM patterns),
        (SELECT count(*) FROM adaptations),
        (SELECT min(recorded_at) FROM executions),
        (SELECT max(recorded_at) FROM executions),
        (SELECT coalesce(string_agg(DISTINCT recorded_by, ',' ORDER BY recorded_by), '')
         FROM executions)
"""

SET_SCHEMA_VERSION = (
    "INSERT INTO meta VALUES ('schema_version', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
GET_SCHEMA_VERSION = "SELECT value FROM meta WHERE key = 'schema_version'"
# The KeyRecord (salt and check value of the secret key) as two meta rows.
GET_KEY_RECORD = "SELECT key, value FROM meta WHERE key IN ('secret_salt', 'secret_check')"
INSERT_KEY_RECORD = "INSERT INTO meta VALUES ('secret_salt', ?), ('secret_check', ?)"
SET_STORE_ID = "INSERT INTO meta VALUES ('store_id', ?) ON CONFLICT (key) DO NOTHING"
GET_STORE_ID = "SELECT value FROM meta WHERE key = 'store_id'"
# deploylearn's own marker: only a file carrying it (or a store of the first layout, which
# predates it, see ``LEGACY_TABLES``) is ever written or migrated.
STORE_FORMAT = "deploylearn"
SET_STORE_FORMAT = (
    "INSERT INTO meta VALUES ('store_format', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
GET_STORE_FORMAT = "SELECT value FROM meta WHERE key = 'store_format'"
# What a file holds, asked over a read-only connection before anything is written.
USER_TABLES = (
    "SELECT table_name FROM duckdb_tables() "
    "WHERE database_name = current_database() AND schema_name = 'main'"
)
META_ROWS = "SELECT key, value FROM meta"
META_ENTRIES = "SELECT key, value FROM meta WHERE starts_with(key, ?) ORDER BY key"
META_VALUE = "SELECT value FROM meta WHERE key = ?"
PUT_META = "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
TABLE_COLUMNS = (
    "SELECT column_name FROM duckdb_columns() "
    "WHERE database_name = current_database() AND schema_name = 'main' AND table_name = ?"
)
# A store written before the marker existed has all of these, and executions.content_hash.
LEGACY_TABLES = frozenset(
    {
        "meta",
        "patterns",
        "executions",
        "issues",
        "rollback_scenarios",
        "adaptations",
        "audit_events",
    }
)

EXISTING_HASHES = """
    SELECT e.execution_id, e.content_hash
    FROM executions e JOIN batch_ids b ON e.execution_id = b.execution_id
"""
EXISTING_HASH = "SELECT execution_id, content_hash FROM executions WHERE execution_id = ?"
# Each pattern's counts and first/last times, aggregated from its executions; every read of
# pattern counts joins this.
_PATTERN_COUNTS = """
    SELECT pattern_id,
           count(*) FILTER (WHERE outcome = 'success') AS success_count,
           count(*) FILTER (WHERE outcome = 'failure') AS failure_count,
           min(started_at) AS first_seen, max(started_at) AS last_used
    FROM executions GROUP BY pattern_id
"""
ALL_PATTERN_TEMPLATES = f"""
    SELECT p.pattern_id, p.deployment_strategy, p.configuration_template
    FROM patterns p LEFT JOIN ({_PATTERN_COUNTS}) c USING (pattern_id)
    ORDER BY c.first_seen NULLS LAST, p.pattern_id
"""

EXECUTION_COLUMNS = len(COLUMNS)
# By column name, so neither statement depends on the table's (or batch_rows's) column order.
_EXECUTION_COLUMN_LIST = ", ".join(COLUMN_NAMES)
INSERT_EXECUTION_ROWS = (
    f"INSERT INTO executions ({_EXECUTION_COLUMN_LIST}) "
    f"VALUES ({', '.join(['?'] * EXECUTION_COLUMNS)})"
)
INSERT_EXECUTION_TABLE = (
    f"INSERT INTO executions ({_EXECUTION_COLUMN_LIST}) "
    f"SELECT {_EXECUTION_COLUMN_LIST} FROM batch_rows"
)

# Definitions are inserted once; a concurrent or earlier writer may have inserted them already.
INSERT_PATTERN = "INSERT INTO patterns VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
INSERT_PATTERN_TABLE = "INSERT INTO patterns SELECT * FROM batch_rows ON CONFLICT DO NOTHING"
INSERT_ISSUE = "INSERT INTO issues VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
INSERT_ISSUE_TABLE = "INSERT INTO issues SELECT * FROM batch_rows ON CONFLICT DO NOTHING"
INSERT_SCENARIO = "INSERT INTO rollback_scenarios VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
INSERT_SCENARIO_TABLE = (
    "INSERT INTO rollback_scenarios SELECT * FROM batch_rows ON CONFLICT DO NOTHING"
)
KNOWN_ISSUE_IDS = "SELECT issue_id FROM issues"
KNOWN_SCENARIO_IDS = "SELECT scenario_id FROM rollback_scenarios"
INSERT_ADAPTATION = """
    INSERT INTO adaptations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (adaptation_id) DO NOTHING
"""
INSERT_AUDIT_EVENT = "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?)"

# Deleting an execution (delete, amend): what its row held, then the row, then the
# definitions no execution refers to any more (counts are derived, so nothing else changes).
EXECUTION_TO_DELETE = """
    SELECT pattern_id, issue_ids, rollback_scenario_id, recorded_at, recorded_by
    FROM executions WHERE execution_id = ?
"""
DELETE_EXECUTION = "DELETE FROM executions WHERE execution_id = ?"
DELETE_UNUSED_PATTERN = """
    DELETE FROM patterns WHERE pattern_id = $id
      AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.pattern_id = $id)
"""
DELETE_UNUSED_ISSUES = """
    DELETE FROM issues WHERE list_contains($ids::VARCHAR[], issue_id)
      AND NOT EXISTS (SELECT 1 FROM executions e WHERE list_contains(e.issue_ids, issues.issue_id))
"""
DELETE_UNUSED_SCENARIO = """
    DELETE FROM rollback_scenarios WHERE scenario_id = $id
      AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.rollback_scenario_id = $id)
"""

# The import/export fields in their order, then pattern_id (get_execution adds it).
EXPORT_COLUMNS = ", ".join((*EXPORT_FIELDS, "pattern_id"))
SELECT_EXECUTION = f"SELECT {EXPORT_COLUMNS} FROM executions WHERE execution_id = ?"
SELECT_ALL_EXECUTIONS = f"SELECT {EXPORT_COLUMNS} FROM executions ORDER BY started_at, execution_id"

FRAME_COLUMNS = ", ".join(EXECUTION_FRAME_DTYPES)
SELECT_FRAME = f"""
    SELECT {FRAME_COLUMNS} FROM executions
    WHERE started_at >= coalesce(?::TIMESTAMPTZ, '-infinity'::TIMESTAMPTZ)
      AND started_at < coalesce(?::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
    ORDER BY started_at, execution_id
"""
SELECT_FRAME_OF = f"""
    SELECT {FRAME_COLUMNS} FROM executions
    WHERE execution_id IN (SELECT unnest(?::VARCHAR[]))
    ORDER BY started_at, execution_id
"""

# The metrics view, with the execution's context and filters; the type filter applies to the
# unnested rows, so it is outside.
SELECT_METRICS = """
    SELECT * FROM (
        SELECT execution_id, unnest(metric_types) AS metric_type, unnest(metric_values) AS value,
               coalesce(completed_at, started_at) AS recorded_at, target_environment,
               deployment_strategy, pattern_id
        FROM executions
        WHERE started_at >= coalesce($since::TIMESTAMPTZ, '-infinity'::TIMESTAMPTZ)
          AND started_at < coalesce($until::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
    )
    WHERE $types::VARCHAR[] IS NULL OR list_contains($types::VARCHAR[], metric_type)
    ORDER BY recorded_at, execution_id, metric_type, value
"""
SELECT_METRIC_TYPES = """
    SELECT DISTINCT unnest(metric_types) AS metric_type FROM executions ORDER BY metric_type
"""

SELECT_ISSUES = """
    SELECT i.issue_id, i.normalized, i.example, count(l.issue_id) AS executions
    FROM issues i
    LEFT JOIN (SELECT unnest(issue_ids) AS issue_id FROM executions) l USING (issue_id)
    GROUP BY i.issue_id, i.normalized, i.example
    ORDER BY i.issue_id
"""

SELECT_PATTERNS = f"""
    SELECT p.pattern_id, p.pattern_name, p.deployment_strategy, p.configuration_template,
           coalesce(c.success_count, 0), coalesce(c.failure_count, 0), c.first_seen, c.last_used
    FROM patterns p LEFT JOIN ({_PATTERN_COUNTS}) c USING (pattern_id)
    ORDER BY p.pattern_id
"""
SELECT_SCENARIOS = """
    SELECT s.scenario_id, s.environment, s.deployment_strategy, s.trigger_issue,
           s.resource_types, coalesce(c.success_count, 0), coalesce(c.failure_count, 0),
           c.first_seen, c.last_seen
    FROM rollback_scenarios s LEFT JOIN (
        SELECT rollback_scenario_id AS scenario_id,
               count(*) FILTER (WHERE rollback_successful) AS success_count,
               count(*) FILTER (WHERE NOT rollback_successful) AS failure_count,
               min(started_at) AS first_seen, max(started_at) AS last_seen
        FROM executions WHERE rollback_scenario_id IS NOT NULL
        GROUP BY rollback_scenario_id
    ) c USING (scenario_id)
    ORDER BY s.scenario_id
"""
SELECT_ADAPTATIONS = """
    SELECT adaptation_id, adaptation_name, source_environment, target_environment,
           resource_type, pattern_id, adaptation_rules, original_configuration,
           adapted_configuration
    FROM adaptations ORDER BY adaptation_id
"""
SELECT_AUDIT = (
    "SELECT logged_at, actor, action, entity_id, detail FROM audit ORDER BY logged_at DESC LIMIT ?"
)
STATS = """
    SELECT
        (SELECT count(*) FROM executions),
        (SELECT count(*) FROM patterns),
        (SELECT count(*) FROM executions WHERE outcome = 'success'),
        (SELECT count(*) FROM executions WHERE outcome = 'failure'),
        (SELECT count(*) FROM issues),
        (SELECT count(*) FROM rollback_scenarios),
        (SELECT coalesce(sum(len(metric_values)), 0) FROM executions),
        (SELECT count(*) FROM adaptations),
        (SELECT count(*) FROM executions) + (SELECT count(*) FROM audit_events)
"""

# -- session and transactions (every connection reads and writes times in UTC)
SET_UTC = "SET TimeZone = 'UTC'"
BEGIN = "BEGIN TRANSACTION"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
GET_CHECKPOINT_THRESHOLD = "SELECT current_setting('checkpoint_threshold')"
DEFAULT_CHECKPOINT_THRESHOLD = "16MB"  # DuckDB's own default
CHECKPOINT = "CHECKPOINT"


def set_checkpoint_threshold(size: str) -> str:
    """``SET checkpoint_threshold``; ``size`` is a DuckDB size such as ``4GB`` or ``16.0 MiB``
    (what ``current_setting`` gives back), checked because it is spliced into the text."""
    if not re.fullmatch(r"\d+(\.\d+)?\s*[A-Za-z]*", size):
        raise ValueError(f"not a DuckDB size: {size!r}")
    return f"SET checkpoint_threshold = '{size}'"
