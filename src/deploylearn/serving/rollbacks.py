"""Learn rollback scenarios from the rollbacks an environment has actually been through.

Why: the seed listed rollback procedures someone wrote down; here the history says which
failures lead to a rollback, how often such a rollback works, and how long recovery takes,
so an engineer prepares for the likely and costly cases first.

A **scenario** is a *trigger group* met by one deployment strategy in one environment. The
trigger is a rollback's first failure reason (the cause; later reasons are follow-ups), as a
normalized ``Issue``; issues whose words mostly agree form one group, clustered and named from
the texts alone (``serving.trigger_groups``). Per scenario:

* how often the trigger leads to a rollback (rollbacks / failures with that trigger);
* rollback success as a Beta(1 + successes, 1 + failures) posterior: mean and a 90 % credible
  interval (the highest-density one when all rollbacks went one way, so the interval always
  holds the observed rate);
* recovery time p50 / p90 from the store's rollback-duration metric (``recovery_metric``: a
  ``performance_data`` key naming a rollback, recovery or restore), or, when none was
  recorded, from the rolled-back runs' whole duration (said so in ``basis``);
* an ordered procedure for the strategy and the resources, and risk notes where the data
  show rollbacks fail more: every knob value of the runs' patterns and every resource is
  tested against rollback success in the environment (Fisher exact, Benjamini–Hochberg over
  all of them), and a significant one becomes a note on the scenarios whose runs are on its
  worse side.

Scenarios are ranked by ``risk_score`` = rollbacks per 100 deployments in scope ×
(1 + probability the rollback fails): frequent scenarios first, a failing rollback counting
up to double.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta, false_discovery_control, fisher_exact

from deploylearn.domain.answers.rollbacks import (
    RecoveryTime,
    RollbackSuccess,
    Scenario,
    TriggerIssue,
)
from deploylearn.domain.identity import issue_id_for
from deploylearn.domain.records import DeploymentPattern, RollbackScenario
from deploylearn.serving.trigger_groups import TriggerGroup, group_reasons

CREDIBLE = 0.90
PRIOR = (1.0, 1.0)  # uniform: with few rollbacks the counts speak, and the interval says so
FEW_ROLLBACKS = 5
UNSPECIFIED = "unspecified"
RISK_Q = 0.05  # false discovery rate over every factor tested in one environment
MIN_SIDE = 5  # rollbacks with a known outcome needed on each side of a factor
MAX_RISK_NOTES = 3  # factor notes per scenario, surest first
WHOLE_RUN_BASIS = "duration_seconds of the rolled-back runs"
_RECOVERY_WORDS = frozenset({"rollback", "recovery", "restore", "revert"})
_UNIT = {"ms": 0.001, "msec": 0.001, "min": 60.0, "mins": 60.0, "minutes": 60.0}

STRATEGY_STEPS: dict[str, tuple[str, ...]] = {
    "blue_green": (
        "Switch traffic back to the previous (blue) gateway environment",
        "Keep the green gateway running but out of service, for diagnosis",
    ),
    "rolling": (
        "Stop the rollout: no further gateway batches",
        "Roll the updated gateways back in reverse order, one batch at a time, "
        "checking each before the next",
    ),
    "canary": (
        "Route the canary share back to 0 % (all traffic to the stable version)",
        "Redeploy the previous version on the canary gateways",
    ),
    "direct": (
        "Tell operators first: a direct rollback restarts the gateway; "
        "use a maintenance window if the line allows",
        "Restore the gateway backup (.gwbk) or redeploy the previous project export",
    ),
    "staged": (
        "Halt promotion to the remaining stages",
        "Roll back the completed stages in reverse order, latest stage first",
    ),
}
GENERIC_STEPS = ("Redeploy the previous version of every changed resource",)
# In restore order: data and connections before what reads them.
RESOURCE_STEPS: dict[str, str] = {
    "database": "Database: restore from the pre-deployment backup (or run the down-migration), "
    "then verify the schema version and that no schema locks remain",
    "historian": "Historian: restore the affected partitions and drain store-and-forward "
    "before re-enabling history",
    "opc_ua_connection": "OPC UA connections: restore the previous connection settings and "
    "certificates; verify every device reconnects",
    "tag_provider": "Tag provider: re-import the previous tag export (UDT definitions before "
    "instances) and check tag quality",
    "named_query": "Named queries: restore the previous named queries from the project export",
    "project": "Project: redeploy the previous project version (export or project backup)",
    "perspective": "Perspective: redeploy the previous views; ask open sessions to reload",
    "vision": "Vision: redeploy the previous windows; restart the Vision clients",
    "gateway_script": "Gateway scripts: restore the previous gateway event scripts",
    "alarm_pipeline": "Alarm pipelines: restore the previous pipelines; test one notification",
    "report": "Reports: restore the previous report definitions",
}
VERIFY_STEP = (
    "Verify: gateway status, health checks and tag quality back to the pre-deployment "
    "baseline; record the rollback's outcome so this scenario keeps learning"
)


def rollback_scenarios(
    frame: pd.DataFrame,
    scenarios: Sequence[RollbackScenario],
    issues: pd.DataFrame,
    *,
    environment: str,
    resource_types: Sequence[str] | None = None,
    limit: int = 3,
    recovery_seconds: pd.Series | None = None,
    recovery_basis: str = "rollback duration metric",
    patterns: Sequence[DeploymentPattern] | None = None,
) -> list[Scenario]:
    """Rollback scenarios of ``environment`` (runs deploying any of ``resource_types``).

    ``issues`` has columns issue_id, normalized, example, executions; ``recovery_seconds``
    maps execution_id to the rollback's duration in seconds (``recovery_basis`` names where it
    came from, see ``recovery_metric``); ``patterns``, when given, adds their knob values to the
    factors tested against rollback success. Returns [] for an environment with no rollbacks
    (or none deploying the resources).
    """
    if not len(frame):
        return []
    in_env = frame[frame["target_environment"] == environment]
    failures = in_env[in_env["outcome"] == "failure"]
    # Groups come from every failure of the environment, so a resource filter never renames.
    triggers = failures["issue_ids"].map(lambda ids: ids[0] if len(ids) else UNSPECIFIED)
    groups = _group_issues(triggers, _issue_texts(issues, scenarios))
    group_of = {iid: g for g in groups for iid in g.members}
    failures = failures.assign(group=triggers.map(lambda i: group_of[i].name))
    all_rollbacks = failures[failures["rollback_triggered"].fillna(False).astype(bool)]
    if resource_types:
        wanted = set(resource_types)
        in_env = in_env[in_env["resources_deployed"].map(lambda r: not wanted.isdisjoint(r))]
        failures = failures.loc[failures.index.intersection(in_env.index)]
    rollbacks = failures[failures["rollback_triggered"].fillna(False).astype(bool)]
    if not len(rollbacks):
        return []
    context = _Context(
        environment=environment,
        deployments=len(in_env),
        wanted=set(resource_types or ()),
        recovery=_recovery_series(recovery_seconds),
        recovery_basis=recovery_basis,
        factors=_factor_effects(all_rollbacks, _templates(patterns)),
    )
    fail_counts = failures.groupby(["group", "deployment_strategy"]).size()
    by_group = {g.name: g for g in groups}
    stored = [s for s in scenarios if s.environment == environment]
    answers = [
        _scenario(
            context,
            by_group[str(name)],
            str(strategy),
            runs,
            int(fail_counts[(name, strategy)]),
            stored,
        )
        for (name, strategy), runs in rollbacks.groupby(["group", "deployment_strategy"])
    ]
    answers.sort(key=lambda a: (-a.risk_score, -a.rollbacks, a.scenario_name))
    return answers[:limit]


# ---------------------------------------------------------------------------- trigger groups
def _issue_texts(issues: pd.DataFrame, scenarios: Sequence[RollbackScenario]) -> dict[str, Any]:
    """issue_id -> (normalized, example, executions), from the issues table and scenarios."""
    texts: dict[str, Any] = {}
    for s in scenarios:
        if s.trigger_issue != UNSPECIFIED:
            texts.setdefault(issue_id_for(s.trigger_issue), (s.trigger_issue, s.trigger_issue, 0))
    if issues is not None and len(issues):
        columns = ["issue_id", "normalized", "example", "executions"]
        table = issues.reindex(columns=columns)
        for iid, normalized, example, count in table.itertuples(index=False):
            if not isinstance(normalized, str):
                continue  # no text here; a scenario may still have it
            shown = example if isinstance(example, str) else normalized
            texts[str(iid)] = (normalized, shown, 0 if pd.isna(count) else int(count))
    return texts


def _group_issues(triggers: pd.Series, texts: dict[str, Any]) -> list[TriggerGroup]:
    """Trigger groups of the environment's failures (``serving.trigger_groups``), plus one for
    failures that recorded no reason."""
    frequency = Counter(triggers.tolist())
    unspecified = frequency.pop(UNSPECIFIED, 0)
    groups = group_reasons(frequency, {iid: (t[0], t[1]) for iid, t in texts.items()})
    if unspecified:
        name = "unspecified (no failure reason recorded)"
        groups.append(TriggerGroup(name, UNSPECIFIED, "", {UNSPECIFIED: UNSPECIFIED}))
    return groups


def recovery_metric(metric_types: Iterable[str]) -> list[str]:
    """Stored metrics that can time a rollback, likeliest first: names with a word rollback,
    recovery, restore or revert (``rollback_duration_s``, ``recovery.seconds``), those that
    also say duration or time first. No such metric: [] (recovery then uses run durations)."""
    scored = []
    for name in metric_types:
        words = set(re.split(r"[^a-z]+", str(name).lower()))
        if words & _RECOVERY_WORDS:
            scored.append((-len(words & {"duration", "time", "seconds", "secs", "s"}), name))
    return [name for _, name in sorted(scored)]


def recovery_seconds(
    metrics: pd.DataFrame | None, rolled_back: Iterable[str]
) -> tuple[str, pd.Series]:
    """(metric name, seconds per execution_id) of the candidate metric recorded on the most
    rolled-back runs; a name ending in ``_ms`` or ``_min`` is converted to seconds."""
    if metrics is None or not len(metrics):
        return "", pd.Series(dtype=float)
    ids = set(rolled_back)
    on_rollbacks = metrics[metrics["execution_id"].isin(ids)]
    counts = on_rollbacks.groupby("metric_type").size()
    if not len(counts):
        return "", pd.Series(dtype=float)
    name = str(counts.sort_values(ascending=False, kind="stable").index[0])
    unit = _UNIT.get(re.split(r"[^a-z]+", name.lower())[-1], 1.0)
    chosen = metrics[metrics["metric_type"] == name]
    values = pd.to_numeric(chosen["value"], errors="coerce").to_numpy(dtype=float) * unit
    return name, pd.Series(values, index=chosen["execution_id"].to_numpy())


# ---------------------------------------------------------------------------- evidence
@dataclass
class _Factor:
    """A knob value or a resource, with rollback success with and without it."""

    kind: str  # knob | resource
    label: str  # ``backup_enabled=true`` or ``database``
    strategy: str  # the strategy whose rollbacks were compared
    present: pd.Series  # bool per rollback run of the environment (frame index)
    with_s: int
    with_f: int
    without_s: int
    without_f: int
    p_value: float
    q_value: float = 1.0

    @property
    def rate_with(self) -> float:
        return self.with_s / (self.with_s + self.with_f)

    @property
    def rate_without(self) -> float:
        return self.without_s / (self.without_s + self.without_f)


@dataclass
class _Context:
    environment: str
    deployments: int
    wanted: set[str]
    recovery: pd.Series | None
    recovery_basis: str
    factors: list[_Factor]


def _templates(patterns: Sequence[DeploymentPattern] | None) -> dict[str, dict[str, Any]]:
    return {p.pattern_id: p.configuration_template for p in patterns or ()}


def _show(value: Any) -> str:
    if value is _UNSET:
        return "unset"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


_UNSET = object()


def _factor_effects(runs: pd.DataFrame, templates: dict[str, dict[str, Any]]) -> list[_Factor]:
    """Every resource and knob value tested against rollback success; BH-significant ones.

    Tested within each strategy (rollbacks of different strategies work differently, and knobs
    belong to strategies, so pooling would credit a knob with its strategy's effect); the
    Benjamini–Hochberg correction runs over every test of the environment at once. A knob with
    exactly two values among a strategy's runs is one test (its two indicators are
    complements); otherwise each value (``unset`` included) is tested against the rest.
    """
    factors: list[_Factor] = []
    for strategy, part in runs.groupby("deployment_strategy", sort=True):
        factors.extend(_strategy_factors(str(strategy), part, templates))
    if not factors:
        return []
    q = false_discovery_control([f.p_value for f in factors], method="bh")
    for factor, q_value in zip(factors, q, strict=True):
        factor.q_value = float(q_value)
    return sorted((f for f in factors if f.q_value < RISK_Q), key=lambda f: (f.q_value, f.label))


def _strategy_factors(
    strategy: str, runs: pd.DataFrame, templates: dict[str, dict[str, Any]]
) -> list[_Factor]:
    outcome = _outcomes(runs)
    known = outcome.notna().to_numpy(dtype=bool)
    if known.sum() < 2 * MIN_SIDE:
        return []
    success = outcome.fillna(False).to_numpy(dtype=bool)
    indicators: list[tuple[str, str, np.ndarray]] = []
    resources = runs["resources_deployed"].map(lambda r: frozenset(r if r is not None else ()))
    for name in sorted({r for rs in resources for r in rs}):
        has = resources.map(lambda r, n=name: n in r).to_numpy(dtype=bool)
        indicators.append(("resource", str(name), has))
    configs = [templates.get(pid, {}) for pid in runs["pattern_id"]]
    for key in sorted({k for c in configs for k in c}):
        shown = np.array([_show(c.get(key, _UNSET)) for c in configs], dtype=object)
        distinct = sorted(set(shown))
        for value in distinct[:1] if len(distinct) == 2 else distinct:
            indicators.append(("knob", f"{key}={value}", shown == value))
    aliased: dict[bytes, tuple[str, list[str], np.ndarray]] = {}
    for kind, label, present in indicators:  # values that always travel together: one test
        for flags in (present, ~present):
            if flags.tobytes() in aliased:
                entry = aliased[flags.tobytes()]
                if flags is present:
                    entry[1].append(label)
                break
        else:
            aliased[present.tobytes()] = (kind, [label], present)
    factors: list[_Factor] = []
    for kind, labels, present in aliased.values():
        label = " + ".join(labels)
        on, off = present & known, ~present & known
        counts = (
            int((success & on).sum()),
            int((~success & on).sum()),
            int((success & off).sum()),
            int((~success & off).sum()),
        )
        if min(counts[0] + counts[1], counts[2] + counts[3]) < MIN_SIDE:
            continue
        _, p_value = fisher_exact([[counts[0], counts[1]], [counts[2], counts[3]]])
        flags = pd.Series(present, index=runs.index)
        factors.append(_Factor(kind, label, strategy, flags, *counts, p_value=float(p_value)))
    return factors


def _outcomes(runs: pd.DataFrame) -> pd.Series:
    """rollback_successful as a nullable boolean (stores give bool, None, NA or numpy bool)."""
    return runs["rollback_successful"].astype("boolean")


def _posterior(successes: int, failures: int, unknown: int = 0) -> RollbackSuccess:
    """Beta posterior of rollback success; HPD-style one-sided interval at the boundaries."""
    a, b = PRIOR[0] + successes, PRIOR[1] + failures
    tail = 1 - CREDIBLE
    if successes and not failures:  # density rises to 1: the densest interval ends there
        low, high = float(beta.ppf(tail, a, b)), 1.0
    elif failures and not successes:
        low, high = 0.0, float(beta.ppf(CREDIBLE, a, b))
    else:
        low, high = (float(x) for x in beta.ppf([tail / 2, 1 - tail / 2], a, b))
    n = successes + failures
    return RollbackSuccess(
        probability=round(a / (a + b), 4),
        credible_interval=(round(low, 4), round(high, 4)),
        credible_level=CREDIBLE,
        observed_rate=round(successes / n, 4) if n else None,
        successes=successes,
        failures=failures,
        unknown=unknown,
        prior=f"Beta({PRIOR[0]:g}, {PRIOR[1]:g})",
    )


def _recovery_series(recovery: pd.Series | None) -> pd.Series | None:
    if recovery is None or not len(recovery):
        return None
    values = pd.to_numeric(recovery, errors="coerce").dropna()
    values = values[~values.index.duplicated(keep="last")]
    return values if len(values) else None


def _recovery(context: _Context, runs: pd.DataFrame) -> RecoveryTime:
    basis = context.recovery_basis
    values = pd.Series(dtype=float)
    if context.recovery is not None:
        values = context.recovery.reindex(runs["execution_id"]).dropna()
    if not len(values):
        basis = f"{WHOLE_RUN_BASIS} (no rollback duration metric recorded)"
        values = pd.to_numeric(runs["duration_seconds"], errors="coerce").dropna()
    if not len(values):
        return RecoveryTime(p50_seconds=None, p90_seconds=None, samples=0, basis=basis)
    p50, p90 = np.quantile(values.to_numpy(dtype=float), [0.5, 0.9])
    return RecoveryTime(
        p50_seconds=round(float(p50), 1),
        p90_seconds=round(float(p90), 1),
        samples=len(values),
        basis=basis,
    )


# ---------------------------------------------------------------------------- one scenario
def _scenario(
    context: _Context,
    group: TriggerGroup,
    strategy: str,
    runs: pd.DataFrame,
    failures_with_trigger: int,
    stored: Sequence[RollbackScenario],
) -> Scenario:
    outcome = _outcomes(runs)
    successes = int(outcome.eq(True).sum())
    failed = int(outcome.eq(False).sum())
    n = len(runs)
    posterior = _posterior(successes, failed, n - successes - failed)
    resources = Counter(r for rs in runs["resources_deployed"] for r in rs)
    per_100 = 100 * n / context.deployments if context.deployments else 0.0
    risk = per_100 * (1 + (1 - posterior.probability))
    recovery = _recovery(context, runs)
    involved = [r for r, _ in resources.most_common()]
    steps_for = (
        [r for r in involved if r in context.wanted]
        if context.wanted
        else [r for r, c in resources.most_common() if c >= 0.25 * n]
    )
    members = set(group.members)
    starts = runs["started_at"]
    return Scenario(
        scenario_name=f"{context.environment} · {strategy}: {group.name}",
        environment=context.environment,
        deployment_strategy=strategy,
        trigger_condition=group.name,
        trigger_issues=_trigger_issues(group, runs),
        example_reason=group.example,
        resource_types=involved,
        resources_involved=dict(resources.most_common()),
        rollbacks=n,
        failures_with_trigger=failures_with_trigger,
        rollback_rate_given_trigger=round(n / failures_with_trigger, 4)
        if failures_with_trigger
        else None,
        rollbacks_per_100_deployments=round(per_100, 3),
        rollback_success=posterior,
        success_rate_prediction=posterior.probability,
        recovery_time=recovery,
        procedure=_procedure(strategy, steps_for),
        risk_notes=_risk_notes(context, runs, posterior, recovery, resources, n),
        risk_score=round(risk, 4),
        scenario_ids=sorted(
            s.scenario_id
            for s in stored
            if s.deployment_strategy == strategy
            and (issue_id_for(s.trigger_issue) in members or s.trigger_issue in members)
        ),
        first_seen=_iso(starts.min()),
        last_seen=_iso(starts.max()),
    )


def _trigger_issues(group: TriggerGroup, runs: pd.DataFrame) -> list[TriggerIssue]:
    counts = Counter(ids[0] if len(ids) else UNSPECIFIED for ids in runs["issue_ids"])
    return [
        TriggerIssue(issue_id=iid, normalized=group.members.get(iid, iid), rollbacks=c)
        for iid, c in counts.most_common(5)
    ]


def _procedure(strategy: str, resources: list[str]) -> list[str]:
    steps = list(STRATEGY_STEPS.get(strategy, GENERIC_STEPS))
    order = list(RESOURCE_STEPS)
    for resource in sorted(resources, key=lambda r: (order.index(r) if r in order else 99, r)):
        steps.append(
            RESOURCE_STEPS.get(
                resource,
                f"{resource.replace('_', ' ').capitalize()}: restore the previous version "
                "from the gateway backup",
            )
        )
    steps.append(VERIFY_STEP)
    return [f"{i}. {step}" for i, step in enumerate(steps, 1)]


def _risk_notes(
    context: _Context,
    runs: pd.DataFrame,
    posterior: RollbackSuccess,
    recovery: RecoveryTime,
    resources: Counter[str],
    n: int,
) -> list[str]:
    notes: list[str] = []
    if n < FEW_ROLLBACKS:
        notes.append(f"only {n} rollback(s) seen: treat the odds and times as rough")
    if posterior.credible_interval[1] < 0.5:
        notes.append("these rollbacks usually fail: plan the manual restore before deploying")
    notes.extend(_factor_notes(context, runs, n))
    if recovery.samples and recovery.basis.startswith(WHOLE_RUN_BASIS):
        notes.append(
            "recovery times are whole-run durations (no rollback duration metric): "
            "an upper bound on the rollback itself"
        )
    return notes


def _factor_notes(context: _Context, runs: pd.DataFrame, n: int) -> list[str]:
    """The environment's significant factors whose worse side holds some of these runs."""
    notes: list[str] = []
    for factor in context.factors:
        if factor.strategy not in set(runs["deployment_strategy"]):
            continue
        present = factor.present.reindex(runs.index, fill_value=False).to_numpy(dtype=bool)
        worse_with = factor.rate_with < factor.rate_without
        exposed = int(present.sum() if worse_with else (~present).sum())
        if not exposed:
            continue
        side, other = ("with", "without") if worse_with else ("without", "with")
        worse_rate, better_rate = sorted((factor.rate_with, factor.rate_without))
        n_with, n_without = factor.with_s + factor.with_f, factor.without_s + factor.without_f
        worse_n, better_n = (n_with, n_without) if worse_with else (n_without, n_with)
        notes.append(
            f"rollbacks {side} {factor.label} succeed {_pct(worse_rate)} (n={worse_n}) vs "
            f"{_pct(better_rate)} {other} it (n={better_n}, Fisher p={factor.p_value:.2g}, "
            f"BH q={factor.q_value:.2g}) among {factor.strategy} rollbacks in "
            f"{context.environment}; {exposed} of these {n} ran {side} it"
            + (
                " (these values always came together here: the data cannot tell them apart)"
                if " + " in factor.label
                else ""
            )
        )
        if len(notes) >= MAX_RISK_NOTES:
            break
    return notes


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _iso(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    return value.isoformat() if isinstance(value, datetime) else str(value)
