"""``predict``: the risk of planned deployments (``Advisor.predict``).

A plan with no configuration: the configuration is taken to be one of those the strategy
actually used in that environment (any environment if never there), and the probability is
the model's, averaged over them weighted by their runs; the answer says so
(``configuration_assumed``). Likewise a missing gateway is averaged over the environment's.
Risk factors are counterfactuals on the champion: each knob at the environment's typical
value, the best other strategy, and an average gateway of the environment in place of this
one; the largest gains first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from deploylearn.domain.answers.prediction import (
    PastFailure,
    Prediction,
    PredictionAnswer,
    RiskFactor,
)
from deploylearn.domain.identity import canonical_template
from deploylearn.domain.records import PlannedDeployment
from deploylearn.features._columns import column_name
from deploylearn.features.config import knob_groups, knob_row
from deploylearn.serving.blend import INTERVAL, MIN_EFFECT, empirical_prior, posterior

if TYPE_CHECKING:
    from deploylearn.serving.advisor import Advisor

MAX_ASSUMED_CONFIGURATIONS = 50


def predict(advisor: Advisor, planned: Iterable[PlannedDeployment]) -> PredictionAnswer:
    """Risk of each planned deployment: probability, interval, risk factors, past failures.

    A missing configuration or gateway is averaged over what that strategy and environment
    actually used (module docstring); the primary row (the most used of them) carries the
    pattern id and the risk factors.
    """
    items = list(planned)
    meta = dict(advisor.meta())
    if not items:
        return PredictionAnswer(**meta, predictions=[])
    rows, knob_rows, known = planned_rows(advisor, items)
    variants, variant_knobs, owner, weight, assumed = _variants(advisor, items, rows, knob_rows)
    variant_known = variants["pattern_id"].map(lambda p: p in advisor.snapshot.patterns)
    if advisor.models is not None:
        p_variant = advisor.probability(advisor.matrix(variants, variant_knobs))
        sources = [advisor.models.describe()] * len(items)
    else:
        p_variant = np.zeros(len(variants))
        sources = []
        for i, item in enumerate(items):
            prior, source = _empirical(advisor, item)
            p_variant[owner == i] = prior
            sources.append(source)
    decayed = np.array(
        [
            advisor.snapshot.decayed_counts(pid, env) if ok else (0.0, 0.0)
            for pid, env, ok in zip(
                variants["pattern_id"],
                variants["target_environment"],
                variant_known,
                strict=True,
            )
        ]
    ).reshape(-1, 2)
    post = posterior(p_variant, decayed[:, 0], decayed[:, 1], advisor.blend.prior_strength)
    per_variant = np.vstack([post.mean, post.quantile(INTERVAL), p_variant, decayed.sum(1)])
    totals = np.bincount(owner, weights=weight, minlength=len(items))
    averaged = np.vstack(
        [np.bincount(owner, weights=weight * v, minlength=len(items)) for v in per_variant]
    ) / np.maximum(totals, 1e-12)
    primary_p = p_variant[_primary(owner, weight, len(items))]
    factors = _risk_factors(advisor, rows, knob_rows, primary_p) if advisor.models else {}
    predictions = []
    for i, item in enumerate(items):
        mean, low, high, model_p, evidence = (float(v) for v in averaged[:, i])
        predictions.append(
            Prediction(
                planned=item.model_dump(mode="json", exclude_none=True),
                pattern_id=str(rows["pattern_id"].iloc[i]) if known[i] else None,
                known_pattern=bool(known[i]),
                success_probability=round(mean, 4),
                failure_risk=round(1.0 - mean, 4),
                credible_interval=(round(low, 4), round(high, 4)),
                model_probability=round(model_p, 4),
                prior_source=sources[i],
                evidence_weight=round(evidence, 2),
                risk_factors=factors.get(i, []),
                similar_past_failures=_similar_failures(advisor, rows.iloc[i]),
                configuration_assumed=assumed.get(i),
                **advisor.unknowns(
                    target_environment=item.target_environment,
                    source_environment=item.source_environment,
                    deployment_strategy=item.deployment_strategy,
                    gateway_host=item.gateway_host,
                    resources_deployed=item.resources_deployed,
                    configuration=item.configuration_used,
                ),
            )
        )
    return PredictionAnswer(**meta, predictions=predictions)


def _primary(owner: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """Per item, the position of its heaviest variant (the first one on ties)."""
    order = np.lexsort((-weight, owner))
    first = np.r_[True, owner[order][1:] != owner[order][:-1]]
    out = np.zeros(n, dtype=np.int64)
    out[owner[order][first]] = order[first]
    return out


def _assumed_configurations(
    advisor: Advisor, item: PlannedDeployment
) -> tuple[list[str], list[float], str]:
    """Patterns the strategy used in the environment (else anywhere), weighted by runs."""
    env, strategy = item.target_environment, item.deployment_strategy
    ids = [p for p, x in advisor.snapshot.patterns.items() if x.deployment_strategy == strategy]
    for prefix, where in (("pattern_environment", f"in {env}"), ("pattern", "anywhere")):
        keys = (env,) if prefix == "pattern_environment" else ()
        runs = {p: advisor.snapshot.key(prefix, p, *keys).runs for p in ids}
        used = sorted((p for p in ids if runs[p] > 0), key=lambda p: (-runs[p], p))
        used = used[:MAX_ASSUMED_CONFIGURATIONS]
        if used:
            text = (
                f"no configuration given: averaged over the {len(used)} configuration(s) "
                f"{strategy} used {where}, weighted by their {int(sum(runs[p] for p in used))}"
                " runs"
            )
            return used, [runs[p] for p in used], text
    return [], [], f"no configuration given and {strategy} has no history: scored as empty"


def _variants(
    advisor: Advisor,
    items: list[PlannedDeployment],
    rows: pd.DataFrame,
    knob_rows: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray, dict[int, str]]:
    """The rows to score per item (owner, weight): the item itself, or one per assumed
    configuration x gateway when the plan leaves them out. Rows are replaced in place:
    ``rows`` gets the heaviest assumed configuration as its primary row."""
    columns = list(advisor.snapshot.knobs.columns)
    out, knobs, owner, weight = [], [], [], []
    assumed: dict[int, str] = {}
    for i, item in enumerate(items):
        configs: list[tuple[str | None, float]] = [(None, 1.0)]
        unknown = rows["pattern_id"].iloc[i] not in advisor.snapshot.patterns
        if not item.configuration_used and unknown:
            ids, runs, text = _assumed_configurations(advisor, item)
            assumed[i] = text
            if ids:
                configs = list(zip(ids, runs, strict=True))
                rows.loc[i, "pattern_id"] = ids[0]
                knob_rows.loc[i] = advisor.snapshot.knobs.loc[ids[0]].reindex(columns).to_numpy()
        gateways = [(rows["gateway_host"].iloc[i], 1.0)]
        if item.gateway_host is None:
            gateways = advisor.profile(item.target_environment).gateways or gateways
        for pattern_id, w_config in configs:
            for host, w_host in gateways:
                row = rows.iloc[i].copy()
                if pattern_id is not None:
                    row["pattern_id"] = pattern_id
                row["gateway_host"] = host
                out.append(row)
                knobs.append(
                    knob_rows.iloc[i]
                    if pattern_id is None
                    else advisor.snapshot.knobs.loc[pattern_id].reindex(columns)
                )
                owner.append(i)
                weight.append(w_config * w_host)
    variants = pd.DataFrame(out).reset_index(drop=True)
    return (
        variants,
        pd.DataFrame(knobs).set_axis(variants.index),
        np.asarray(owner, dtype=np.int64),
        np.asarray(weight, dtype=np.float64),
        assumed,
    )


def planned_rows(
    advisor: Advisor, items: list[PlannedDeployment]
) -> tuple[pd.DataFrame, pd.DataFrame, list[bool]]:
    records, knob_rows, known = [], [], []
    for i, item in enumerate(items):
        template = canonical_template(item.configuration_used)
        pattern_id = advisor.index.match(item.deployment_strategy, template)
        known.append(pattern_id is not None and pattern_id in advisor.snapshot.patterns)
        profile = advisor.profile(item.target_environment)
        records.append(
            {
                "pattern_id": pattern_id if known[-1] else f"\x00planned-{i}",
                "target_environment": item.target_environment,
                "gateway_host": item.gateway_host
                or (profile.gateways[0][0] if profile.gateways else None),
                "resources_deployed": list(item.resources_deployed),
                "deployment_strategy": item.deployment_strategy,
                "source_environment": item.source_environment or profile.source_environment,
                "deployment_type": item.deployment_type or profile.deployment_type,
                "automation_triggered": item.automation_triggered
                if item.automation_triggered is not None
                else profile.automation_triggered,
                "started_at": item.started_at,
            }
        )
        knob_rows.append(knob_row(template, list(advisor.snapshot.knobs.columns)))
    rows = pd.DataFrame(records)
    return rows, pd.DataFrame(knob_rows, index=rows.index), known


def _empirical(advisor: Advisor, item: PlannedDeployment) -> tuple[float, str]:
    s, f, _ = advisor.snapshot.context_counts(item.target_environment, item.resources_deployed)
    env_stats = advisor.snapshot.key("environment", item.target_environment)
    rate, source = empirical_prior(
        (s, f), (env_stats.successes, env_stats.failures), advisor.snapshot.global_counts
    )
    return rate, f"{source} success rate (no trained model)"


def _risk_factors(
    advisor: Advisor, rows: pd.DataFrame, knob_rows: pd.DataFrame, p: np.ndarray
) -> dict[int, list[RiskFactor]]:
    """What lowers each planned deployment's probability, by counterfactual on the model:
    each knob at the environment's typical value, and an average gateway of the
    environment in place of this one. Largest risks first."""
    assert advisor.models is not None
    X = advisor.matrix(rows, knob_rows)
    layout = advisor.snapshot.layout(advisor.models.feature_names)
    groups = knob_groups(advisor.snapshot.knobs.columns)
    knob_values = knob_rows.reindex(columns=advisor.snapshot.knobs.columns).to_numpy(float)
    twins = [
        (i, layout.position["environment_" + name.removeprefix("gateway_")])
        for name, i in layout.position.items()
        if name.startswith("gateway_")
        and "environment_" + name.removeprefix("gateway_") in layout.position
    ]
    strategies = [
        (name.removeprefix("deployment_strategy__"), position)
        for name, position in layout.position.items()
        if name.startswith("deployment_strategy__")
    ]
    variants: list[tuple[int, str, str, Any, Any]] = []
    blocks: list[np.ndarray] = []
    for i in range(len(rows)):
        profile = advisor.profile(str(rows["target_environment"].iloc[i]))
        typical = profile.typical_knobs.reindex(advisor.snapshot.knobs.columns).to_numpy(float)
        own = pd.Series(knob_values[i], index=advisor.snapshot.knobs.columns)
        for key, variant in advisor.knob_variants(X[i], knob_values[i], typical):
            blocks.append(variant)
            variants.append(
                (
                    i,
                    "configuration",
                    key,
                    advisor.knob_value(own, groups[key], key),
                    advisor.knob_value(profile.typical_knobs, groups[key], key),
                )
            )
        current = column_name("deployment_strategy", rows["deployment_strategy"].iloc[i])
        for strategy, position in strategies:
            if column_name("deployment_strategy", strategy) == current:
                continue
            variant = X[i].copy()
            variant[[p for _, p in strategies]] = 0.0
            variant[position] = 1.0
            blocks.append(variant)
            variants.append(
                (
                    i,
                    "strategy",
                    "deployment_strategy",
                    rows["deployment_strategy"].iloc[i],
                    strategy,
                )
            )
        if twins:
            variant = X[i].copy()
            for gateway_position, env_position in twins:
                variant[gateway_position] = X[i, env_position]
            blocks.append(variant)
            variants.append((i, "gateway", "gateway_host", rows["gateway_host"].iloc[i], None))
    if not blocks:
        return {}
    what_if = advisor.probability(np.vstack(blocks))
    out: dict[int, list[RiskFactor]] = {}
    best_strategy: dict[int, tuple[float, str]] = {}
    for (i, kind, key, value, other), q in zip(variants, what_if, strict=True):
        delta = float(q - p[i])  # > 0: changing it would help, so it is a risk now
        if kind == "strategy":  # only the best alternative strategy is worth a line
            if delta > best_strategy.get(i, (MIN_EFFECT, ""))[0]:
                best_strategy[i] = (delta, str(other))
            continue
        if delta < MIN_EFFECT:
            continue
        if kind == "gateway":
            text = f"gateway {value} is riskier than the environment's average gateway"
        else:
            text = f"{key}={_show(value)} (the environment's typical value is {_show(other)})"
        out.setdefault(i, []).append(
            RiskFactor(factor=kind, name=key, detail=text, risk_reduction=round(delta, 4))
        )
    for i, (delta, strategy) in best_strategy.items():
        text = f"strategy {rows['deployment_strategy'].iloc[i]} ({strategy} would do better)"
        out.setdefault(i, []).append(
            RiskFactor(
                factor="strategy",
                name="deployment_strategy",
                detail=text,
                risk_reduction=round(delta, 4),
            )
        )
    for factors in out.values():
        factors.sort(key=lambda f: -f.risk_reduction)
    return out


def _similar_failures(advisor: Advisor, row: pd.Series) -> list[PastFailure]:
    known = not str(row["pattern_id"]).startswith("\x00")
    found = advisor.failures.similar(
        environment=str(row["target_environment"]),
        pattern_id=str(row["pattern_id"]) if known else None,
        strategy=str(row["deployment_strategy"]),
        gateway=row["gateway_host"],
        resources=list(row["resources_deployed"]),
        issue_text=advisor.issue_text,
    )
    return [PastFailure(**failure) for failure in found]


def _show(value: Any) -> str:
    return (
        "not set"
        if value is None
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )
