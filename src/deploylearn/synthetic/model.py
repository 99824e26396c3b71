"""The oracle: the world's true success model, vectorized over many executions at once.

``logit_components`` returns every additive term of the log-odds separately, because the
generator also uses them to pick a failure's cause in proportion to its contribution: a
database shipped without a backup fails mostly with database errors, a flaky gateway with
"unreachable" errors. The scalar oracle (``SyntheticWorld.success_probability``) calls this
same code on one row, so the probability a record was drawn with and the one the oracle
reports agree to the last bit of floating-point arithmetic that numpy guarantees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from deploylearn.synthetic.catalogue import (
    BLUE_GREEN,
    BOOL_KNOBS,
    CANARY,
    KNOB_DEFAULTS,
    KNOB_INDEX,
    KNOBS,
    PROD,
    RESOURCE_BIT,
    RESOURCE_TYPES,
    ROLLING,
    STAGING,
    UPGRADE,
)

# ---------------------------------------------------------------- coefficients (log-odds)
INTERCEPT = 3.0
ENV_BASE = np.array([0.6, 0.4, 0.3, 0.1, -0.1])  # development, test, qa, staging, production
# rows: STRATEGIES (blue_green, rolling, canary, direct, staged); columns: ENVIRONMENTS
STRATEGY_FIT = np.array(
    [
        [0.0, 0.1, 0.1, 0.3, 0.6],
        [0.1, 0.1, 0.1, 0.1, 0.0],
        [-0.2, 0.0, 0.0, 0.2, 0.5],
        [0.4, 0.1, 0.0, -0.5, -1.0],
        [-0.1, 0.1, 0.1, 0.2, 0.3],
    ]
)
DTYPE_EFFECT = np.array([0.3, 0.0, -0.4, 0.4, -0.5, -0.8])  # per DEPLOYMENT_TYPES
RESOURCE_RISK: dict[str, float] = {
    "project": 0.0, "tag_provider": -0.1, "database": 0.0, "perspective": -0.1, "vision": -0.15,
    "alarm_pipeline": -0.15, "gateway_script": -0.2, "opc_ua_connection": -0.45,
    "historian": -0.4, "report": -0.05, "named_query": -0.1,
}
DATABASE_RISK_START, DATABASE_RISK_END = -0.7, -0.2  # drifts linearly over the world's span
PER_EXTRA_RESOURCE = -0.1
BACKUP_BONUS = 0.1
DB_NO_BACKUP = -1.6
HISTORIAN_NO_BACKUP = -0.8
VALIDATION_WEIGHT, VALIDATION_SCALE = -0.6, 90.0
VALIDATION_NEED_PER_RESOURCE = 30.0
VALIDATION_NEED_EXTRA: dict[str, float] = {
    "database": 120.0, "historian": 90.0, "opc_ua_connection": 60.0,
}
PROD_NO_SSL, STAGING_NO_SSL, OPC_NO_SSL = -0.6, -0.2, -0.4
PROD_NO_AUDIT = -0.35
PROD_NOT_STRICT = -0.3
PROD_SHORT_TIMEOUT = -0.4  # times clip((60 - timeout) / 30, 0, 1)
CANARY_PER_PERCENT = -0.05  # per point of canary_percent above 15
PROD_BATCH_PER_GATEWAY = -0.2  # per gateway of batch_size above 2, rolling in production
SWITCH_WEIGHT, SWITCH_SCALE = -0.6, 15.0  # times softplus((30 - switch_traffic_delay) / 15)
PROD_HEALTH_PER_SECOND = -0.01  # per second of health_check_interval above 30
PROD_LOW_THRESHOLD = -0.3  # rollback_threshold below 0.9 in production
SKIPPED_PROMOTION_PROD, SKIPPED_PROMOTION_OTHER = -0.5, -0.25
PROD_SHIFT_HOURS = -0.3  # production deploy on Mon-Fri 07:00-19:00 UTC (a running shift)
UPGRADE_PERSPECTIVE = np.array([-0.5, -0.7, 0.0, -0.7, -0.2])  # per strategy, after upgrade
UPGRADE_VISION = -0.3
UPGRADE_DTYPE = -0.3
GENERIC_CAUSE_WEIGHT = 0.5

# Additive terms, in order; the ones that can be a failure cause carry its key.
NON_CAUSES = ("base", "backup_bonus")
CAUSES: tuple[str, ...] = (
    "strategy_fit", "deployment_type", "res_database", "res_historian", "res_opc",
    "res_other", "db_no_backup", "historian_no_backup", "validation_timeout", "ssl",
    "audit", "security_policy", "connection_timeout", "canary", "batch_size", "switch_delay",
    "health_check", "rollback_threshold", "skipped_promotion", "shift_hours", "gateway",
    "upgrade_drift", "generic",
)
CAUSE_INDEX: dict[str, int] = {c: i for i, c in enumerate(CAUSES)}

_DB, _HIST, _OPC = (RESOURCE_BIT[r] for r in ("database", "historian", "opc_ua_connection"))
_PERSP, _VISION = RESOURCE_BIT["perspective"], RESOURCE_BIT["vision"]
_N_MASKS = 1 << len(RESOURCE_TYPES)
POPCOUNT = np.array([bin(m).count("1") for m in range(_N_MASKS)], dtype=np.int64)
_OTHER = ("database", "historian", "opc_ua_connection")
OTHER_RISK = np.array(
    [
        sum(RESOURCE_RISK[r] for r in RESOURCE_TYPES if m & RESOURCE_BIT[r] and r not in _OTHER)
        for m in range(_N_MASKS)
    ]
)
VALIDATION_NEED = np.array(
    [
        VALIDATION_NEED_PER_RESOURCE * bin(m).count("1")
        + sum(v for r, v in VALIDATION_NEED_EXTRA.items() if m & RESOURCE_BIT[r])
        for m in range(_N_MASKS)
    ]
)
MASK_RESOURCES: tuple[tuple[str, ...], ...] = tuple(
    tuple(r for r in RESOURCE_TYPES if m & RESOURCE_BIT[r]) for m in range(_N_MASKS)
)

_K = KNOB_INDEX
_BACKUP, _VT, _RT, _HCI = _K["backup_enabled"], _K["validation_timeout"], _K[
    "rollback_threshold"], _K["health_check_interval"]
_STD, _CP, _BS = _K["switch_traffic_delay"], _K["canary_percent"], _K["batch_size"]
_SSL, _TIMEOUT, _AUDIT, _POLICY = _K["ssl_validation"], _K["timeout"], _K["audit_enabled"], _K[
    "security_policy"]


@dataclass(frozen=True)
class Hidden:
    """World parameters a learner never sees in any field: it has to infer their effects."""

    gateway_offset: np.ndarray  # per gateway, plus a trailing 0.0 for unknown hosts (index -1)
    drift_gateway: int
    drift_gateway_offset: float
    drift_gateway_at: float  # epoch seconds
    upgrade_at: float  # epoch seconds: the mid-year Ignition upgrade
    start: float  # epoch seconds of the world's first day
    span: float  # seconds the world covers (for linear drift)


@dataclass
class Features:
    """Everything the oracle reads, one row per execution (integer codes, knob matrix)."""

    env: np.ndarray
    gateway: np.ndarray  # -1 when the host is not in the catalogue
    strategy: np.ndarray
    dtype: np.ndarray
    resources: np.ndarray  # bit mask over RESOURCE_TYPES
    skipped: np.ndarray  # bool: source environment missing or not in the promotion chain
    knobs: np.ndarray  # (n, len(KNOBS)) float64
    t: np.ndarray  # epoch seconds (float64)


def working_hours(t: np.ndarray) -> np.ndarray:
    """Mon-Fri 07:00-19:00 UTC: when plants run a shift and most engineers work."""
    day = np.floor_divide(t, 86400.0)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday == 0
    hour = np.floor_divide(t - day * 86400.0, 3600.0)
    return cast(np.ndarray, (weekday < 5) & (hour >= 7) & (hour < 19))


def logit_components(f: Features, h: Hidden) -> dict[str, np.ndarray]:
    """Every additive log-odds term, by name (see CAUSES and docs/synthetic-world.md)."""
    k = f.knobs
    env, strat, res = f.env, f.strategy, f.resources
    prod = env == PROD
    stg = env == STAGING
    backup = k[:, _BACKUP] > 0.5
    ssl = k[:, _SSL] > 0.5
    has_db = (res & _DB) != 0
    has_hist = (res & _HIST) != 0
    has_opc = (res & _OPC) != 0
    frac = np.clip((f.t - h.start) / h.span, 0.0, 1.0)
    after_upgrade = f.t >= h.upgrade_at
    zero = np.zeros(len(env))
    c: dict[str, np.ndarray] = {}
    c["base"] = INTERCEPT + ENV_BASE[env]
    c["strategy_fit"] = STRATEGY_FIT[strat, env]
    c["deployment_type"] = DTYPE_EFFECT[f.dtype]
    c["res_database"] = np.where(
        has_db, DATABASE_RISK_START + (DATABASE_RISK_END - DATABASE_RISK_START) * frac, 0.0
    )
    c["res_historian"] = np.where(has_hist, RESOURCE_RISK["historian"], 0.0)
    c["res_opc"] = np.where(has_opc, RESOURCE_RISK["opc_ua_connection"], 0.0)
    c["res_other"] = OTHER_RISK[res] + PER_EXTRA_RESOURCE * (POPCOUNT[res] - 1)
    c["backup_bonus"] = np.where(backup, BACKUP_BONUS, 0.0)
    c["db_no_backup"] = np.where(has_db & ~backup, DB_NO_BACKUP, 0.0)
    c["historian_no_backup"] = np.where(has_hist & ~backup, HISTORIAN_NO_BACKUP, 0.0)
    c["validation_timeout"] = VALIDATION_WEIGHT * np.logaddexp(
        0.0, (VALIDATION_NEED[res] - k[:, _VT]) / VALIDATION_SCALE
    )
    c["ssl"] = (
        np.where(prod & ~ssl, PROD_NO_SSL, 0.0)
        + np.where(stg & ~ssl, STAGING_NO_SSL, 0.0)
        + np.where((prod | stg) & has_opc & ~ssl, OPC_NO_SSL, 0.0)
    )
    c["audit"] = np.where(prod & (k[:, _AUDIT] < 0.5), PROD_NO_AUDIT, 0.0)
    c["security_policy"] = np.where(prod & (k[:, _POLICY] < 0.5), PROD_NOT_STRICT, 0.0)
    c["connection_timeout"] = np.where(
        prod, PROD_SHORT_TIMEOUT * np.clip((60.0 - k[:, _TIMEOUT]) / 30.0, 0.0, 1.0), 0.0
    )
    c["canary"] = np.where(
        strat == CANARY, CANARY_PER_PERCENT * np.maximum(0.0, k[:, _CP] - 15.0), 0.0
    )
    c["batch_size"] = np.where(
        (strat == ROLLING) & prod, PROD_BATCH_PER_GATEWAY * np.maximum(0.0, k[:, _BS] - 2.0), 0.0
    )
    c["switch_delay"] = np.where(
        strat == BLUE_GREEN,
        SWITCH_WEIGHT * np.logaddexp(0.0, (30.0 - k[:, _STD]) / SWITCH_SCALE),
        0.0,
    )
    c["health_check"] = np.where(
        prod, PROD_HEALTH_PER_SECOND * np.maximum(0.0, k[:, _HCI] - 30.0), 0.0
    )
    c["rollback_threshold"] = np.where(prod & (k[:, _RT] < 0.9), PROD_LOW_THRESHOLD, 0.0)
    c["skipped_promotion"] = np.where(
        f.skipped, np.where(prod, SKIPPED_PROMOTION_PROD, SKIPPED_PROMOTION_OTHER), 0.0
    )
    c["shift_hours"] = np.where(prod & working_hours(f.t), PROD_SHIFT_HOURS, 0.0)
    c["gateway"] = h.gateway_offset[f.gateway] + np.where(
        (f.gateway == h.drift_gateway) & (f.t >= h.drift_gateway_at), h.drift_gateway_offset, 0.0
    )
    c["upgrade_drift"] = np.where(
        after_upgrade,
        np.where((res & _PERSP) != 0, UPGRADE_PERSPECTIVE[strat], 0.0)
        + np.where((res & _VISION) != 0, UPGRADE_VISION, 0.0)
        + np.where(f.dtype == UPGRADE, UPGRADE_DTYPE, 0.0),
        zero,
    )
    return c


def logit(components: Mapping[str, np.ndarray]) -> np.ndarray:
    """Sum of the terms in a fixed order, so every caller gets bit-identical results."""
    total = components["base"].copy()
    for name in ("backup_bonus", *CAUSES[:-1]):
        total += components[name]
    return total


def probability(components: Mapping[str, np.ndarray]) -> np.ndarray:
    """Logistic link; written out so the scalar and batch paths share one expression."""
    return cast(np.ndarray, 1.0 / (1.0 + np.exp(-logit(components))))


def cause_weights(components: Mapping[str, np.ndarray]) -> np.ndarray:
    """(n, len(CAUSES)) non-negative weights: how much each risk pushed toward failure."""
    n = len(components["base"])
    w = np.empty((n, len(CAUSES)))
    for j, name in enumerate(CAUSES[:-1]):
        np.maximum(-components[name], 0.0, out=w[:, j])
    w[:, -1] = GENERIC_CAUSE_WEIGHT
    return w


# ---------------------------------------------------------------- parsing arbitrary inputs
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_TRUE = frozenset({"true", "yes", "on", "enabled", "1"})


def _norm_key(key: object) -> str:
    return "_".join(w for w in _NON_WORD.split(_CAMEL.sub("_", str(key)).lower()) if w)


def _knob_value(name: str, value: Any) -> float:
    default = KNOB_DEFAULTS[name]
    if name == "security_policy":
        return 1.0 if str(value).strip().lower() == "strict" else 0.0
    if name in BOOL_KNOBS:
        if isinstance(value, str):
            return 1.0 if value.strip().lower() in _TRUE else 0.0
        return 1.0 if value else 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float(default)
    return number if np.isfinite(number) else float(default)


DEFAULT_KNOBS = np.array([_knob_value(k, KNOB_DEFAULTS[k]) for k in KNOBS])


def knob_vector(configuration: Mapping[str, Any]) -> np.ndarray:
    """The knob row for any configuration: unknown, volatile and secret keys are ignored,
    absent knobs take their documented default, and spelling/typing is forgiven
    (``Validation-Timeout: "300"`` reads as 300)."""
    row = DEFAULT_KNOBS.copy()
    for raw_key, value in configuration.items():
        key = raw_key if raw_key in KNOB_INDEX else _norm_key(raw_key)
        j = KNOB_INDEX.get(key)
        if j is not None:
            row[j] = _knob_value(key, value)
    return row


def lookup(mapping: Mapping[str, int], value: str, field: str, allowed: tuple[str, ...]) -> int:
    """Index of a categorical value, or a ValueError naming the field and what is allowed."""
    try:
        return mapping[value]
    except KeyError:
        norm = _norm_key(value)
        if norm in mapping:
            return mapping[norm]
        raise ValueError(f"{field}: unknown value {value!r}; expected one of {allowed}") from None

