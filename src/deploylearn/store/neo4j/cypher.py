"""All Cypher of the Neo4j store, in one module. Parameters only: no value is ever formatted
into a query, and labels and relationship types are the fixed names below.

Graph: executions FOLLOWS_DEPLOYMENT_PATTERN a pattern, are DEPLOYED_TO an Environment (and
PROMOTED_FROM one), RAN_ON a Gateway (IN_ENVIRONMENT), DEPLOY_RESOURCE ResourceTypes and are
CAUSED_BY_ISSUE Issues; patterns USE_SETTING ConfigSettings (key=value) and LEARN_FROM their
founding execution; a rollback TRIGGERS_ROLLBACK a RollbackScenario that LEARNS_FROM_EXECUTION
it; a DeploymentMetric MEASURES_DEPLOYMENT its execution; an EnvironmentAdaptation
ADAPTS_TO_ENVIRONMENT its target (and pattern). Outcomes live only in properties, never in
the structure that embeddings see. An execution's audit entry is the recorded_at/recorded_by
stamp on it; other writes (adaptations) add AuditEntry nodes.
"""

from __future__ import annotations

from deploylearn.domain.execution_schema import BY_NAME, COLUMNS, Kind, Source
from deploylearn.domain.vocabulary import Label, Rel
from deploylearn.store.base import EXECUTION_FRAME_DTYPES

CONSTRAINTS = [
    f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.{key} IS UNIQUE"
    for name, label, key in (
        ("pattern_id", Label.PATTERN, "pattern_id"),
        ("execution_id", Label.EXECUTION, "execution_id"),
        ("adaptation_id", Label.ADAPTATION, "adaptation_id"),
        ("scenario_id", Label.ROLLBACK_SCENARIO, "scenario_id"),
        ("metric_id", Label.METRIC, "metric_id"),
        ("environment_name", Label.ENVIRONMENT, "name"),
        ("gateway_host", Label.GATEWAY, "host"),
        ("resource_type_name", Label.RESOURCE_TYPE, "name"),
        ("issue_id", Label.ISSUE, "issue_id"),
        ("setting_id", Label.CONFIG_SETTING, "setting_id"),
        ("meta_key", Label.META, "key"),
    )
]
INDEXES = [
    f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{key})"
    for name, label, key in (
        ("execution_started_at", Label.EXECUTION, "started_at"),
        ("execution_environment", Label.EXECUTION, "target_environment"),
        ("execution_pattern", Label.EXECUTION, "pattern_id"),
        ("pattern_strategy", Label.PATTERN, "deployment_strategy"),
        ("scenario_environment", Label.ROLLBACK_SCENARIO, "environment"),
        ("audit_logged_at", Label.AUDIT, "logged_at"),
    )
]
# A change of schema version is audited in the same statement.
SET_SCHEMA_VERSION = f"""
MERGE (m:{Label.META} {{key: 'schema_version'}}) SET m.value = $version
CREATE (:{Label.AUDIT} {{logged_at: $logged_at, actor: $actor, action: $action,
    entity_id: 'schema', detail: $detail}})
"""
GET_SCHEMA_VERSION = f"MATCH (m:{Label.META} {{key: 'schema_version'}}) RETURN m.value AS value"
# The KeyRecord (salt and check value of the secret key): the first writer's is kept.
GET_KEY_RECORD = (
    f"MATCH (m:{Label.META} {{key: 'secret_key'}}) RETURN m.salt AS salt, m.check AS check"
)
CLAIM_KEY_RECORD = f"""
MERGE (m:{Label.META} {{key: 'secret_key'}})
ON CREATE SET m.salt = $salt, m.check = $check
RETURN m.salt AS salt, m.check AS check
"""
# Other meta entries (API tokens): a key and a JSON value.
META_ENTRIES = (
    f"MATCH (m:{Label.META}) WHERE m.key STARTS WITH $prefix "
    "RETURN m.key AS key, m.value AS value ORDER BY key"
)
META_VALUE = f"MATCH (m:{Label.META} {{key: $key}}) RETURN m.value AS value"
PUT_META = f"MERGE (m:{Label.META} {{key: $key}}) SET m.value = $value"
SET_STORE_ID = f"MERGE (m:{Label.META} {{key: 'store_id'}}) ON CREATE SET m.value = $store_id"
GET_STORE_ID = f"MATCH (m:{Label.META} {{key: 'store_id'}}) RETURN m.value AS value"
# Whose database this is: deploylearn's schema version (None: never created here), and
# whether it holds any node that is not deploylearn's (labels of the graph above).
OWNERSHIP = f"""
OPTIONAL MATCH (m:{Label.META} {{key: 'schema_version'}})
WITH m.value AS version
CALL () {{
    MATCH (n)
    WHERE none(label IN labels(n) WHERE label IN $labels)
    WITH n LIMIT 1
    RETURN count(n) > 0 AS foreign
}}
RETURN version, foreign
"""

EXISTING_HASHES = f"""
UNWIND $ids AS id
MATCH (e:{Label.EXECUTION} {{execution_id: id}})
RETURN e.execution_id AS execution_id, e.content_hash AS content_hash
"""
PATTERN_COUNT = f"MATCH (p:{Label.PATTERN}) RETURN count(p) AS n"
ALL_PATTERN_TEMPLATES = f"""
MATCH (p:{Label.PATTERN})
RETURN p.pattern_id AS pattern_id, p.deployment_strategy AS strategy,
       p.configuration_template AS template
ORDER BY p.first_seen, p.pattern_id
"""

MERGE_CONTEXT = f"""
UNWIND $environments AS name MERGE (:{Label.ENVIRONMENT} {{name: name}})
WITH count(*) AS _
UNWIND $resource_types AS name MERGE (:{Label.RESOURCE_TYPE} {{name: name}})
WITH count(*) AS _
UNWIND $gateways AS g
MERGE (gw:{Label.GATEWAY} {{host: g.host}})
WITH gw, g
MATCH (env:{Label.ENVIRONMENT} {{name: g.environment}})
MERGE (gw)-[:{Rel.IN_ENVIRONMENT}]->(env)
"""
MERGE_PATTERNS = f"""
UNWIND $rows AS row
MERGE (p:{Label.PATTERN} {{pattern_id: row.pattern_id}})
ON CREATE SET p.deployment_strategy = row.deployment_strategy, p.pattern_name = row.pattern_name,
    p.configuration_template = row.configuration_template, p.success_count = 0,
    p.failure_count = 0, p.execution_count = 0, p.first_seen = datetime(row.first_seen),
    p.last_used = datetime(row.first_seen)
WITH p, row
UNWIND row.settings AS setting
MERGE (s:{Label.CONFIG_SETTING} {{setting_id: setting.id}})
ON CREATE SET s.key = setting.key, s.value = setting.value
MERGE (p)-[:{Rel.USES_SETTING}]->(s)
"""
# An Execution node holds every column of domain.execution_schema but the metrics, which
# are a Metric node of their own (MEASURES_DEPLOYMENT it).
NODE_PROPERTIES = tuple(c.name for c in COLUMNS if c.source is not Source.METRICS)
# A CREATE_EXECUTIONS row is a list, its values in this order (no key strings to build, encode
# and decode per row): the execution's properties stored as they are, then its times as ISO
# strings (the driver's encoder spends tens of µs per datetime; the server parses them), then
# whether it founded its pattern and its metrics. recorded_at/recorded_by (Source.STAMPED)
# are the batch's $now/$actor. store.neo4j.store._execution_row builds them.
_IN_ROW = [c for c in COLUMNS if c.source not in (Source.METRICS, Source.STAMPED)]
EXECUTION_PROPERTIES = tuple(c.name for c in _IN_ROW if c.kind is not Kind.TIME)
TIME_PROPERTIES = tuple(c.name for c in _IN_ROW if c.kind is Kind.TIME)
EXECUTION_ROW = (*EXECUTION_PROPERTIES, *TIME_PROPERTIES, "founder", "metrics")
_R = {name: f"row[{i}]" for i, name in enumerate(EXECUTION_ROW)}
# Values shared by the batch travel once, as $now/$actor. Recording an execution stamps
# recorded_at/recorded_by on it: that stamp is its audit entry (AUDIT_LOG reads it), as in
# the DuckDB store. Issues and rollback scenarios are upserted before this statement, so their
# links are made here, on the node just created, instead of by a second UNWIND that would
# look every execution up again.
CREATE_EXECUTIONS = f"""
UNWIND $rows AS row
CREATE (e:{Label.EXECUTION} {{{", ".join(f"{n}: {_R[n]}" for n in EXECUTION_PROPERTIES)},
    {", ".join(f"{n}: datetime({_R[n]})" for n in TIME_PROPERTIES)},
    recorded_at: $now, recorded_by: $actor}})
WITH e, row
MATCH (p:{Label.PATTERN} {{pattern_id: {_R["pattern_id"]}}})
MATCH (env:{Label.ENVIRONMENT} {{name: {_R["target_environment"]}}})
MATCH (gw:{Label.GATEWAY} {{host: {_R["gateway_host"]}}})
CREATE (e)-[:{Rel.FOLLOWS_DEPLOYMENT_PATTERN}]->(p),
       (e)-[:{Rel.DEPLOYED_TO}]->(env),
       (e)-[:{Rel.RAN_ON}]->(gw)
FOREACH (_ IN CASE WHEN {_R["founder"]} THEN [1] ELSE [] END |
    CREATE (p)-[:{Rel.LEARNS_FROM_EXECUTION}]->(e))
FOREACH (metrics IN CASE WHEN {_R["metrics"]} IS NULL THEN [] ELSE [{_R["metrics"]}] END |
    CREATE (:{Label.METRIC} {{metric_id: e.execution_id,
        metric_types: metrics[0], metric_values: metrics[1],
        recorded_at: coalesce(e.completed_at, e.started_at)}})
        -[:{Rel.MEASURES_DEPLOYMENT}]->(e))
WITH e, row
CALL (e, row) {{
    UNWIND {_R["resources_deployed"]} AS name
    MATCH (rt:{Label.RESOURCE_TYPE} {{name: name}})
    CREATE (e)-[:{Rel.DEPLOYS_RESOURCE}]->(rt)
}}
CALL (e, row) {{
    MATCH (src:{Label.ENVIRONMENT} {{name: {_R["source_environment"]}}})
    CREATE (e)-[:{Rel.PROMOTED_FROM}]->(src)
}}
CALL (e, row) {{
    UNWIND {_R["issue_ids"]} AS issue_id
    MATCH (i:{Label.ISSUE} {{issue_id: issue_id}})
    CREATE (e)-[:{Rel.CAUSED_BY_ISSUE}]->(i)
}}
CALL (e, row) {{
    MATCH (s:{Label.ROLLBACK_SCENARIO} {{scenario_id: {_R["rollback_scenario_id"]}}})
    CREATE (e)-[:{Rel.TRIGGERS_ROLLBACK}]->(s), (s)-[:{Rel.LEARNS_FROM_EXECUTION}]->(e)
}}
"""
# Count deltas carry their time span as ISO strings too (first, last), parsed once per row.
UPSERT_ISSUES = f"""
UNWIND $rows AS row
WITH row, datetime(row.first) AS first, datetime(row.last) AS last
MERGE (i:{Label.ISSUE} {{issue_id: row.issue_id}})
ON CREATE SET i.normalized = row.normalized, i.example = row.example, i.occurrences = 0,
    i.first_seen = first, i.last_seen = last
SET i.occurrences = i.occurrences + row.total,
    i.first_seen = CASE WHEN first < i.first_seen THEN first ELSE i.first_seen END,
    i.last_seen = CASE WHEN last > i.last_seen THEN last ELSE i.last_seen END
"""
# A SET whose right-hand side reads the same property takes the write lock before reading,
# so concurrent writers add up exactly (Neo4j "Lost updates" documentation).
ADD_PATTERN_COUNTS = f"""
UNWIND $rows AS row
WITH row, datetime(row.first) AS first, datetime(row.last) AS last
MATCH (p:{Label.PATTERN} {{pattern_id: row.id}})
SET p.success_count = p.success_count + row.success,
    p.failure_count = p.failure_count + row.failure,
    p.execution_count = p.execution_count + row.total,
    p.first_seen = CASE WHEN first < p.first_seen THEN first ELSE p.first_seen END,
    p.last_used = CASE WHEN last > p.last_used THEN last ELSE p.last_used END
"""
UPSERT_SCENARIOS = f"""
UNWIND $rows AS row
WITH row, datetime(row.first) AS first, datetime(row.last) AS last
MERGE (s:{Label.ROLLBACK_SCENARIO} {{scenario_id: row.scenario_id}})
ON CREATE SET s.environment = row.environment, s.deployment_strategy = row.deployment_strategy,
    s.trigger_issue = row.trigger_issue, s.resource_types = row.resource_types,
    s.success_count = 0, s.failure_count = 0, s.first_seen = first, s.last_seen = last
SET s.success_count = s.success_count + row.success,
    s.failure_count = s.failure_count + row.failure,
    s.first_seen = CASE WHEN first < s.first_seen THEN first ELSE s.first_seen END,
    s.last_seen = CASE WHEN last > s.last_seen THEN last ELSE s.last_seen END
"""
# Writes other than executions (adaptations) get an AuditEntry node of their own.
CREATE_AUDIT = f"""
CREATE (:{Label.AUDIT} {{logged_at: $logged_at, actor: $actor, action: $action,
    entity_id: $entity_id, detail: $detail}})
"""
# Deleting an execution (delete, amend), in one transaction: read what it counted for, delete
# it and its metric, subtract its outcome from the counts it added to (deltas, as writes add
# them), recompute their time spans from the executions left, and delete a pattern, issue or
# scenario no execution refers to any more. A pattern whose founder went learns from its
# earliest remaining execution.
EXECUTION_TO_DELETE = f"""
MATCH (e:{Label.EXECUTION} {{execution_id: $id}})
RETURN e.pattern_id AS pattern_id, e.outcome AS outcome, e.issue_ids AS issue_ids,
       e.rollback_scenario_id AS scenario_id, e.rollback_successful AS rollback_successful,
       e.recorded_at AS recorded_at, e.recorded_by AS recorded_by
"""
DELETE_EXECUTION = f"""
MATCH (e:{Label.EXECUTION} {{execution_id: $id}})
CALL (e) {{
    MATCH (m:{Label.METRIC})-[:{Rel.MEASURES_DEPLOYMENT}]->(e)
    DETACH DELETE m
}}
DETACH DELETE e
"""
SUBTRACT_PATTERN_COUNTS = f"""
MATCH (p:{Label.PATTERN} {{pattern_id: $pattern_id}})
SET p.success_count = p.success_count - $success,
    p.failure_count = p.failure_count - $failure,
    p.execution_count = p.execution_count - 1
WITH p
OPTIONAL MATCH (e:{Label.EXECUTION})-[:{Rel.FOLLOWS_DEPLOYMENT_PATTERN}]->(p)
WITH p, min(e.started_at) AS first, max(e.started_at) AS last
SET p.first_seen = coalesce(first, p.first_seen), p.last_used = coalesce(last, p.last_used)
"""
RELINK_PATTERN_FOUNDER = f"""
MATCH (p:{Label.PATTERN} {{pattern_id: $pattern_id}})
WHERE NOT EXISTS {{ (p)-[:{Rel.LEARNS_FROM_EXECUTION}]->() }}
MATCH (e:{Label.EXECUTION})-[:{Rel.FOLLOWS_DEPLOYMENT_PATTERN}]->(p)
WITH p, e ORDER BY e.started_at, e.execution_id LIMIT 1
CREATE (p)-[:{Rel.LEARNS_FROM_EXECUTION}]->(e)
"""
DELETE_UNUSED_PATTERN = f"""
MATCH (p:{Label.PATTERN} {{pattern_id: $pattern_id}})
WHERE NOT EXISTS {{ (:{Label.EXECUTION})-[:{Rel.FOLLOWS_DEPLOYMENT_PATTERN}]->(p) }}
OPTIONAL MATCH (p)-[:{Rel.USES_SETTING}]->(s:{Label.CONFIG_SETTING})
WITH p, collect(s) AS settings
DETACH DELETE p
WITH settings
UNWIND settings AS s
WITH s WHERE NOT EXISTS {{ (s)<-[:{Rel.USES_SETTING}]-() }}
DELETE s
"""
SUBTRACT_ISSUE_COUNTS = f"""
UNWIND $issue_ids AS issue_id
MATCH (i:{Label.ISSUE} {{issue_id: issue_id}})
SET i.occurrences = i.occurrences - 1
WITH DISTINCT i
OPTIONAL MATCH (e:{Label.EXECUTION})-[:{Rel.CAUSED_BY_ISSUE}]->(i)
WITH i, min(e.started_at) AS first, max(e.started_at) AS last, count(e) AS remaining
SET i.first_seen = coalesce(first, i.first_seen), i.last_seen = coalesce(last, i.last_seen)
WITH i, remaining WHERE remaining = 0
DETACH DELETE i
"""
SUBTRACT_SCENARIO_COUNTS = f"""
MATCH (s:{Label.ROLLBACK_SCENARIO} {{scenario_id: $scenario_id}})
SET s.success_count = s.success_count - $success, s.failure_count = s.failure_count - $failure
WITH s
OPTIONAL MATCH (e:{Label.EXECUTION})-[:{Rel.TRIGGERS_ROLLBACK}]->(s)
WITH s, min(e.started_at) AS first, max(e.started_at) AS last, count(e) AS remaining
SET s.first_seen = coalesce(first, s.first_seen), s.last_seen = coalesce(last, s.last_seen)
WITH s, remaining WHERE remaining = 0
DETACH DELETE s
"""
ADAPTATION_EXISTS = (
    f"MATCH (a:{Label.ADAPTATION} {{adaptation_id: $id}}) RETURN count(a) > 0 AS exists"
)
CREATE_ADAPTATION = f"""
CREATE (a:{Label.ADAPTATION})
SET a = $props
MERGE (env:{Label.ENVIRONMENT} {{name: $props.target_environment}})
CREATE (a)-[:{Rel.ADAPTS_TO_ENVIRONMENT}]->(env)
WITH a
OPTIONAL MATCH (p:{Label.PATTERN} {{pattern_id: $props.pattern_id}})
FOREACH (_ IN CASE WHEN p IS NULL THEN [] ELSE [1] END |
    CREATE (a)-[:{Rel.ADAPTS_TO_ENVIRONMENT}]->(p))
"""

GET_EXECUTION = f"MATCH (e:{Label.EXECUTION} {{execution_id: $id}}) RETURN e {{.*}} AS e"
ALL_EXECUTIONS = f"""
MATCH (e:{Label.EXECUTION})
RETURN e {{.*}} AS e
ORDER BY e.started_at, e.execution_id
"""


def _micros(value: str) -> str:
    """A datetime expression as integer microseconds since the epoch (null stays null)."""
    return f"{value}.epochSeconds * 1000000 + {value}.microsecond"


# Bulk reads come back in chunks of $chunk rows, one list per column: a few large records
# instead of one per row, and times as integer microseconds (converted with numpy, not one by
# one). Collecting node references first keeps the server's memory to one pointer a row.
FRAME_COLUMNS = {
    name: _micros(f"e.{name}") if BY_NAME[name].kind is Kind.TIME else f"e.{name}"
    for name in EXECUTION_FRAME_DTYPES
}
FRAME = f"""
MATCH (e:{Label.EXECUTION})
WHERE ($since IS NULL OR e.started_at >= $since) AND ($until IS NULL OR e.started_at < $until)
WITH e ORDER BY e.started_at, e.execution_id
WITH collect(e) AS executions
UNWIND range(0, size(executions) - 1, $chunk) AS i
WITH executions[i..i + $chunk] AS part
RETURN {", ".join(f"[e IN part | {expr}] AS {name}" for name, expr in FRAME_COLUMNS.items())}
"""
FRAME_OF = f"""
MATCH (e:{Label.EXECUTION}) WHERE e.execution_id IN $ids
WITH e ORDER BY e.started_at, e.execution_id
WITH collect(e) AS executions
UNWIND range(0, size(executions) - 1, $chunk) AS i
WITH executions[i..i + $chunk] AS part
RETURN {", ".join(f"[e IN part | {expr}] AS {name}" for name, expr in FRAME_COLUMNS.items())}
"""
# One row per measured execution, its values as parallel lists, in chunks as above; the store
# explodes, filters and sorts them (vectorized), so the server sorts nothing.
METRIC_COLUMNS = {  # p is [metric, execution]
    "execution_id": "p[1].execution_id",
    "metric_types": "p[0].metric_types",
    "metric_values": "p[0].metric_values",
    "recorded_at": _micros("p[0].recorded_at"),
    "target_environment": "p[1].target_environment",
    "deployment_strategy": "p[1].deployment_strategy",
    "pattern_id": "p[1].pattern_id",
}
METRICS = f"""
MATCH (m:{Label.METRIC})-[:{Rel.MEASURES_DEPLOYMENT}]->(e:{Label.EXECUTION})
WHERE ($since IS NULL OR e.started_at >= $since) AND ($until IS NULL OR e.started_at < $until)
  AND ($types IS NULL OR any(t IN m.metric_types WHERE t IN $types))
WITH collect([m, e]) AS measured
UNWIND range(0, size(measured) - 1, $chunk) AS i
WITH measured[i..i + $chunk] AS part
RETURN {", ".join(f"[p IN part | {expr}] AS {name}" for name, expr in METRIC_COLUMNS.items())}
"""
METRIC_TYPES = f"""
MATCH (m:{Label.METRIC})
UNWIND m.metric_types AS metric_type
RETURN DISTINCT metric_type ORDER BY metric_type
"""
# How many executions link to an issue is its degree: no relationship is read.
ISSUES = f"""
MATCH (i:{Label.ISSUE})
RETURN i.issue_id AS issue_id, i.normalized AS normalized, i.example AS example,
       COUNT {{ (i)<-[:{Rel.CAUSED_BY_ISSUE}]-() }} AS executions
ORDER BY issue_id
"""
PATTERNS = f"""
MATCH (p:{Label.PATTERN})
RETURN p.pattern_id AS pattern_id, p.pattern_name AS pattern_name,
       p.deployment_strategy AS deployment_strategy,
       p.configuration_template AS configuration_template, p.success_count AS success_count,
       p.failure_count AS failure_count, p.first_seen AS first_seen, p.last_used AS last_used
ORDER BY p.pattern_id
"""
SCENARIOS = f"""
MATCH (s:{Label.ROLLBACK_SCENARIO})
RETURN s {{.scenario_id, .environment, .deployment_strategy, .trigger_issue, .resource_types,
          .success_count, .failure_count, .first_seen, .last_seen}} AS s
ORDER BY s.scenario_id
"""
ADAPTATIONS = f"""
MATCH (a:{Label.ADAPTATION})
RETURN a {{.*}} AS a
ORDER BY a.adaptation_id
"""
# An execution's audit entry is its recorded_at/recorded_by stamp (see CREATE_EXECUTIONS).
# AuditEntry nodes with action record_execution were written by earlier versions for the
# same executions: they are skipped, not counted twice.
AUDIT_LOG = f"""
CALL () {{
    MATCH (e:{Label.EXECUTION})
    RETURN e.recorded_at AS logged_at, e.recorded_by AS actor, 'record_execution' AS action,
           e.execution_id AS entity_id, 'pattern ' + e.pattern_id AS detail
    ORDER BY logged_at DESC
    LIMIT $limit
    UNION ALL
    MATCH (a:{Label.AUDIT}) WHERE a.action <> 'record_execution'
    RETURN a.logged_at AS logged_at, a.actor AS actor, a.action AS action,
           a.entity_id AS entity_id, a.detail AS detail
    ORDER BY logged_at DESC
    LIMIT $limit
}}
RETURN logged_at, actor, action, entity_id, detail
ORDER BY logged_at DESC
LIMIT $limit
"""
STATS = f"""
CALL () {{ MATCH (e:{Label.EXECUTION}) RETURN count(e) AS executions }}
CALL () {{ MATCH (p:{Label.PATTERN})
    RETURN count(p) AS patterns, coalesce(sum(p.success_count), 0) AS successes,
           coalesce(sum(p.failure_count), 0) AS failures }}
CALL () {{ MATCH (i:{Label.ISSUE}) RETURN count(i) AS issues }}
CALL () {{ MATCH (s:{Label.ROLLBACK_SCENARIO}) RETURN count(s) AS rollback_scenarios }}
CALL () {{ MATCH (m:{Label.METRIC})
    RETURN coalesce(sum(size(m.metric_values)), 0) AS metrics }}
CALL () {{ MATCH (a:{Label.ADAPTATION}) RETURN count(a) AS adaptations }}
CALL () {{ MATCH (a:{Label.AUDIT}) WHERE a.action <> 'record_execution'
    RETURN count(a) AS other_audit_entries }}
RETURN executions, patterns, successes, failures, issues, rollback_scenarios, metrics,
       adaptations, executions + other_audit_entries AS audit_entries
"""
# Relationships first, in batches: DETACH DELETE of a hub node (a resource type with 200k
# edges) in one transaction exhausts the heap.
WIPE_SUMMARY = f"""
CALL () {{ MATCH (e:{Label.EXECUTION})
    RETURN count(e) AS executions, min(e.recorded_at) AS first, max(e.recorded_at) AS last,
           collect(DISTINCT e.recorded_by) AS actors }}
CALL () {{ MATCH (p:{Label.PATTERN}) RETURN count(p) AS patterns }}
CALL () {{ MATCH (a:{Label.ADAPTATION}) RETURN count(a) AS adaptations }}
RETURN executions, first, last, actors, patterns, adaptations
"""
WIPE_RELATIONSHIPS = """
MATCH ()-[r]->()
CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS"""
# The marker and the audit trail survive a wipe (the store appends what it erased).
WIPE = (
    "MATCH (n) WHERE NOT n:"
    + Label.META
    + " AND NOT n:"
    + Label.AUDIT
    + """
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"""
)

# -- Graph Data Science (store/gds.py) --------------------------------------------------------
# GDS refuses to project a label or type that has never existed, so projections ask first.
LABELS_IN_USE = "CALL db.labels() YIELD label RETURN collect(label) AS labels"
RELATIONSHIP_TYPES_IN_USE = (
    "CALL db.relationshipTypes() YIELD relationshipType RETURN collect(relationshipType) AS types"
)
# GDS node ids (legacy internal ids) to the business key of each structural label.
NODE_KEYS = f"""
UNWIND $node_ids AS node_id
WITH node_id, gds.util.asNode(node_id) AS n
RETURN node_id, CASE
    WHEN n:{Label.PATTERN} THEN n.pattern_id
    WHEN n:{Label.EXECUTION} THEN n.execution_id
    WHEN n:{Label.GATEWAY} THEN n.host
    WHEN n:{Label.CONFIG_SETTING} THEN n.setting_id
    ELSE n.name END AS key
"""
# Run outside an explicit transaction (session.run): CALL … IN TRANSACTIONS needs auto-commit.
DELETE_PATTERN_SIMILARITY = f"""
MATCH (:{Label.PATTERN})-[r:{Rel.SIMILAR_TO_PATTERN}]->(:{Label.PATTERN})
CALL (r) {{ DELETE r }} IN TRANSACTIONS OF 10000 ROWS
"""
SIMILAR_PATTERNS = f"""
MATCH (p:{Label.PATTERN} {{pattern_id: $pattern_id}})-[r:{Rel.SIMILAR_TO_PATTERN}]->
      (q:{Label.PATTERN})
RETURN q.pattern_id AS pattern_id, q.pattern_name AS pattern_name,
       q.deployment_strategy AS deployment_strategy, r.score AS score
ORDER BY score DESC, pattern_id
LIMIT $limit
"""
PATTERN_SIMILARITY_EDGES = f"""
MATCH (p:{Label.PATTERN})-[r:{Rel.SIMILAR_TO_PATTERN}]->(q:{Label.PATTERN})
RETURN p.pattern_id AS source, q.pattern_id AS target, r.score AS score
ORDER BY source, target
"""
JVM_HEAP = """
CALL dbms.queryJmx('java.lang:type=Memory') YIELD attributes
WITH attributes.HeapMemoryUsage.value.properties AS heap
RETURN heap.used AS used, heap.committed AS committed, heap.max AS max
"""
