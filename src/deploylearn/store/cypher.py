"""All Cypher of the Neo4j store, in one module. Parameters only: no value is ever formatted
into a query, and labels and relationship types are the fixed names below.

Graph: executions FOLLOWS_DEPLOYMENT_PATTERN a pattern, are DEPLOYED_TO an Environment (and
PROMOTED_FROM one), RAN_ON a Gateway (IN_ENVIRONMENT), DEPLOY_RESOURCE ResourceTypes and are
CAUSED_BY_ISSUE Issues; patterns USE_SETTING ConfigSettings (key=value) and LEARN_FROM their
founding execution; a rollback TRIGGERS_ROLLBACK a RollbackScenario that LEARNS_FROM_EXECUTION
it; a DeploymentMetric MEASURES_DEPLOYMENT its execution; an EnvironmentAdaptation
ADAPTS_TO_ENVIRONMENT its target (and pattern). Outcomes live only in properties, never in
the structure that embeddings see.
"""

from __future__ import annotations

from enum import StrEnum


class Label(StrEnum):
    PATTERN = "DeploymentPattern"
    EXECUTION = "DeploymentExecution"
    ADAPTATION = "EnvironmentAdaptation"
    ROLLBACK_SCENARIO = "RollbackScenario"
    METRIC = "DeploymentMetric"
    ENVIRONMENT = "Environment"
    GATEWAY = "Gateway"
    RESOURCE_TYPE = "ResourceType"
    ISSUE = "Issue"
    CONFIG_SETTING = "ConfigSetting"
    AUDIT = "AuditEntry"
    META = "DeploylearnMeta"


class Rel(StrEnum):
    FOLLOWS_DEPLOYMENT_PATTERN = "FOLLOWS_DEPLOYMENT_PATTERN"
    ADAPTS_TO_ENVIRONMENT = "ADAPTS_TO_ENVIRONMENT"
    TRIGGERS_ROLLBACK = "TRIGGERS_ROLLBACK"
    MEASURES_DEPLOYMENT = "MEASURES_DEPLOYMENT"
    LEARNS_FROM_EXECUTION = "LEARNS_FROM_EXECUTION"
    SIMILAR_TO_PATTERN = "SIMILAR_TO_PATTERN"
    CAUSED_BY_ISSUE = "CAUSED_BY_ISSUE"
    RESOLVED_BY_ADAPTATION = "RESOLVED_BY_ADAPTATION"
    DEPLOYED_TO = "DEPLOYED_TO"
    PROMOTED_FROM = "PROMOTED_FROM"
    RAN_ON = "RAN_ON"
    IN_ENVIRONMENT = "IN_ENVIRONMENT"
    DEPLOYS_RESOURCE = "DEPLOYS_RESOURCE"
    USES_SETTING = "USES_SETTING"


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
SET_SCHEMA_VERSION = f"MERGE (m:{Label.META} {{key: 'schema_version'}}) SET m.value = $version"
GET_SCHEMA_VERSION = f"MATCH (m:{Label.META} {{key: 'schema_version'}}) RETURN m.value AS value"

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
    p.failure_count = 0, p.execution_count = 0, p.first_seen = row.first_seen,
    p.last_used = row.first_seen
WITH p, row
UNWIND row.settings AS setting
MERGE (s:{Label.CONFIG_SETTING} {{setting_id: setting.id}})
ON CREATE SET s.key = setting.key, s.value = setting.value
MERGE (p)-[:{Rel.USES_SETTING}]->(s)
"""
CREATE_EXECUTIONS = f"""
UNWIND $rows AS row
CREATE (e:{Label.EXECUTION})
SET e = row.props
WITH e, row
MATCH (p:{Label.PATTERN} {{pattern_id: row.props.pattern_id}})
MATCH (env:{Label.ENVIRONMENT} {{name: row.props.target_environment}})
MATCH (gw:{Label.GATEWAY} {{host: row.props.gateway_host}})
CREATE (e)-[:{Rel.FOLLOWS_DEPLOYMENT_PATTERN}]->(p),
       (e)-[:{Rel.DEPLOYED_TO}]->(env),
       (e)-[:{Rel.RAN_ON}]->(gw)
FOREACH (_ IN CASE WHEN row.founder THEN [1] ELSE [] END |
    CREATE (p)-[:{Rel.LEARNS_FROM_EXECUTION}]->(e))
WITH e, row
CALL (e, row) {{
    UNWIND row.props.resources_deployed AS name
    MATCH (rt:{Label.RESOURCE_TYPE} {{name: name}})
    CREATE (e)-[:{Rel.DEPLOYS_RESOURCE}]->(rt)
}}
CALL (e, row) {{
    UNWIND CASE WHEN row.props.source_environment IS NULL THEN []
           ELSE [row.props.source_environment] END AS name
    MATCH (src:{Label.ENVIRONMENT} {{name: name}})
    CREATE (e)-[:{Rel.PROMOTED_FROM}]->(src)
}}
FOREACH (_ IN CASE WHEN size(row.metric_types) > 0 THEN [1] ELSE [] END |
    CREATE (:{Label.METRIC} {{metric_id: row.props.execution_id,
        metric_types: row.metric_types, metric_values: row.metric_values,
        recorded_at: coalesce(row.props.completed_at, row.props.started_at)}})
        -[:{Rel.MEASURES_DEPLOYMENT}]->(e))
"""
UPSERT_ISSUES = f"""
UNWIND $rows AS row
MERGE (i:{Label.ISSUE} {{issue_id: row.issue_id}})
ON CREATE SET i.normalized = row.normalized, i.example = row.example, i.occurrences = 0,
    i.first_seen = row.first, i.last_seen = row.last
SET i.occurrences = i.occurrences + row.total,
    i.first_seen = CASE WHEN row.first < i.first_seen THEN row.first ELSE i.first_seen END,
    i.last_seen = CASE WHEN row.last > i.last_seen THEN row.last ELSE i.last_seen END
"""
LINK_ISSUES = f"""
UNWIND $rows AS row
MATCH (e:{Label.EXECUTION} {{execution_id: row.execution_id}})
MATCH (i:{Label.ISSUE} {{issue_id: row.issue_id}})
CREATE (e)-[:{Rel.CAUSED_BY_ISSUE}]->(i)
"""
# A SET whose right-hand side reads the same property takes the write lock before reading,
# so concurrent writers add up exactly (Neo4j "Lost updates" documentation).
ADD_PATTERN_COUNTS = f"""
UNWIND $rows AS row
MATCH (p:{Label.PATTERN} {{pattern_id: row.id}})
SET p.success_count = p.success_count + row.success,
    p.failure_count = p.failure_count + row.failure,
    p.execution_count = p.execution_count + row.total,
    p.first_seen = CASE WHEN row.first < p.first_seen THEN row.first ELSE p.first_seen END,
    p.last_used = CASE WHEN row.last > p.last_used THEN row.last ELSE p.last_used END
"""
UPSERT_SCENARIOS = f"""
UNWIND $rows AS row
MERGE (s:{Label.ROLLBACK_SCENARIO} {{scenario_id: row.scenario_id}})
ON CREATE SET s.environment = row.environment, s.deployment_strategy = row.deployment_strategy,
    s.trigger_issue = row.trigger_issue, s.resource_types = row.resource_types,
    s.success_count = 0, s.failure_count = 0, s.first_seen = row.first, s.last_seen = row.last
SET s.success_count = s.success_count + row.success,
    s.failure_count = s.failure_count + row.failure,
    s.first_seen = CASE WHEN row.first < s.first_seen THEN row.first ELSE s.first_seen END,
    s.last_seen = CASE WHEN row.last > s.last_seen THEN row.last ELSE s.last_seen END
"""
LINK_SCENARIOS = f"""
UNWIND $rows AS row
MATCH (e:{Label.EXECUTION} {{execution_id: row.execution_id}})
MATCH (s:{Label.ROLLBACK_SCENARIO} {{scenario_id: row.scenario_id}})
CREATE (e)-[:{Rel.TRIGGERS_ROLLBACK}]->(s), (s)-[:{Rel.LEARNS_FROM_EXECUTION}]->(e)
"""
CREATE_AUDIT = f"""
UNWIND $rows AS row
CREATE (:{Label.AUDIT} {{logged_at: row.logged_at, actor: row.actor, action: row.action,
    entity_id: row.entity_id, detail: row.detail}})
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
FRAME = f"""
MATCH (e:{Label.EXECUTION})
WHERE ($since IS NULL OR e.started_at >= $since) AND ($until IS NULL OR e.started_at < $until)
RETURN e.execution_id AS execution_id, e.pattern_id AS pattern_id,
       e.deployment_type AS deployment_type, e.target_environment AS target_environment,
       e.source_environment AS source_environment, e.gateway_host AS gateway_host,
       e.deployment_strategy AS deployment_strategy, e.resources_deployed AS resources_deployed,
       e.status AS status, e.outcome AS outcome, e.started_at AS started_at,
       e.completed_at AS completed_at, e.duration_seconds AS duration_seconds,
       e.rollback_triggered AS rollback_triggered, e.rollback_successful AS rollback_successful,
       e.automation_triggered AS automation_triggered, e.user_id AS user_id,
       e.issue_ids AS issue_ids
ORDER BY e.started_at, e.execution_id
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
AUDIT_LOG = f"""
MATCH (a:{Label.AUDIT})
RETURN a.logged_at AS logged_at, a.actor AS actor, a.action AS action,
       a.entity_id AS entity_id, a.detail AS detail
ORDER BY a.logged_at DESC
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
CALL () {{ MATCH (a:{Label.AUDIT}) RETURN count(a) AS audit_entries }}
RETURN executions, patterns, successes, failures, issues, rollback_scenarios, metrics,
       adaptations, audit_entries
"""
# Relationships first, in batches: DETACH DELETE of a hub node (a resource type with 200k
# edges) in one transaction exhausts the heap.
WIPE_RELATIONSHIPS = """
MATCH ()-[r]->()
CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS"""
WIPE = (
    "MATCH (n) WHERE NOT n:"
    + Label.META
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
