"""All SQL of the embedded DuckDB store, in one place (as ``cypher.py`` is for Neo4j).

Relational shape of the same graph: foreign-key columns and list columns are the
relationships (``executions.pattern_id`` is FOLLOWS_DEPLOYMENT_PATTERN, ``issue_ids`` is
CAUSED_BY_ISSUE, ``rollback_scenario_id`` is TRIGGERS_ROLLBACK, ``metrics.execution_id`` is
MEASURES_DEPLOYMENT). Only primary keys are indexed: DuckDB scans columns fast and every
extra ART index slows bulk inserts.
"""

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS patterns (
        pattern_id VARCHAR PRIMARY KEY,
        deployment_strategy VARCHAR NOT NULL,
        pattern_name VARCHAR NOT NULL,
        configuration_template VARCHAR NOT NULL,
        success_count BIGINT NOT NULL DEFAULT 0,
        failure_count BIGINT NOT NULL DEFAULT 0,
        execution_count BIGINT NOT NULL DEFAULT 0,
        first_seen TIMESTAMPTZ,
        last_used TIMESTAMPTZ
    )""",
    """CREATE TABLE IF NOT EXISTS executions (
        execution_id VARCHAR PRIMARY KEY,
        content_hash VARCHAR NOT NULL,
        pattern_id VARCHAR NOT NULL,
        execution_name VARCHAR NOT NULL,
        deployment_type VARCHAR NOT NULL,
        target_environment VARCHAR NOT NULL,
        source_environment VARCHAR,
        gateway_host VARCHAR NOT NULL,
        deployment_strategy VARCHAR NOT NULL,
        resources_deployed VARCHAR[] NOT NULL,
        configuration_used VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        outcome VARCHAR,
        started_at TIMESTAMPTZ NOT NULL,
        completed_at TIMESTAMPTZ,
        duration_seconds DOUBLE,
        failure_reasons VARCHAR[] NOT NULL,
        issue_ids VARCHAR[] NOT NULL,
        rollback_triggered BOOLEAN NOT NULL,
        rollback_successful BOOLEAN,
        rollback_scenario_id VARCHAR,
        user_id VARCHAR,
        automation_triggered BOOLEAN NOT NULL,
        execution_log VARCHAR,
        performance_data VARCHAR NOT NULL,
        lessons_learned VARCHAR[] NOT NULL,
        recorded_at TIMESTAMPTZ NOT NULL,
        recorded_by VARCHAR NOT NULL,
        metric_types VARCHAR[] NOT NULL,
        metric_values DOUBLE[] NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS issues (
        issue_id VARCHAR PRIMARY KEY,
        normalized VARCHAR NOT NULL,
        example VARCHAR NOT NULL,
        occurrences BIGINT NOT NULL,
        first_seen TIMESTAMPTZ,
        last_seen TIMESTAMPTZ
    )""",
    """CREATE TABLE IF NOT EXISTS rollback_scenarios (
        scenario_id VARCHAR PRIMARY KEY,
        environment VARCHAR NOT NULL,
        deployment_strategy VARCHAR NOT NULL,
        trigger_issue VARCHAR NOT NULL,
        resource_types VARCHAR[] NOT NULL,
        success_count BIGINT NOT NULL,
        failure_count BIGINT NOT NULL,
        first_seen TIMESTAMPTZ,
        last_seen TIMESTAMPTZ
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
    # Every other write (adaptations, wipes) appends to audit_events.
    """CREATE OR REPLACE VIEW audit AS
        SELECT recorded_at AS logged_at, recorded_by AS actor, 'record_execution' AS action,
               execution_id AS entity_id, 'pattern ' || pattern_id AS detail
        FROM executions
        UNION ALL
        SELECT logged_at, actor, action, entity_id, detail FROM audit_events""",
]

# Base tables only: ``metrics`` and ``audit`` are views over them.
HISTORY_TABLES = (
    "executions",
    "patterns",
    "issues",
    "rollback_scenarios",
    "adaptations",
    "audit_events",
)

SET_SCHEMA_VERSION = (
    "INSERT INTO meta VALUES ('schema_version', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
GET_SCHEMA_VERSION = "SELECT value FROM meta WHERE key = 'schema_version'"

EXISTING_HASHES = """
    SELECT e.execution_id, e.content_hash
    FROM executions e JOIN batch_ids b ON e.execution_id = b.execution_id
"""
EXISTING_HASH = "SELECT execution_id, content_hash FROM executions WHERE execution_id = ?"
ALL_PATTERN_TEMPLATES = (
    "SELECT pattern_id, deployment_strategy, configuration_template FROM patterns "
    "ORDER BY first_seen, pattern_id"
)

EXECUTION_COLUMNS = 30
INSERT_EXECUTION_ROWS = f"INSERT INTO executions VALUES ({', '.join(['?'] * EXECUTION_COLUMNS)})"
INSERT_EXECUTION_TABLE = "INSERT INTO executions SELECT * FROM batch_rows"

# Counts are added, never overwritten, so writers that interleave cannot lose an update.
# Each write has a one-row form (parameters) and a bulk form over a registered Arrow table.
INSERT_PATTERN = "INSERT INTO patterns VALUES (?, ?, ?, ?, 0, 0, 0, ?, ?)"
ADD_PATTERN_COUNTS = """
    UPDATE patterns SET
        success_count = success_count + ?,
        failure_count = failure_count + ?,
        execution_count = execution_count + ?,
        first_seen = least(first_seen, ?),
        last_used = greatest(last_used, ?)
    WHERE pattern_id = ?
"""
ADD_PATTERN_COUNTS_TABLE = """
    UPDATE patterns SET
        success_count = patterns.success_count + b.success,
        failure_count = patterns.failure_count + b.failure,
        execution_count = patterns.execution_count + b.total,
        first_seen = least(patterns.first_seen, b.first),
        last_used = greatest(patterns.last_used, b.last)
    FROM batch_rows b WHERE patterns.pattern_id = b.pattern_id
"""
_UPSERT_ISSUE_TAIL = """
    ON CONFLICT (issue_id) DO UPDATE SET
        occurrences = issues.occurrences + excluded.occurrences,
        first_seen = least(issues.first_seen, excluded.first_seen),
        last_seen = greatest(issues.last_seen, excluded.last_seen)
"""
UPSERT_ISSUE = "INSERT INTO issues VALUES (?, ?, ?, ?, ?, ?)" + _UPSERT_ISSUE_TAIL
UPSERT_ISSUE_TABLE = "INSERT INTO issues SELECT * FROM batch_rows" + _UPSERT_ISSUE_TAIL
_UPSERT_SCENARIO_TAIL = """
    ON CONFLICT (scenario_id) DO UPDATE SET
        success_count = rollback_scenarios.success_count + excluded.success_count,
        failure_count = rollback_scenarios.failure_count + excluded.failure_count,
        first_seen = least(rollback_scenarios.first_seen, excluded.first_seen),
        last_seen = greatest(rollback_scenarios.last_seen, excluded.last_seen)
"""
UPSERT_SCENARIO = "INSERT INTO rollback_scenarios VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" + (
    _UPSERT_SCENARIO_TAIL
)
UPSERT_SCENARIO_TABLE = "INSERT INTO rollback_scenarios SELECT * FROM batch_rows" + (
    _UPSERT_SCENARIO_TAIL
)
INSERT_ADAPTATION = """
    INSERT INTO adaptations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (adaptation_id) DO NOTHING
"""
INSERT_AUDIT_EVENT = "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?)"

EXPORT_COLUMNS = (
    "execution_id, execution_name, deployment_type, target_environment, source_environment, "
    "gateway_host, deployment_strategy, resources_deployed, configuration_used, status, "
    "started_at, completed_at, failure_reasons, rollback_triggered, rollback_successful, "
    "user_id, automation_triggered, execution_log, performance_data, lessons_learned, pattern_id"
)
SELECT_EXECUTION = f"SELECT {EXPORT_COLUMNS} FROM executions WHERE execution_id = ?"
SELECT_ALL_EXECUTIONS = f"SELECT {EXPORT_COLUMNS} FROM executions ORDER BY started_at, execution_id"

FRAME_COLUMNS = (
    "execution_id, pattern_id, deployment_type, target_environment, source_environment, "
    "gateway_host, deployment_strategy, resources_deployed, status, outcome, started_at, "
    "completed_at, duration_seconds, rollback_triggered, rollback_successful, "
    "automation_triggered, user_id, issue_ids"
)
SELECT_FRAME = f"""
    SELECT {FRAME_COLUMNS} FROM executions
    WHERE started_at >= coalesce(?::TIMESTAMPTZ, '-infinity'::TIMESTAMPTZ)
      AND started_at < coalesce(?::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
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
SELECT_ISSUES = """
    SELECT i.issue_id, i.normalized, i.example, count(l.issue_id) AS executions
    FROM issues i
    LEFT JOIN (SELECT unnest(issue_ids) AS issue_id FROM executions) l USING (issue_id)
    GROUP BY i.issue_id, i.normalized, i.example
    ORDER BY i.issue_id
"""

SELECT_PATTERNS = """
    SELECT pattern_id, pattern_name, deployment_strategy, configuration_template,
           success_count, failure_count, first_seen, last_used
    FROM patterns ORDER BY pattern_id
"""
SELECT_SCENARIOS = """
    SELECT scenario_id, environment, deployment_strategy, trigger_issue, resource_types,
           success_count, failure_count, first_seen, last_seen
    FROM rollback_scenarios ORDER BY scenario_id
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
        (SELECT coalesce(sum(success_count), 0) FROM patterns),
        (SELECT coalesce(sum(failure_count), 0) FROM patterns),
        (SELECT count(*) FROM issues),
        (SELECT count(*) FROM rollback_scenarios),
        (SELECT coalesce(sum(len(metric_values)), 0) FROM executions),
        (SELECT count(*) FROM adaptations),
        (SELECT count(*) FROM executions) + (SELECT count(*) FROM audit_events)
"""
