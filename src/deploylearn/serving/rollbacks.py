"""Learn rollback scenarios from the rollbacks an environment has actually been through.

Why: the seed listed rollback procedures someone wrote down; here the history says which
failures lead to a rollback, how often such a rollback works, and how long recovery takes,
so an engineer prepares for the likely and costly cases first.

A **scenario** is a *trigger group* met by one deployment strategy in one environment. The
trigger is a rollback's first failure reason (the cause; later reasons are follow-ups), as a
normalized ``Issue``; issues whose words mostly agree (Jaccard ≥ ``MERGE_SIMILARITY`` on their
content words, so ``schema lock timeout on batch_records`` and ``… on oee_events`` merge) form
one group, named in plain words. Per scenario:

* how often the trigger leads to a rollback (rollbacks / failures with that trigger);
* rollback success as a Beta(1 + successes, 1 + failures) posterior: mean and a 90 % credible
  interval (the highest-density one when all rollbacks went one way, so the interval always
  holds the observed rate);
* recovery time p50 / p90 from the ``rollback_duration_s`` metric, or, when none was
  recorded, from the rolled-back runs' whole duration (said so in ``basis``);
* an ordered procedure for the strategy and the resources, and risk notes where the data
  show rollbacks fail more (without a backup, with a database).

Scenarios are ranked by ``risk_score`` = rollbacks per 100 deployments in scope ×
(1 + probability the rollback fails): frequent scenarios first, a failing rollback counting
up to double.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta, fisher_exact

from deploylearn.identity import issue_id_for
from deploylearn.records import DeploymentPattern, RollbackScenario

CREDIBLE = 0.90
PRIOR = (1.0, 1.0)  # uniform: with few rollbacks the counts speak, and the interval says so
MERGE_SIMILARITY = 0.5
FEW_ROLLBACKS = 5
UNSPECIFIED = "unspecified"
RISK_P = 0.05  # significance for a risk note

_PLACEHOLDER = re.compile(r"<[a-z]+>")
_WORD = re.compile(r"[a-z][a-z0-9_]*")
_STOP = frozenset(
    {"a", "an", "the", "on", "in", "at", "to", "of", "for", "from", "by", "with", "after"}
    | {"before", "during", "is", "was", "be", "been", "and", "or", "not", "than", "then"}
    | {"this", "that", "it", "its"}
)
# Plain names for common Ignition failure groups; first match on the group's leading issue.
GROUP_NAMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"\bunreachable\b|connection refused|no route to host", "gateway unreachable"),
        (r"schema lock|lock timeout|deadlock", "database schema lock timeout"),
        (r"connection pool", "database connection pool exhausted"),
        (r"validation timed out|validation timeout", "validation timeout"),
        (r"\bssl\b|\btls\b|handshake|pkix", "SSL handshake failed"),
        (r"certificate", "certificate rejected"),
        (r"\baudit\b", "audit policy check failed"),
        (r"security policy", "security policy check failed"),
        (r"post-deployment health check|health check failed", "health check failed"),
        (r"\btimed out\b", "connection timeout"),
    )
)

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
# (before the rollback, before retrying the deployment) per trigger group.
TRIGGER_STEPS: dict[str, tuple[str | None, str | None]] = {
    "gateway unreachable": (
        "Confirm the gateway answers (service, network path, redundancy state): "
        "a rollback cannot reach an unreachable gateway either",
        "Before retrying: check gateway health first",
    ),
    "database schema lock timeout": (
        "End the session holding the schema lock before restoring",
        "Before retrying: enable backup_enabled and migrate outside the running shift",
    ),
    "database connection pool exhausted": (
        None,
        "Before retrying: check the database connection pool limits",
    ),
    "validation timeout": (
        None,
        "Before retrying: raise validation_timeout for this many resources",
    ),
    "SSL handshake failed": (
        None,
        "Before retrying: fix the certificate chain / trust store; keep ssl_validation on",
    ),
    "certificate rejected": (None, "Before retrying: trust the device certificate"),
}


@dataclass
class _Group:
    """Issues that name one cause in different words."""

    name: str
    leader: str  # the most frequent member's normalized text
    example: str
    members: dict[str, str] = field(default_factory=dict)  # issue_id -> normalized


def rollback_scenarios(
    frame: pd.DataFrame,
    scenarios: Sequence[RollbackScenario],
    issues: pd.DataFrame,
    *,
    environment: str,
    resource_types: Sequence[str] | None = None,
    limit: int = 3,
    recovery_seconds: pd.Series | None = None,
    patterns: Sequence[DeploymentPattern] | None = None,
) -> list[dict[str, Any]]:
    """Rollback scenarios of ``environment`` (runs deploying any of ``resource_types``).

    ``issues`` has columns issue_id, normalized, example, executions; ``recovery_seconds``
    maps execution_id to the rollback's duration; ``patterns``, when given, lets the answer
    compare rollbacks with and without ``backup_enabled``. Returns [] for an environment with
    no rollbacks (or none deploying the resources).
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
    if resource_types:
        wanted = set(resource_types)
        in_env = in_env[in_env["resources_deployed"].map(lambda r: not wanted.isdisjoint(r))]
        failures = failures.loc[failures.index.intersection(in_env.index)]
    rollbacks = failures[failures["rollback_triggered"].fillna(False).astype(bool)]
    if not len(rollbacks):
        return []
    backups = _backups(patterns)
    context = _Context(
        environment=environment,
        deployments=len(in_env),
        wanted=set(resource_types or ()),
        recovery=_recovery_series(recovery_seconds),
        backup_effect=_effect(rollbacks, _has_backup(rollbacks, backups)) if backups else None,
        database_effect=_effect(rollbacks, rollbacks["resources_deployed"].map(_has_db)),
        backups=backups,
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
    answers.sort(key=lambda a: (-a["risk_score"], -a["rollbacks"], a["scenario_name"]))
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


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(_PLACEHOLDER.sub(" ", text)) if w not in _STOP)


def _group_issues(triggers: pd.Series, texts: dict[str, Any]) -> list[_Group]:
    """Leader clustering of the trigger issues by content-word overlap, then named.

    Most frequent issue first, so a group's leader is its commonest wording. An issue joins
    the cluster whose *core* (the words all its members share) it overlaps most, if the
    Jaccard similarity reaches ``MERGE_SIMILARITY``; the core then shrinks to what is shared,
    which is what lets ``unexpected error in <module>`` variants meet while a long unrelated
    message never does. Clusters that get the same name are one group.
    """
    frequency = Counter(triggers.tolist())
    order = sorted(frequency, key=lambda i: (-frequency[i], i))
    cores: list[frozenset[str]] = []
    members: list[dict[str, str]] = []
    leaders: list[tuple[str, str]] = []
    index: dict[str, set[int]] = {}
    groups: dict[str, _Group] = {}
    for iid in order:
        if iid == UNSPECIFIED:
            continue
        if iid not in texts:  # no text to read: its own group, never merged
            name = f"issue {iid}"
            groups[name] = _Group(name, name, "", {iid: name})
            continue
        normalized, example, _ = texts[iid]
        words = _words(normalized)
        best, best_sim = None, MERGE_SIMILARITY
        for c in sorted({c for w in words for c in index.get(w, ())}):
            sim = len(words & cores[c]) / len(words | cores[c])
            if sim > best_sim or (sim == best_sim and best is None):
                best, best_sim = c, sim
        if best is None:
            cores.append(words)
            members.append({})
            leaders.append((normalized, example))
            best = len(cores) - 1
            for w in words:
                index.setdefault(w, set()).add(best)
        else:
            cores[best] = cores[best] & words
        members[best][iid] = normalized
    for core, found, (leader, example) in zip(cores, members, leaders, strict=True):
        name = _name(leader, core)
        group = groups.setdefault(name, _Group(name, leader, example))
        group.members.update(found)
    if UNSPECIFIED in frequency:
        name = "unspecified (no failure reason recorded)"
        groups[name] = _Group(name, UNSPECIFIED, "", {UNSPECIFIED: UNSPECIFIED})
    return list(groups.values())


_TOKEN = re.compile(r"<[a-z]+>|[a-z][a-z0-9_]*")
_HEADLINE = re.compile(r": |; ")


def _name(leader: str, core: frozenset[str]) -> str:
    """A plain name: the name table, else the leader's headline without its variable words.

    The headline is the text before the first ``": "`` or ``"; "``; words not shared by every
    member (table names, module names) and placeholders go, and so does a small word that
    only introduced one of them (``on <host>``, ``in staging``).
    """
    for pattern, name in GROUP_NAMES:
        if pattern.search(leader):
            return name
    headline = _HEADLINE.split(leader, maxsplit=1)[0]
    tokens = _TOKEN.findall(headline)
    if len(core & set(tokens)) < 2:
        tokens = _TOKEN.findall(leader)
    kept: list[str] = []
    for i, token in enumerate(tokens):
        if token in _STOP:
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if following is not None and (following in core or following in _STOP):
                kept.append(token)
        elif token in core:
            kept.append(token)
    while kept and kept[-1] in _STOP:
        kept.pop()
    while kept and kept[0] in _STOP:
        kept.pop(0)
    return " ".join(kept).replace("_", " ") or leader[:60]


# ---------------------------------------------------------------------------- evidence
@dataclass
class _Effect:
    """Rollback success with and without a condition, and whether they differ."""

    with_s: int
    with_f: int
    without_s: int
    without_f: int
    p_value: float

    @property
    def rate_with(self) -> float | None:
        n = self.with_s + self.with_f
        return self.with_s / n if n else None

    @property
    def rate_without(self) -> float | None:
        n = self.without_s + self.without_f
        return self.without_s / n if n else None


@dataclass
class _Context:
    environment: str
    deployments: int
    wanted: set[str]
    recovery: pd.Series | None
    backup_effect: _Effect | None
    database_effect: _Effect | None
    backups: dict[str, bool]


def _backups(patterns: Sequence[DeploymentPattern] | None) -> dict[str, bool]:
    if not patterns:
        return {}
    return {p.pattern_id: _backs_up(p.configuration_template) for p in patterns}


def _backs_up(template: dict[str, Any]) -> bool:
    """``backup_enabled: true`` (or any switched-on knob named like a backup)."""
    return any(v is True and "backup" in k.split("_") for k, v in template.items())


def _has_backup(runs: pd.DataFrame, backups: dict[str, bool]) -> pd.Series:
    return runs["pattern_id"].map(lambda pid: backups.get(pid, False)).astype(bool)


def _has_db(resources: Sequence[str]) -> bool:
    return "database" in resources


def _outcomes(runs: pd.DataFrame) -> pd.Series:
    """rollback_successful as a nullable boolean (stores give bool, None, NA or numpy bool)."""
    return runs["rollback_successful"].astype("boolean")


def _effect(runs: pd.DataFrame, condition: pd.Series) -> _Effect | None:
    known = _outcomes(runs)
    ok = known.notna().to_numpy(dtype=bool)
    success = known[ok].to_numpy(dtype=bool)
    cond = condition[ok].to_numpy(dtype=bool)
    counts = (
        int((success & cond).sum()),
        int((~success & cond).sum()),
        int((success & ~cond).sum()),
        int((~success & ~cond).sum()),
    )
    if min(counts[0] + counts[1], counts[2] + counts[3]) == 0:
        return None
    _, p_value = fisher_exact([[counts[0], counts[1]], [counts[2], counts[3]]])
    return _Effect(*counts, p_value=float(p_value))


def _posterior(successes: int, failures: int, unknown: int = 0) -> dict[str, Any]:
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
    return {
        "probability": round(a / (a + b), 4),
        "credible_interval": [round(low, 4), round(high, 4)],
        "credible_level": CREDIBLE,
        "observed_rate": round(successes / n, 4) if n else None,
        "successes": successes,
        "failures": failures,
        "unknown": unknown,
        "prior": f"Beta({PRIOR[0]:g}, {PRIOR[1]:g})",
    }


def _recovery_series(recovery: pd.Series | None) -> pd.Series | None:
    if recovery is None or not len(recovery):
        return None
    values = pd.to_numeric(recovery, errors="coerce").dropna()
    values = values[~values.index.duplicated(keep="last")]
    return values if len(values) else None


def _recovery(context: _Context, runs: pd.DataFrame) -> dict[str, Any]:
    basis = "rollback_duration_s"
    values = pd.Series(dtype=float)
    if context.recovery is not None:
        values = context.recovery.reindex(runs["execution_id"]).dropna()
    if not len(values):
        basis = "duration_seconds of the rolled-back runs (no rollback_duration_s recorded)"
        values = pd.to_numeric(runs["duration_seconds"], errors="coerce").dropna()
    if not len(values):
        return {"p50_seconds": None, "p90_seconds": None, "samples": 0, "basis": basis}
    p50, p90 = np.quantile(values.to_numpy(dtype=float), [0.5, 0.9])
    return {
        "p50_seconds": round(float(p50), 1),
        "p90_seconds": round(float(p90), 1),
        "samples": len(values),
        "basis": basis,
    }


# ---------------------------------------------------------------------------- one scenario
def _scenario(
    context: _Context,
    group: _Group,
    strategy: str,
    runs: pd.DataFrame,
    failures_with_trigger: int,
    stored: Sequence[RollbackScenario],
) -> dict[str, Any]:
    outcome = _outcomes(runs)
    successes = int(outcome.eq(True).sum())
    failed = int(outcome.eq(False).sum())
    n = len(runs)
    posterior = _posterior(successes, failed, n - successes - failed)
    resources = Counter(r for rs in runs["resources_deployed"] for r in rs)
    per_100 = 100 * n / context.deployments if context.deployments else 0.0
    risk = per_100 * (1 + (1 - posterior["probability"]))
    recovery = _recovery(context, runs)
    involved = [r for r, _ in resources.most_common()]
    steps_for = (
        [r for r in involved if r in context.wanted]
        if context.wanted
        else [r for r, c in resources.most_common() if c >= 0.25 * n]
    )
    members = set(group.members)
    starts = runs["started_at"]
    return {
        "scenario_name": f"{context.environment} · {strategy}: {group.name}",
        "environment": context.environment,
        "deployment_strategy": strategy,
        "trigger_condition": group.name,
        "trigger_issues": _trigger_issues(group, runs),
        "example_reason": group.example,
        "resource_types": involved,
        "resources_involved": dict(resources.most_common()),
        "rollbacks": n,
        "failures_with_trigger": failures_with_trigger,
        "rollback_rate_given_trigger": round(n / failures_with_trigger, 4)
        if failures_with_trigger
        else None,
        "rollbacks_per_100_deployments": round(per_100, 3),
        "rollback_success": posterior,
        "success_rate_prediction": posterior["probability"],
        "recovery_time": recovery,
        "procedure": _procedure(strategy, steps_for, group.name),
        "risk_notes": _risk_notes(context, runs, posterior, recovery, resources, n),
        "risk_score": round(risk, 4),
        "scenario_ids": sorted(
            s.scenario_id
            for s in stored
            if s.deployment_strategy == strategy
            and (issue_id_for(s.trigger_issue) in members or s.trigger_issue in members)
        ),
        "first_seen": _iso(starts.min()),
        "last_seen": _iso(starts.max()),
    }


def _trigger_issues(group: _Group, runs: pd.DataFrame) -> list[dict[str, Any]]:
    counts = Counter(ids[0] if len(ids) else UNSPECIFIED for ids in runs["issue_ids"])
    return [
        {"issue_id": iid, "normalized": group.members.get(iid, iid), "rollbacks": c}
        for iid, c in counts.most_common(5)
    ]


def _procedure(strategy: str, resources: list[str], trigger: str) -> list[str]:
    before, retry = TRIGGER_STEPS.get(trigger, (None, None))
    steps = [before] if before else []
    steps.extend(STRATEGY_STEPS.get(strategy, GENERIC_STEPS))
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
    if retry:
        steps.append(retry)
    return [f"{i}. {step}" for i, step in enumerate(steps, 1)]


def _risk_notes(
    context: _Context,
    runs: pd.DataFrame,
    posterior: dict[str, Any],
    recovery: dict[str, Any],
    resources: Counter[str],
    n: int,
) -> list[str]:
    notes: list[str] = []
    if n < FEW_ROLLBACKS:
        notes.append(f"only {n} rollback(s) seen: treat the odds and times as rough")
    if posterior["credible_interval"][1] < 0.5:
        notes.append("these rollbacks usually fail: plan the manual restore before deploying")
    effect = context.backup_effect
    if effect is not None and effect.p_value < RISK_P and _worse_without(effect):
        without = int((~_has_backup(runs, context.backups)).sum())
        if without:
            notes.append(
                f"rollbacks without backup_enabled succeed {_pct(effect.rate_without)} "
                f"(n={effect.without_s + effect.without_f}) vs {_pct(effect.rate_with)} with "
                f"one (n={effect.with_s + effect.with_f}, Fisher p={effect.p_value:.2g}) in "
                f"{context.environment}; {without} of these {n} ran without a backup"
            )
    effect = context.database_effect
    if (
        effect is not None
        and resources.get("database")
        and effect.p_value < RISK_P
        and (effect.rate_with or 0) < (effect.rate_without or 0)
    ):
        notes.append(
            f"rollbacks that include a database succeed {_pct(effect.rate_with)} vs "
            f"{_pct(effect.rate_without)} without (Fisher p={effect.p_value:.2g}); "
            "restore the database first"
        )
    if recovery["samples"] and recovery["basis"] != "rollback_duration_s":
        notes.append(
            "recovery times are whole-run durations (no rollback_duration_s metric): "
            "an upper bound on the rollback itself"
        )
    return notes


def _worse_without(effect: _Effect) -> bool:
    return (effect.rate_without or 0) < (effect.rate_with or 0)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _iso(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    return value.isoformat() if isinstance(value, datetime) else str(value)
