"""The graph's vocabulary: node labels and relationship types. The Neo4j schema is made of
them, and the embeddings (which walk these relationships, in GDS or in numpy) and serving name
nodes by them, so they live below all three."""

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
