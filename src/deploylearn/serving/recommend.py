"""``recommend``: the patterns to use in a context, best first (``Advisor.recommend``).

Candidates for (environment, resources, strategy). **With a champion, every known pattern (of
the strategy, if one is asked) is a candidate**, including configurations never run in the
environment: the model scores a run's own knobs in the asked context, so a better configuration
seen elsewhere can be offered. Each answer is labelled with its evidence: *tier 1* run in the
environment with all requested resources, *tier 2* run in the environment, *tier 3* untried
there (``untried: true``, its interval wide, its nearest tried patterns listed). Ranking
(``rank_by``, chosen by ``ign train`` on the store's own history, see ``serving.blend``): by
the success probability (``mean``), or risk-averse by the lower 10 % quantile
(``lower_quantile``, also available per request as ``risk_averse=True``). Without a champion
the tiers are fallbacks (tier 1 if any, else 2, else 3), ranked risk-averse, as before.
Without a gateway, a candidate's probability is the run-weighted mean over the environment's
gateways, so an unknown target is not scored as one lucky or flaky host.
Candidates are scored by the champion's ranking twin (``SuccessModel.ranking_probability``):
the same procedure on the narrowest feature set ``ign train`` found within one standard error
of the best, typically without a configuration's own track record, which is noise for the
many configurations run a few times and which an argmax over hundreds of them would reward.
``predict`` uses the champion itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from deploylearn.domain.answers.recommendations import (
    KnobEffect,
    Ranking,
    Recommendation,
    RecommendationContext,
    Recommendations,
)
from deploylearn.domain.identity import pattern_family
from deploylearn.features._columns import column_name
from deploylearn.features.config import knob_groups
from deploylearn.serving.blend import (
    CONFIDENCE_QUANTILE,
    INTERVAL,
    MIN_EFFECT,
    empirical_prior,
    posterior,
)

if TYPE_CHECKING:
    from deploylearn.serving.advisor import Advisor

MAX_CANDIDATES = 200  # without a model: tier fallbacks
MAX_MODEL_CANDIDATES = 2000  # with a model: every known pattern, the most used first
TIERS = {
    1: "run in {env} with all requested resources",
    2: "run in {env}, not yet with all requested resources",
    3: "never run in {env} (cold start)",
}


def recommend(
    advisor: Advisor,
    target_environment: str,
    resource_types: Sequence[str],
    deployment_strategy: str | None = None,
    gateway_host: str | None = None,
    limit: int = 5,
    *,
    source_environment: str | None = None,
    deployment_type: str | None = None,
    explain: bool = True,
    risk_averse: bool | None = None,
) -> Recommendations:
    """Patterns ranked for a context (see the module docstring for candidates).

    ``explain=False`` skips the knob counterfactuals (same ranking, fewer model calls).
    ``risk_averse`` ranks by the lower quantile (True) or the mean (False); None: the
    rule ``ign train`` chose for this store.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    env = target_environment
    resources = sorted(set(resource_types))
    if not resources:
        raise ValueError("resource_types must name at least one resource type")
    if advisor.models is not None:
        ids, tiers = _all_candidates(advisor, env, resources, deployment_strategy)
        tier = min(tiers) if tiers else 1
    else:
        ids, tier = _candidates(advisor, env, resources, deployment_strategy)
        tiers = [tier] * len(ids)
    rank_by = (
        advisor.blend.rank_by
        if risk_averse is None
        else ("lower_quantile" if risk_averse else "mean")
    )
    meta = advisor.meta()
    unknown = advisor.unknowns(
        target_environment=env,
        deployment_strategy=deployment_strategy,
        gateway_host=gateway_host,
        resources_deployed=resources,
        source_environment=source_environment,
    )
    warnings = meta.warnings + unknown.pop("warnings", [])

    def answer(ranked: list[Recommendation], notes: list[str] | None = None) -> Recommendations:
        return Recommendations(
            context=RecommendationContext(
                target_environment=env,
                resource_types=resources,
                deployment_strategy=deployment_strategy,
                gateway_host=gateway_host,
            ),
            **{**dict(meta), "warnings": warnings},
            **unknown,
            candidates=len(ids),
            candidate_tier=TIERS[tier].format(env=env) if ids else None,
            ranked_by=cast(Ranking, rank_by),
            recommendations=ranked,
            notes=notes,
        )

    if not ids:
        known = ", ".join(advisor.snapshot.environments()) or "none"
        return answer(
            [],
            [
                f"no pattern matches (strategy {deployment_strategy!r})"
                if deployment_strategy
                else f"no deployment history at all (environments known: {known})"
            ],
        )
    profile = advisor.profile(env)
    planned = pd.DataFrame(
        {
            "pattern_id": ids,
            "target_environment": env,
            "resources_deployed": [resources] * len(ids),
            "deployment_strategy": [advisor.snapshot.patterns[p].deployment_strategy for p in ids],
            "source_environment": source_environment or profile.source_environment,
            "deployment_type": deployment_type or profile.deployment_type,
            "automation_triggered": profile.automation_triggered,
        },
        dtype=object,  # plain Python values: Arrow-backed strings cost more than they save here
    )
    prior, prior_source, X = _prior(advisor, planned, gateway_host, tier)
    decayed = np.array([advisor.snapshot.decayed_counts(p, env) for p in ids]).reshape(-1, 2)
    post = posterior(prior, decayed[:, 0], decayed[:, 1], advisor.blend.prior_strength)
    mean = post.mean
    confidence = post.quantile(CONFIDENCE_QUANTILE)[0]
    if rank_by == "mean":
        order = np.lexsort((np.asarray(ids), -confidence, -mean))[:limit]
    else:
        order = np.lexsort((np.asarray(ids), -mean, -confidence))[:limit]
    interval = post.quantile(INTERVAL)
    effects = (
        _knob_effects(advisor, planned.iloc[order], X[order]) if X is not None and explain else {}
    )
    return answer(
        [
            _recommendation(advisor,
                planned.iloc[i],
                tier=tiers[i],
                prior=float(prior[i]),
                prior_source=prior_source[i],
                decayed=(float(decayed[i, 0]), float(decayed[i, 1])),
                mean=float(mean[i]),
                confidence=float(confidence[i]),
                interval=(float(interval[0, i]), float(interval[1, i])),
                effects=effects.get(int(i), []),
                requested_strategy=deployment_strategy,
            )
            for i in order
        ]
    )


def _all_candidates(
    advisor: Advisor, env: str, resources: list[str], strategy: str | None
) -> tuple[list[str], list[int]]:
    """Every known pattern (of ``strategy``), with its evidence tier in ``env``: the ones
    run there first, then by runs anywhere, at most ``MAX_MODEL_CANDIDATES``."""
    wanted = frozenset(resources)
    by_pattern = advisor.snapshot.bundles.get(env, {})
    ids = [
        p
        for p, pattern in advisor.snapshot.patterns.items()
        if not strategy or pattern.deployment_strategy == strategy
    ]

    def tier(p: str) -> int:
        bundles = by_pattern.get(p)
        if bundles is None:
            return 3
        return 1 if any(wanted <= b for b in bundles) else 2

    tiers = {p: tier(p) for p in ids}
    runs = {p: advisor.snapshot.key("pattern", p).runs for p in ids}
    ids = sorted(ids, key=lambda p: (tiers[p], -runs[p], p))[:MAX_MODEL_CANDIDATES]
    return ids, [tiers[p] for p in ids]


def _candidates(
    advisor: Advisor, env: str, resources: list[str], strategy: str | None
) -> tuple[list[str], int]:
    wanted = frozenset(resources)
    by_pattern = advisor.snapshot.bundles.get(env, {})
    tiers = (
        [p for p, bundles in by_pattern.items() if any(wanted <= b for b in bundles)],
        list(by_pattern),
        list(advisor.snapshot.patterns),
    )
    for tier, ids in enumerate(tiers, start=1):
        ids = [p for p in ids if p in advisor.snapshot.patterns]
        if strategy:
            ids = [p for p in ids if advisor.snapshot.patterns[p].deployment_strategy == strategy]
        if ids:
            runs = {p: advisor.snapshot.key("pattern_environment", p, env).runs for p in ids}
            ids = sorted(ids, key=lambda p: (-runs[p], p))[:MAX_CANDIDATES]
            return ids, tier
    return [], 1


def _prior(
    advisor: Advisor, planned: pd.DataFrame, gateway_host: str | None, tier: int
) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Per candidate: the model's probability (gateway-averaged) and its input on the
    most used gateway, or the empirical probability and no input."""
    n = len(planned)
    if advisor.models is not None:
        p, X = advisor.model_probability(planned, gateway_host)
        return p, [advisor.models.describe(ranking=True)] * n, X
    env = str(planned["target_environment"].iloc[0])
    resources = list(planned["resources_deployed"].iloc[0])
    s, f, _ = advisor.snapshot.context_counts(env, resources)
    env_stats = advisor.snapshot.key("environment", env)
    rate, source = empirical_prior(
        (s, f), (env_stats.successes, env_stats.failures), advisor.snapshot.global_counts
    )
    p = np.full(n, rate)
    sources = [f"{source} success rate (no trained model)"] * n
    if tier > 1 and advisor.similarity is not None:
        neighbours = _similarity_prior(advisor, list(planned["pattern_id"]))
        for i, value in enumerate(neighbours):
            if not np.isnan(value):
                p[i], sources[i] = value, "similar patterns' success rates (cold start)"
    return p, sources, None


def _similarity_prior(advisor: Advisor, pattern_ids: list[str]) -> np.ndarray:
    assert advisor.similarity is not None
    vectors = advisor.snapshot.knobs.reindex(pattern_ids)
    try:
        return np.asarray(advisor.similarity.predict(vectors), dtype=np.float64)
    except (KeyError, ValueError):
        return np.full(len(pattern_ids), np.nan)


def _knob_effects(
    advisor: Advisor, planned: pd.DataFrame, X: np.ndarray
) -> dict[int, list[KnobEffect]]:
    """Per candidate: how much P(success) it would lose if each knob took the
    environment's typical value (a counterfactual on the champion, not a causal claim).
    ``X`` is the candidates' model input (on the requested or most used gateway)."""
    env = str(planned["target_environment"].iloc[0])
    profile = advisor.profile(env)
    typical = profile.typical_knobs.reindex(advisor.snapshot.knobs.columns).to_numpy(float)
    knob_index = advisor.snapshot.knobs.index
    variants: list[tuple[int, int, str]] = []
    blocks: list[np.ndarray] = []
    for j, pattern_id in enumerate(planned["pattern_id"]):
        row = knob_index.get_indexer([pattern_id])[0]
        if row < 0:
            continue
        for key, variant in advisor.knob_variants(X[j], advisor.snapshot.knob_values[row], typical):
            blocks.append(variant)
            variants.append((int(planned.index[j]), j, key))
    if not blocks:
        return {}
    p = advisor.probability(np.vstack([X, *blocks]), ranking=True)
    base, what_if = p[: len(X)], p[len(X) :]
    groups = knob_groups(advisor.snapshot.knobs.columns)
    out: dict[int, list[KnobEffect]] = {}
    for (position, j, key), q in zip(variants, what_if, strict=True):
        delta = float(base[j] - q)
        if abs(delta) < MIN_EFFECT:
            continue
        config = advisor.snapshot.patterns[str(planned["pattern_id"].iloc[j])]
        template = config.configuration_template
        out.setdefault(position, []).append(
            KnobEffect(
                knob=_template_key(template, key),
                value=_template_value(template, key),
                typical_value=advisor.knob_value(profile.typical_knobs, groups[key], key),
                effect=round(delta, 4),
            )
        )
    for effects in out.values():
        effects.sort(key=lambda e: -abs(e.effect))
    return out


def _recommendation(
    advisor: Advisor,
    row: pd.Series,
    *,
    tier: int,
    prior: float,
    prior_source: str,
    decayed: tuple[float, float],
    mean: float,
    confidence: float,
    interval: tuple[float, float],
    effects: list[KnobEffect],
    requested_strategy: str | None,
) -> Recommendation:
    pattern = advisor.snapshot.patterns[str(row["pattern_id"])]
    env = str(row["target_environment"])
    in_env = advisor.snapshot.key("pattern_environment", pattern.pattern_id, env)
    s_ctx, f_ctx, n_ctx = advisor.snapshot.context_counts(
        env, list(row["resources_deployed"]), pattern.pattern_id
    )
    overall = advisor.snapshot.key("pattern", pattern.pattern_id)
    reasons = _reasons(
        env=env,
        resources=list(row["resources_deployed"]),
        tier=tier,
        context=(s_ctx, f_ctx),
        in_env=(in_env.successes, in_env.failures),
        decayed=decayed,
        prior=prior,
        prior_source=prior_source,
        half_life=advisor.blend.half_life_days,
        effects=effects,
        requested_strategy=requested_strategy,
        strategy=pattern.deployment_strategy,
    )
    s, f = in_env.successes, in_env.failures
    family_id, family_name = pattern_family(
        pattern.deployment_strategy, pattern.configuration_template
    )
    return Recommendation(
        pattern_id=pattern.pattern_id,
        pattern_name=pattern.pattern_name,
        pattern_family=family_name,
        pattern_family_id=family_id,
        untried=tier == 3,
        deployment_strategy=pattern.deployment_strategy,
        configuration_template=pattern.configuration_template,
        success_probability=round(mean, 4),
        model_probability=round(prior, 4),
        prior_source=prior_source,
        confidence_score=round(confidence, 4),
        credible_interval=(round(interval[0], 4), round(interval[1], 4)),
        success_rate=round(s / (s + f), 4) if s + f else None,
        success_count=int(s),
        failure_count=int(f),
        context_runs=int(n_ctx),
        overall_success_count=int(overall.successes),
        overall_failure_count=int(overall.failures),
        evidence_weight=round(decayed[0] + decayed[1], 2),
        last_used=_iso(overall.last_start),
        applicability_reasons=reasons,
        knob_effects=effects[:5],
        similar_patterns=advisor.similar_patterns(pattern.pattern_id),
    )


def _template_key(template: dict[str, Any], key: str) -> str:
    for name in template:
        if column_name("cfg", name) == f"cfg__{key}":
            return name
    return key


def _template_value(template: dict[str, Any], key: str) -> Any:
    return template.get(_template_key(template, key))


def _iso(micros_value: int) -> str | None:
    if micros_value == np.iinfo(np.int64).min:
        return None
    return str(pd.Timestamp(micros_value, unit="us", tz=UTC).isoformat())


def _reasons(
    *,
    env: str,
    resources: list[str],
    tier: int,
    context: tuple[float, float],
    in_env: tuple[float, float],
    decayed: tuple[float, float],
    prior: float,
    prior_source: str,
    half_life: float,
    effects: list[KnobEffect],
    requested_strategy: str | None,
    strategy: str,
) -> list[str]:
    """Why a pattern fits, in plain words: context match, evidence, model, risk factors."""
    wanted = ", ".join(resources)
    s_ctx, f_ctx = context
    s_env, f_env = in_env
    reasons = []
    if tier == 1:
        reasons.append(
            f"context match: {int(s_ctx + f_ctx)} runs in {env} deploying {wanted} "
            f"({int(s_ctx)} succeeded, {int(f_ctx)} failed)"
        )
    elif tier == 2:
        reasons.append(
            f"used in {env} ({int(s_env + f_env)} runs) but never with all of {wanted}: "
            "the probability leans on the model and similar deployments"
        )
    else:
        reasons.append(
            f"untried: never run in {env}; judged from {prior_source} on its own settings "
            "(wide interval; see similar_patterns for the nearest evidence)"
        )
    if requested_strategy:
        reasons.append(f"matches the requested strategy {strategy}")
    if s_env + f_env:
        reasons.append(
            f"evidence in {env}: {int(s_env)} successes and {int(f_env)} failures "
            f"(weight {decayed[0] + decayed[1]:.1f}"
            + (f" after a {half_life:g}-day half-life decay)" if np.isfinite(half_life) else ")")
        )
    reasons.append(f"prior P(success) {prior:.2f} from the {prior_source}")
    helps = [e for e in effects if e.effect > 0][:2]
    hurts = [e for e in effects if e.effect < 0][:1]
    for e in helps:
        reasons.append(
            f"risk avoided: {e.knob}={e.value} instead of the {env} norm "
            f"{e.typical_value} (+{e.effect:.2f} P(success))"
        )
    for e in hurts:
        reasons.append(
            f"risk factor: {e.knob}={e.value} ({e.effect:+.2f} vs the {env} norm "
            f"{e.typical_value})"
        )
    return reasons
