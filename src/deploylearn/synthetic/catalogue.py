"""The fixed vocabulary of the synthetic world: environments, gateways, templates, teams.

Everything here is plain data so the world, its oracle and its documentation read from one
place. Values that a learner must *discover* (gateway flakiness, drift dates) are not here;
they are drawn per seed in ``world.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENVIRONMENTS: tuple[str, ...] = ("development", "test", "qa", "staging", "production")
ENV_INDEX: dict[str, int] = {e: i for i, e in enumerate(ENVIRONMENTS)}
DEV, TEST, QA, STAGING, PROD = range(len(ENVIRONMENTS))
ENV_TITLE: tuple[str, ...] = ("Development", "Test", "QA", "Staging", "Production")

# Promotion chain: the environment a change normally comes from, and every accepted source.
PREDECESSOR: tuple[str | None, ...] = (None, "development", "test", "test", "staging")
VALID_SOURCES: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset({"development"}),
    frozenset({"test"}),
    frozenset({"test", "qa"}),
    frozenset({"staging"}),
)

GATEWAYS: dict[str, list[str]] = {
    "development": ["dev-gateway-01.plant-a.local", "dev-gateway-02.plant-b.local"],
    "test": ["test-gateway-01.plant-a.local", "test-gateway-02.plant-b.local"],
    "qa": ["qa-gateway-01.plant-a.local"],
    "staging": [
        "stg-gateway-01.plant-a.local",
        "stg-gateway-02.plant-b.local",
        "stg-gateway-03.plant-c.local",
    ],
    "production": [
        "prod-gateway-01.plant-a.local",
        "prod-gateway-02.plant-a.local",
        "prod-gateway-03.plant-b.local",
        "prod-gateway-04.plant-b.local",
        "prod-gateway-05.plant-c.local",
        "prod-gateway-06.plant-c.local",
    ],
}
ALL_GATEWAYS: tuple[str, ...] = tuple(h for env in ENVIRONMENTS for h in GATEWAYS[env])
GATEWAY_INDEX: dict[str, int] = {h: i for i, h in enumerate(ALL_GATEWAYS)}
GATEWAY_ENV: tuple[int, ...] = tuple(ENV_INDEX[e] for e in ENVIRONMENTS for _ in GATEWAYS[e])

STRATEGIES: tuple[str, ...] = ("blue_green", "rolling", "canary", "direct", "staged")
STRATEGY_INDEX: dict[str, int] = {s: i for i, s in enumerate(STRATEGIES)}
BLUE_GREEN, ROLLING, CANARY, DIRECT, STAGED = range(len(STRATEGIES))

DEPLOYMENT_TYPES: tuple[str, ...] = (
    "install", "update", "upgrade", "config_change", "hotfix", "migration",
)
DTYPE_INDEX: dict[str, int] = {t: i for i, t in enumerate(DEPLOYMENT_TYPES)}
INSTALL, UPDATE, UPGRADE, CONFIG_CHANGE, HOTFIX, MIGRATION = range(len(DEPLOYMENT_TYPES))
DTYPE_TITLE: tuple[str, ...] = (
    "Install", "Update", "Upgrade", "Config Change", "Hotfix", "Migration",
)

RESOURCE_TYPES: tuple[str, ...] = (
    "project", "tag_provider", "database", "perspective", "vision", "alarm_pipeline",
    "gateway_script", "opc_ua_connection", "historian", "report", "named_query",
)
RESOURCE_INDEX: dict[str, int] = {r: i for i, r in enumerate(RESOURCE_TYPES)}
RESOURCE_BIT: dict[str, int] = {r: 1 << i for i, r in enumerate(RESOURCE_TYPES)}

# Configuration knobs the oracle reads, in matrix-column order, with the value an ABSENT knob
# means. Dropping a knob that sits at its default therefore changes nothing.
KNOBS: tuple[str, ...] = (
    "backup_enabled", "validation_timeout", "rollback_threshold", "health_check_interval",
    "switch_traffic_delay", "canary_percent", "batch_size", "ssl_validation", "timeout",
    "audit_enabled", "security_policy",
)
KNOB_INDEX: dict[str, int] = {k: i for i, k in enumerate(KNOBS)}
KNOB_DEFAULTS: dict[str, Any] = {
    "backup_enabled": False,
    "validation_timeout": 120,
    "rollback_threshold": 0.9,
    "health_check_interval": 30,
    "switch_traffic_delay": 0,
    "canary_percent": 25,
    "batch_size": 1,
    "ssl_validation": False,
    "timeout": 30,
    "audit_enabled": False,
    "security_policy": "standard",
}
BOOL_KNOBS = frozenset({"backup_enabled", "ssl_validation", "audit_enabled"})
# Numeric knobs that people edit by hand by a few percent (batch_size is too coarse for that).
EDITABLE_KNOBS = frozenset(
    {"validation_timeout", "rollback_threshold", "health_check_interval",
     "switch_traffic_delay", "canary_percent", "timeout"}
)


@dataclass(frozen=True)
class Template:
    """A team playbook: a strategy plus knob values, the unit a learner should call a pattern."""

    template_id: str
    name: str
    strategy: str
    knobs: tuple[tuple[str, Any], ...]

    @property
    def configuration(self) -> dict[str, Any]:
        """A fresh copy of the knob values, safe to mutate."""
        return dict(self.knobs)


def _t(tid: str, name: str, strategy: str, **knobs: Any) -> Template:
    return Template(tid, name, strategy, tuple(knobs.items()))


_S, _P = "standard", "strict"
TEMPLATES: tuple[Template, ...] = (
    # blue-green
    _t("tpl-bg-standard", "Blue-green standard", "blue_green", backup_enabled=True,
       validation_timeout=300, rollback_threshold=0.95, health_check_interval=30,
       switch_traffic_delay=60, ssl_validation=True, timeout=30, audit_enabled=False,
       security_policy=_S),
    _t("tpl-bg-hardened", "Blue-green production hardened", "blue_green", backup_enabled=True,
       validation_timeout=600, rollback_threshold=0.95, health_check_interval=15,
       switch_traffic_delay=90, ssl_validation=True, timeout=60, audit_enabled=True,
       security_policy=_P),
    _t("tpl-bg-fast-switch", "Blue-green fast switch", "blue_green", backup_enabled=True,
       validation_timeout=180, rollback_threshold=0.9, health_check_interval=30,
       switch_traffic_delay=10, ssl_validation=True, timeout=60, audit_enabled=True,
       security_policy=_P),
    _t("tpl-bg-staging-mirror", "Blue-green staging mirror", "blue_green", backup_enabled=True,
       validation_timeout=300, rollback_threshold=0.95, health_check_interval=30,
       switch_traffic_delay=60, ssl_validation=False, timeout=30, audit_enabled=False),
    _t("tpl-bg-seed", "Blue-green seed example", "blue_green", backup_enabled=True,
       validation_timeout=300, rollback_threshold=0.95, health_check_interval=30,
       switch_traffic_delay=60),
    _t("tpl-bg-no-backup", "Blue-green without backup", "blue_green", backup_enabled=False,
       validation_timeout=240, rollback_threshold=0.9, health_check_interval=30,
       switch_traffic_delay=45, ssl_validation=True, timeout=60, audit_enabled=False,
       security_policy=_S),
    _t("tpl-bg-audited", "Blue-green audited", "blue_green", backup_enabled=True,
       validation_timeout=420, rollback_threshold=0.95, health_check_interval=30,
       switch_traffic_delay=60, ssl_validation=True, timeout=60, audit_enabled=True,
       security_policy=_S),
    _t("tpl-bg-test", "Blue-green test basic", "blue_green", backup_enabled=False,
       validation_timeout=180, rollback_threshold=0.9, health_check_interval=30,
       switch_traffic_delay=30),
    # canary
    _t("tpl-canary-10-strict", "Canary 10% strict", "canary", backup_enabled=True,
       validation_timeout=450, rollback_threshold=0.97, health_check_interval=15,
       canary_percent=10, ssl_validation=True, timeout=90, audit_enabled=True,
       security_policy=_P),
    _t("tpl-canary-50-quick", "Canary 50% quick", "canary", backup_enabled=True,
       validation_timeout=240, rollback_threshold=0.9, health_check_interval=30,
       canary_percent=50, ssl_validation=True, timeout=60, audit_enabled=True,
       security_policy=_P),
    _t("tpl-canary-25-standard", "Canary 25% standard", "canary", backup_enabled=False,
       validation_timeout=300, rollback_threshold=0.95, health_check_interval=30,
       canary_percent=25, ssl_validation=True, timeout=60, audit_enabled=False,
       security_policy=_S),
    _t("tpl-canary-20-test", "Canary 20% test", "canary", backup_enabled=False,
       validation_timeout=180, rollback_threshold=0.9, health_check_interval=30,
       canary_percent=20, ssl_validation=False, timeout=30),
    _t("tpl-canary-staging", "Canary staging secured", "canary", backup_enabled=True,
       validation_timeout=300, rollback_threshold=0.95, health_check_interval=20,
       canary_percent=15, ssl_validation=True, timeout=60, audit_enabled=True,
       security_policy=_P),
    # rolling
    _t("tpl-rolling-one", "Rolling one gateway at a time", "rolling", backup_enabled=True,
       validation_timeout=300, rollback_threshold=0.95, health_check_interval=20, batch_size=1,
       ssl_validation=True, timeout=60, audit_enabled=True, security_policy=_P),
    _t("tpl-rolling-batch-4", "Rolling batches of 4", "rolling", backup_enabled=False,
       validation_timeout=240, rollback_threshold=0.9, health_check_interval=60, batch_size=4,
       ssl_validation=True, timeout=30, audit_enabled=False, security_policy=_S),
    _t("tpl-rolling-batch-2", "Rolling batches of 2 with backup", "rolling",
       backup_enabled=True, validation_timeout=360, rollback_threshold=0.95,
       health_check_interval=30, batch_size=2, ssl_validation=True, timeout=60,
       audit_enabled=False, security_policy=_S),
    _t("tpl-rolling-dev", "Rolling dev", "rolling", backup_enabled=False,
       validation_timeout=120, rollback_threshold=0.85, health_check_interval=60, batch_size=6),
    _t("tpl-rolling-test", "Rolling test pairs", "rolling", backup_enabled=True,
       validation_timeout=180, rollback_threshold=0.9, health_check_interval=30, batch_size=2,
       ssl_validation=False, timeout=30),
    _t("tpl-rolling-strict-2", "Rolling pairs strict", "rolling", backup_enabled=True,
       validation_timeout=480, rollback_threshold=0.95, health_check_interval=15, batch_size=2,
       ssl_validation=True, timeout=90, audit_enabled=True, security_policy=_P),
    # staged
    _t("tpl-staged-plantwide", "Staged plant-wide", "staged", backup_enabled=True,
       validation_timeout=600, rollback_threshold=0.95, health_check_interval=30,
       ssl_validation=True, timeout=120, audit_enabled=True, security_policy=_P),
    _t("tpl-staged-nightly", "Staged nightly", "staged", backup_enabled=True,
       validation_timeout=300, rollback_threshold=0.9, health_check_interval=60,
       ssl_validation=True, timeout=60, audit_enabled=False, security_policy=_S),
    _t("tpl-staged-test", "Staged test", "staged", backup_enabled=False,
       validation_timeout=240, rollback_threshold=0.9, health_check_interval=30,
       ssl_validation=False, timeout=30),
    _t("tpl-staged-staging", "Staged staging", "staged", backup_enabled=True,
       validation_timeout=420, rollback_threshold=0.95, health_check_interval=30,
       ssl_validation=False, timeout=30, audit_enabled=False, security_policy=_S),
    # direct
    _t("tpl-direct-quick", "Direct quick push", "direct", backup_enabled=False,
       validation_timeout=60, rollback_threshold=0.8, health_check_interval=60),
    _t("tpl-direct-backup", "Direct with backup", "direct", backup_enabled=True,
       validation_timeout=120, rollback_threshold=0.9, health_check_interval=30),
    _t("tpl-direct-hotfix", "Direct hotfix", "direct", backup_enabled=False,
       validation_timeout=90, rollback_threshold=0.8, health_check_interval=60,
       ssl_validation=False, timeout=30),
    _t("tpl-direct-secured", "Direct secured", "direct", backup_enabled=True,
       validation_timeout=240, rollback_threshold=0.9, health_check_interval=30,
       ssl_validation=True, timeout=60, audit_enabled=True, security_policy=_P),
    _t("tpl-direct-validate", "Direct with validation", "direct", backup_enabled=False,
       validation_timeout=180, rollback_threshold=0.85, health_check_interval=30),
)
TEMPLATE_INDEX: dict[str, int] = {t.template_id: i for i, t in enumerate(TEMPLATES)}


@dataclass(frozen=True)
class Team:
    """Engineers who share habits: which templates they reach for, and how often CI deploys."""

    name: str
    users: tuple[str, ...]
    automation_rate: float
    habits: dict[str, dict[str, float]]  # environment class -> template id -> weight


_PROD_CLASS = {"production": "production", "staging": "staging", "qa": "test", "test": "test",
               "development": "development"}
ENV_CLASS: tuple[str, ...] = tuple(_PROD_CLASS[e] for e in ENVIRONMENTS)

TEAMS: tuple[Team, ...] = (
    Team("platform", ("alice.ops", "bob.ops", "priya.ops"), 0.85, {
        "production": {"tpl-bg-standard": 60, "tpl-bg-seed": 10, "tpl-bg-hardened": 7,
                       "tpl-bg-fast-switch": 8, "tpl-bg-audited": 8, "tpl-canary-10-strict": 7},
        "staging": {"tpl-bg-staging-mirror": 50, "tpl-bg-standard": 20, "tpl-bg-hardened": 10,
                    "tpl-bg-test": 20},
        "test": {"tpl-bg-test": 60, "tpl-direct-backup": 20, "tpl-bg-staging-mirror": 20},
        "development": {"tpl-direct-quick": 50, "tpl-direct-backup": 30, "tpl-bg-test": 20},
    }),
    Team("controls", ("carol.controls", "dave.controls", "li.controls"), 0.3, {
        "production": {"tpl-rolling-one": 25, "tpl-rolling-batch-4": 30,
                       "tpl-rolling-batch-2": 20, "tpl-direct-backup": 10,
                       "tpl-direct-hotfix": 10, "tpl-rolling-strict-2": 5},
        "staging": {"tpl-rolling-test": 40, "tpl-rolling-batch-2": 30, "tpl-staged-staging": 30},
        "test": {"tpl-rolling-test": 50, "tpl-rolling-dev": 30, "tpl-direct-quick": 20},
        "development": {"tpl-direct-quick": 60, "tpl-rolling-dev": 40},
    }),
    Team("mes", ("erin.mes", "frank.mes"), 0.6, {
        "production": {"tpl-canary-10-strict": 25, "tpl-canary-50-quick": 25,
                       "tpl-canary-25-standard": 25, "tpl-staged-plantwide": 15,
                       "tpl-staged-nightly": 10},
        "staging": {"tpl-canary-staging": 40, "tpl-canary-20-test": 30, "tpl-staged-staging": 30},
        "test": {"tpl-canary-20-test": 50, "tpl-staged-test": 30, "tpl-direct-validate": 20},
        "development": {"tpl-direct-validate": 50, "tpl-canary-20-test": 20,
                        "tpl-direct-quick": 30},
    }),
    Team("integrators", ("gina.si", "hank.si"), 0.05, {
        "production": {"tpl-direct-hotfix": 40, "tpl-bg-staging-mirror": 30,
                       "tpl-bg-standard": 20, "tpl-direct-secured": 10},
        "staging": {"tpl-direct-quick": 40, "tpl-bg-staging-mirror": 30, "tpl-direct-hotfix": 30},
        "test": {"tpl-direct-quick": 70, "tpl-direct-hotfix": 30},
        "development": {"tpl-direct-quick": 80, "tpl-direct-hotfix": 20},
    }),
)
# Share of each environment's traffic per team (rows: environments, columns: TEAMS).
TEAM_SHARE: tuple[tuple[float, ...], ...] = (
    (0.30, 0.30, 0.25, 0.15),
    (0.30, 0.30, 0.25, 0.15),
    (0.30, 0.30, 0.25, 0.15),
    (0.35, 0.28, 0.25, 0.12),
    (0.40, 0.28, 0.22, 0.10),
)

# Environment mix in working hours (Mon-Fri 07-19 UTC) and off hours (maintenance windows).
ENV_MIX_WORK: tuple[float, ...] = (0.35, 0.25, 0.05, 0.20, 0.15)
ENV_MIX_OFF: tuple[float, ...] = (0.15, 0.15, 0.03, 0.17, 0.50)

# Deployment-type mix per environment (rows: environments, columns: DEPLOYMENT_TYPES).
DTYPE_MIX: tuple[tuple[float, ...], ...] = (
    (0.25, 0.40, 0.05, 0.20, 0.05, 0.05),
    (0.12, 0.45, 0.08, 0.20, 0.10, 0.05),
    (0.10, 0.45, 0.10, 0.20, 0.10, 0.05),
    (0.08, 0.45, 0.10, 0.20, 0.10, 0.07),
    (0.06, 0.44, 0.08, 0.22, 0.14, 0.06),
)
# Probability that a change skips the promotion chain (no source environment), per type.
SKIP_PROMOTION: tuple[float, ...] = (0.05, 0.05, 0.05, 0.30, 0.60, 0.05)


@dataclass(frozen=True)
class Bundle:
    """What a typical change ships, and the words people use to name it."""

    title: str
    resources: tuple[str, ...]
    weights: tuple[float, ...]  # per environment


BUNDLES: tuple[Bundle, ...] = (
    Bundle("HMI", ("project", "perspective"), (3, 3, 3, 3, 3)),
    Bundle("Perspective screens", ("perspective", "project", "named_query"), (2, 2, 2, 2, 2)),
    Bundle("Vision client", ("vision", "project"), (1, 1, 1, 1, 1.5)),
    Bundle("Tag provider sync", ("tag_provider",), (2, 2, 2, 2, 2)),
    Bundle("Tags and UDTs", ("tag_provider", "project"), (2, 2, 2, 2, 2)),
    Bundle("Database schema", ("database", "named_query"), (1.5, 1.5, 1.5, 1.5, 1.5)),
    Bundle("Batch reporting", ("report", "named_query", "database"), (1, 1, 1, 1, 1)),
    Bundle("Historian", ("historian", "tag_provider"), (1, 1, 1, 1.2, 1.5)),
    Bundle("OPC UA devices", ("opc_ua_connection", "tag_provider"), (1, 1, 1, 1.2, 1.5)),
    Bundle("Alarm pipeline", ("alarm_pipeline", "project"), (1, 1, 1, 1, 1)),
    Bundle("Gateway scripts", ("gateway_script", "project"), (1.5, 1.5, 1, 1, 1)),
    Bundle("Project", ("project", "tag_provider", "database"), (2, 2, 2, 2, 2.5)),
    Bundle("Line integration", ("opc_ua_connection", "tag_provider", "historian", "project"),
           (0.5, 0.5, 0.5, 1, 1)),
    Bundle("MES connector", ("database", "named_query", "gateway_script", "project"),
           (0.5, 0.5, 0.5, 1, 1)),
)
EXTRA_RESOURCE_RATE = 0.2

PLANTS: tuple[str, ...] = ("plant A", "plant B", "plant C")
