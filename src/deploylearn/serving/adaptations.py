"""Mine how a deployment's configuration changes from one environment to another.

Why mined, not hand-written: the seed stored adaptations people typed in; the history already
shows what successful runs in the target environment do differently, with failures counted.

*The same deployment in two environments* is a **family**: a deployment strategy, optionally
narrowed to runs that deploy one resource type (``direct`` with ``database``). A pattern is a
strategy plus a template, so within a family every run carries its pattern's canonical
template. For each knob we compare the *successful* source runs with the *successful* target
runs; a value (or, for numbers, a direction: raised / lowered) becomes a rule only when

* it is significantly more common among target successes than among source successes
  (one-sided Fisher exact test, Benjamini–Hochberg across every candidate in the call, and at
  least ``MIN_LIFT`` more common), so environments that do not differ yield no rules;
* at least ``min_support`` target runs use it; and
* either most target successes use it (``confidence`` ≥ 0.5, the target's convention) or
  target runs that use it succeed significantly more often than those that do not (the 95 %
  Newcombe interval of the uplift lies above 0). A value whose uplift interval lies below 0 is
  never a rule, however popular.

The rules rewrite the family's *typical* source template (the source pattern with the most
successes) into the adapted configuration. Recorded adaptations for the same pair come back
too, checked against the target's history the same way. Everything is observational:
templates move several knobs at once, so a knob's uplift is shared with the knobs that travel
with it (see ``docs/adaptations-and-rollbacks.md``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, hypergeom, norm

from deploylearn.domain.answers.adaptations import Adaptation, AdaptationRule, UpliftEvidence
from deploylearn.domain.identity import canonical_template, numbers_close
from deploylearn.domain.records import DeploymentPattern, EnvironmentAdaptation
from deploylearn.serving.stats import wilson_interval

DEFAULT_MIN_SUPPORT = 20
ALPHA = 0.05  # false discovery rate over every candidate rule of one call
MIN_LIFT = 0.05  # a rule's value must be this much more common among target successes
CONVENTION = 0.5  # share of target successes above which a significant shift needs no uplift


class _Absent:
    """The value of a knob a template leaves out (distinct from null and from false)."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()

Counts = tuple[int, int, int, int]  # source successes, source failures, target s, target f


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _vkey(value: Any) -> tuple[str, Any]:
    """Hashable identity of a knob value: True, 1 and "1" must stay different values."""
    if value is ABSENT:
        return ("absent", None)
    if isinstance(value, bool) or value is None:
        return ("const", value)
    if _is_number(value):
        return ("number", float(value))
    if isinstance(value, str):
        return ("text", value)
    return ("json", json.dumps(value, sort_keys=True, default=str))


def _show(value: Any) -> str:
    if value is ABSENT:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class _Candidate:
    """One possible rule: a knob's change and the counts that judge it."""

    family: tuple[str, str | None]
    key: str
    change: str  # set | raise | lower
    original: Any
    adapted: Any
    test: Callable[[Any], bool]
    k_src: int = 0  # source successes using it
    n_src: int = 0  # source successes
    k_tgt: int = 0  # target successes using it
    n_tgt: int = 0  # target successes
    with_s: int = 0  # target runs using it: successes, failures
    with_f: int = 0
    without_s: int = 0
    without_f: int = 0
    q_value: float = 1.0
    uplift: float | None = None
    interval: tuple[float, float] | None = None
    uplift_p: float | None = None

    @property
    def support(self) -> int:
        return self.with_s + self.with_f

    @property
    def confidence(self) -> float:
        return self.k_tgt / self.n_tgt if self.n_tgt else 0.0

    @property
    def source_share(self) -> float:
        return self.k_src / self.n_src if self.n_src else 0.0

    def rule_text(self, source: str) -> str:
        key, old, new = self.key, self.original, self.adapted
        if self.change in ("raise", "lower"):
            text = f"{self.change} {key} from {_show(old)} to {_show(new)}"
            return text + (f" (×{new / old:.3g})" if old else "")
        if old is ABSENT:
            return f"set {key} to {_show(new)} (unset in {source})"
        return f"set {key} to {_show(new)} (was {_show(old)})"

    def evidence(self, source: str) -> AdaptationRule:
        return AdaptationRule(
            key=self.key,
            rule=self.rule_text(source),
            change=self.change,
            original_value=None if self.original is ABSENT else self.original,
            adapted_value=self.adapted,
            support=self.support,
            confidence=round(self.confidence, 4),
            source_share=round(self.source_share, 4),
            target_success_rate_with=_rate(self.with_s, self.with_f),
            target_success_rate_without=_rate(self.without_s, self.without_f),
            success_uplift=_round(self.uplift),
            uplift_interval=_round_pair(self.interval),
            uplift_p_value=_sig(self.uplift_p),
            q_value=_sig(self.q_value),
        )


@dataclass
class _Family:
    strategy: str
    resource: str | None
    counts: dict[str, Counts] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.strategy, self.resource)


def environment_adaptations(
    frame: pd.DataFrame,
    patterns: Sequence[DeploymentPattern],
    recorded: Sequence[EnvironmentAdaptation],
    *,
    source_environment: str,
    target_environment: str,
    resource_type: str | None = None,
    limit: int = 3,
    min_support: int = DEFAULT_MIN_SUPPORT,
) -> list[Adaptation]:
    """Adaptations from ``source_environment`` to ``target_environment``, best evidence first.

    Mined ones (``source: "mined"``, one per strategy family with at least one rule; with
    ``resource_type`` the families are narrowed to runs deploying it, without it a
    resource-narrowed family is added only when it finds a knob its strategy family did not)
    and recorded ones for the same pair (``source: "recorded"``). Returns [] when either
    environment is unknown or nothing qualifies; raises ValueError when source == target.
    """
    if source_environment == target_environment:
        raise ValueError("source and target environment are the same; nothing to adapt")
    source, target = source_environment, target_environment
    wanted = [
        a
        for a in recorded
        if a.source_environment == source
        and a.target_environment == target
        and (resource_type is None or a.resource_type in (None, resource_type))
    ]
    known = set(frame["target_environment"].unique()) if len(frame) else set()
    known |= {e for a in recorded for e in (a.source_environment, a.target_environment)}
    if source not in known or target not in known:
        return []

    templates = {p.pattern_id: p.configuration_template for p in patterns}
    families, target_counts = _families(frame, templates, source, target, resource_type)
    candidates = _candidates(families, templates, min_support)
    _judge(candidates)
    accepted = _accept(candidates, min_support)

    answers: list[Adaptation] = []
    by_family: dict[tuple[str, str | None], list[_Candidate]] = {}
    for candidate in accepted:
        by_family.setdefault(candidate.family, []).append(candidate)
    family_index = {f.key: f for f in families}
    for key, rules in by_family.items():
        strategy, resource = key
        if resource_type is None and resource is not None:
            broader = {r.key for r in by_family.get((strategy, None), [])}
            if all(r.key in broader for r in rules):
                continue  # touches no knob the strategy-wide family did not already adapt
        answers.append(_mined_answer(family_index[key], rules, templates, source, target))
    answers.extend(_recorded_answer(a, target_counts, templates, resource_type) for a in wanted)
    answers.sort(key=_rank_key)
    return answers[:limit]


# ---------------------------------------------------------------------------- counting
def _families(
    frame: pd.DataFrame,
    templates: dict[str, dict[str, Any]],
    source: str,
    target: str,
    resource_type: str | None,
) -> tuple[list[_Family], dict[str | None, dict[str, tuple[int, int]]]]:
    """Outcome counts per family and pattern, and per scope for the target alone."""
    if not len(frame):
        return [], {}
    runs = frame.loc[
        frame["target_environment"].isin([source, target])
        & frame["outcome"].notna()
        & frame["pattern_id"].isin(templates.keys()),
        [
            "pattern_id",
            "target_environment",
            "deployment_strategy",
            "resources_deployed",
            "outcome",
        ],
    ]
    runs = runs.assign(
        success=(runs["outcome"] == "success").astype(np.int64),
        is_target=(runs["target_environment"] == target),
    ).drop(columns="outcome")
    tables: list[pd.DataFrame] = []
    if resource_type is None:
        tables.append(runs.assign(resource=None))
    exploded = runs.explode("resources_deployed").rename(columns={"resources_deployed": "resource"})
    if resource_type is not None:
        exploded = exploded[exploded["resource"] == resource_type]
    tables.append(exploded)
    families: dict[tuple[str, str | None], _Family] = {}
    target_counts: dict[str | None, dict[str, tuple[int, int]]] = {}
    for table in tables:
        grouped = table.groupby(
            ["deployment_strategy", "resource", "pattern_id", "is_target"], dropna=False
        )["success"].agg(["sum", "count"])
        for (strategy, resource, pattern_id, is_target), row in grouped.iterrows():
            scope = None if pd.isna(resource) else str(resource)
            family = families.setdefault((str(strategy), scope), _Family(str(strategy), scope))
            s, n = int(row["sum"]), int(row["count"])
            src_s, src_f, tgt_s, tgt_f = family.counts.get(str(pattern_id), (0, 0, 0, 0))
            if is_target:
                tgt_s, tgt_f = tgt_s + s, tgt_f + n - s
                pair = target_counts.setdefault(scope, {}).get(str(pattern_id), (0, 0))
                target_counts[scope][str(pattern_id)] = (pair[0] + s, pair[1] + n - s)
            else:
                src_s, src_f = src_s + s, src_f + n - s
            family.counts[str(pattern_id)] = (src_s, src_f, tgt_s, tgt_f)
    return sorted(families.values(), key=lambda f: (f.strategy, f.resource or "")), target_counts


def _original(family: _Family) -> str:
    """The typical source template: the source pattern with the most successes."""
    return max(family.counts, key=lambda pid: (family.counts[pid][0], -family.counts[pid][1], pid))


def _candidates(
    families: list[_Family], templates: dict[str, dict[str, Any]], min_support: int
) -> list[_Candidate]:
    out: list[_Candidate] = []
    for family in families:
        totals = np.array(list(family.counts.values())).sum(axis=0)
        src_s, _, tgt_s, tgt_f = (int(x) for x in totals)
        if src_s < min_support or tgt_s + tgt_f < min_support or tgt_s == 0:
            continue
        original = templates[_original(family)]
        used = [pid for pid, c in family.counts.items() if c[0] or c[2] or c[3]]
        keys = sorted({k for pid in used for k in templates[pid]})
        for key in keys:
            for candidate in _key_candidates(family, templates, key, original.get(key, ABSENT)):
                _count(candidate, family, templates)
                out.append(candidate)
    return out


def _key_candidates(
    family: _Family, templates: dict[str, dict[str, Any]], key: str, original: Any
) -> list[_Candidate]:
    """Every change of ``key`` that target successes show: a new value, or a direction."""
    weights: dict[tuple[str, Any], list[Any]] = {}
    for pid, (_, _, tgt_s, _) in family.counts.items():
        if tgt_s:
            value = templates[pid].get(key, ABSENT)
            weights.setdefault(_vkey(value), [value, 0])[1] += tgt_s
    out: list[_Candidate] = []
    numeric = [(v, w) for v, w in weights.values() if _is_number(v)]
    if _is_number(original):
        for change, side in (("raise", 1.0), ("lower", -1.0)):
            moved = [
                (v, w)
                for v, w in numeric
                if (v - original) * side > 0 and not numbers_close(v, original)
            ]
            if moved:
                typical = _weighted_lower_median(moved, reverse=side < 0)

                def test(v: Any, o: float = original, s: float = side) -> bool:
                    return _is_number(v) and (v - o) * s > 0 and not numbers_close(v, o)

                out.append(_Candidate(family.key, key, change, original, typical, test))
    for vkey, (value, _) in sorted(weights.items(), key=lambda kv: str(kv[0])):
        if vkey == _vkey(original) or value is ABSENT:
            continue  # "remove this knob" is no instruction a person can follow safely
        if _is_number(original) and _is_number(value):
            continue  # numbers move by direction, above
        change = "set"

        def same(v: Any, k: tuple[str, Any] = vkey) -> bool:
            return _vkey(v) == k

        out.append(_Candidate(family.key, key, change, original, value, same))
    return out


def _weighted_lower_median(values: list[tuple[Any, int]], *, reverse: bool) -> Any:
    """The value at the middle of the moved runs, nearest the original on a tie."""
    ordered = sorted(values, key=lambda vw: vw[0], reverse=reverse)
    half = sum(w for _, w in ordered) / 2
    seen = 0
    for value, weight in ordered:
        seen += weight
        if seen >= half:
            return value
    return ordered[-1][0]


def _count(candidate: _Candidate, family: _Family, templates: dict[str, dict[str, Any]]) -> None:
    for pid, (src_s, _, tgt_s, tgt_f) in family.counts.items():
        uses = candidate.test(templates[pid].get(candidate.key, ABSENT))
        candidate.n_src += src_s
        candidate.n_tgt += tgt_s
        if uses:
            candidate.k_src += src_s
            candidate.k_tgt += tgt_s
            candidate.with_s += tgt_s
            candidate.with_f += tgt_f
        else:
            candidate.without_s += tgt_s
            candidate.without_f += tgt_f


# ---------------------------------------------------------------------------- statistics
def _judge(candidates: list[_Candidate]) -> None:
    """Enrichment q-values (Fisher one-sided + BH) and uplift intervals, all at once."""
    if not candidates:
        return
    k_tgt = np.array([c.k_tgt for c in candidates], dtype=float)
    n_tgt = np.array([c.n_tgt for c in candidates], dtype=float)
    k_src = np.array([c.k_src for c in candidates], dtype=float)
    n_src = np.array([c.n_src for c in candidates], dtype=float)
    # P(X >= k_tgt), X ~ hypergeometric: the one-sided Fisher exact test of the 2x2 table.
    p = hypergeom.sf(k_tgt - 1, n_tgt + n_src, k_tgt + k_src, n_tgt)
    q = false_discovery_control(np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0), method="bh")
    for candidate, q_value in zip(candidates, q, strict=True):
        candidate.q_value = float(q_value)
        candidate.uplift, candidate.interval, candidate.uplift_p = _uplift(
            candidate.with_s, candidate.with_f, candidate.without_s, candidate.without_f
        )


def _uplift(
    s1: int, f1: int, s0: int, f0: int
) -> tuple[float | None, tuple[float, float] | None, float | None]:
    """Rate(with) − rate(without), its 95 % Newcombe (hybrid Wilson) interval, a z-test p."""
    n1, n0 = s1 + f1, s0 + f0
    with_rate, without_rate = wilson_interval(s1, n1), wilson_interval(s0, n0)
    if with_rate is None or without_rate is None:  # a side without runs
        return None, None, None
    p1, p0 = s1 / n1, s0 / n0
    (l1, u1), (l0, u0) = with_rate, without_rate
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    pooled = (s1 + s0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    p_value = 1.0 if se == 0 else float(2 * norm.sf(abs(d) / se))
    return d, (low, high), p_value


def _accept(candidates: list[_Candidate], min_support: int) -> list[_Candidate]:
    """At most one rule per family and knob: the accepted change with the surest uplift.

    Ties (e.g. no run without the value, so no uplift) go to the value more target
    successes use.
    """
    best: dict[tuple[tuple[str, str | None], str], tuple[tuple[float, float], _Candidate]] = {}
    for c in candidates:
        if c.q_value >= ALPHA or c.confidence - c.source_share < MIN_LIFT:
            continue
        if c.support < min_support:
            continue
        helps = c.interval is not None and c.interval[0] > 0
        hurts = c.interval is not None and c.interval[1] < 0
        if hurts or not (c.confidence >= CONVENTION or helps):
            continue
        score = (c.interval[0] if c.interval else 0.0, c.confidence)
        slot = (c.family, c.key)
        if slot not in best or score > best[slot][0]:
            best[slot] = (score, c)
    return [
        c
        for _, c in sorted(
            best.values(), key=lambda sc: (sc[1].family[0], sc[1].family[1] or "", sc[1].key)
        )
    ]


# ---------------------------------------------------------------------------- answers
def _mined_answer(
    family: _Family,
    rules: list[_Candidate],
    templates: dict[str, dict[str, Any]],
    source: str,
    target: str,
) -> Adaptation:
    original_pid = _original(family)
    original = dict(templates[original_pid])
    adapted = dict(original)
    for rule in rules:
        adapted[rule.key] = rule.adapted
    follows: list[tuple[int, int, bool]] = []
    for pid, (_, _, tgt_s, tgt_f) in family.counts.items():
        if tgt_s + tgt_f:
            template = templates[pid]
            ok = all(r.test(template.get(r.key, ABSENT)) for r in rules)
            follows.append((tgt_s, tgt_f, ok))
    scope = f" with {family.resource}" if family.resource else ""
    answer = _evidence_fields(follows)
    totals = np.array(list(family.counts.values())).sum(axis=0)
    return Adaptation(
        adaptation_name=f"{source} → {target}: {family.strategy}{scope}",
        source_environment=source,
        target_environment=target,
        adaptation_rules=[r.rule_text(source) for r in rules],
        original_configuration=original,
        adapted_configuration=dict(sorted(adapted.items())),
        resource_type=family.resource,
        deployment_strategy=family.strategy,
        source="mined",
        **dict(answer),
        source_runs=int(totals[0] + totals[1]),
        target_runs=int(totals[2] + totals[3]),
        original_pattern_id=original_pid,
        rules=[r.evidence(source) for r in rules],
        adaptation_id=None,
    )


def _evidence_fields(follows: list[tuple[int, int, bool]]) -> UpliftEvidence:
    """Support, confidence and uplift of 'follows every rule' among target runs."""
    with_s = sum(s for s, _, ok in follows if ok)
    with_f = sum(f for _, f, ok in follows if ok)
    without_s = sum(s for s, _, ok in follows if not ok)
    without_f = sum(f for _, f, ok in follows if not ok)
    successes = with_s + without_s
    uplift, interval, p_value = _uplift(with_s, with_f, without_s, without_f)
    return UpliftEvidence(
        support=with_s + with_f,
        confidence=round(with_s / successes, 4) if successes else None,
        target_success_rate_with=_rate(with_s, with_f),
        target_success_rate_without=_rate(without_s, without_f),
        success_uplift=_round(uplift),
        uplift_interval=_round_pair(interval),
        uplift_p_value=_sig(p_value),
    )


def _recorded_answer(
    adaptation: EnvironmentAdaptation,
    target_counts: dict[str | None, dict[str, tuple[int, int]]],
    templates: dict[str, dict[str, Any]],
    resource_type: str | None,
) -> Adaptation:
    """A recorded adaptation, with how the target's runs that follow it actually fared."""
    original = canonical_template(adaptation.original_configuration)
    adapted = canonical_template(adaptation.adapted_configuration)
    changed = {k: v for k, v in adapted.items() if k not in original or original[k] != v}
    scope = adaptation.resource_type or resource_type
    counts = target_counts.get(scope, {})
    follows = []
    for pid, (s, f) in counts.items():
        template = templates.get(pid, {})
        ok = bool(changed) and all(_matches(template.get(k, ABSENT), v) for k, v in changed.items())
        follows.append((s, f, ok))
    return Adaptation(
        adaptation_name=adaptation.adaptation_name,
        source_environment=adaptation.source_environment,
        target_environment=adaptation.target_environment,
        adaptation_rules=list(adaptation.adaptation_rules),
        original_configuration=dict(adaptation.original_configuration),
        adapted_configuration=dict(adaptation.adapted_configuration),
        resource_type=adaptation.resource_type,
        deployment_strategy=None,
        source="recorded",
        **dict(_evidence_fields(follows)),
        source_runs=None,
        target_runs=sum(s + f for s, f, _ in follows),
        original_pattern_id=adaptation.pattern_id,
        rules=[],
        adaptation_id=adaptation.adaptation_id,
    )


def _matches(value: Any, wanted: Any) -> bool:
    if _is_number(value) and _is_number(wanted):
        return numbers_close(float(value), float(wanted))
    return _vkey(value) == _vkey(wanted)


def _rank_key(answer: Adaptation) -> tuple[float, int, str]:
    """Most convincing first: the uplift's lower bound, then how many runs back it."""
    interval = answer.uplift_interval
    low = interval[0] if interval else 0.0
    return (-low, -answer.support, answer.adaptation_name)


def _rate(s: int, f: int) -> float | None:
    return round(s / (s + f), 4) if s + f else None


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


def _round_pair(pair: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if pair is None else (round(float(pair[0]), 4), round(float(pair[1]), 4))


def _sig(x: float | None) -> float | None:
    """p- and q-values to three significant digits (tiny ones stay tiny, not 0.0)."""
    return None if x is None else float(f"{float(x):.3g}")
