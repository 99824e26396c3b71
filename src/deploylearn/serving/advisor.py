"""``Advisor``: recommendations and risk predictions from one loaded history and champion.

Built once (``Advisor.build``: the history folded into a ``HistorySnapshot``, the champion
loaded), then each answer costs a few milliseconds: candidates come from the snapshot's
indexes, features from its per-key counts, probabilities from one model call.

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

``predict`` with no configuration: the configuration is taken to be one of those the strategy
actually used in that environment (any environment if never there), and the probability is
the model's, averaged over them weighted by their runs; the answer says so
(``configuration_assumed``). Likewise a missing gateway is averaged over the environment's.

Every answer also names what the store has never seen (``serving.unknowns``: ``unknown``,
``did_you_mean``, ``warnings``) and whether the champion learned from this store
(``model_provenance``; a refused champion is not passed in, see ``serving.models``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd

from deploylearn.domain.answers.prediction import (
    PastFailure,
    Prediction,
    PredictionAnswer,
    RiskFactor,
)
from deploylearn.domain.answers.recommendations import (
    KnobEffect,
    Ranking,
    Recommendation,
    RecommendationContext,
    Recommendations,
    SimilarPattern,
)
from deploylearn.domain.answers.served import BlendSettings, ModelInfo, ServedAnswer
from deploylearn.domain.identity import PatternIndex, canonical_template, pattern_family
from deploylearn.domain.records import DeploymentPattern, PlannedDeployment
from deploylearn.features._columns import column_name
from deploylearn.features.config import knob_row
from deploylearn.models.similarity import PatternSimilarity
from deploylearn.serving.blend import (
    CONFIDENCE_QUANTILE,
    INTERVAL,
    NO_MODEL,
    BlendParams,
    empirical_prior,
    posterior,
)
from deploylearn.serving.failures import FailureIndex
from deploylearn.serving.models import ModelProvenance, ServingModels
from deploylearn.serving.snapshot import HistorySnapshot
from deploylearn.serving.unknowns import Vocabulary

MAX_CANDIDATES = 200  # without a model: tier fallbacks
MAX_MODEL_CANDIDATES = 2000  # with a model: every known pattern, the most used first
MAX_GATEWAYS = 12
MAX_ASSUMED_CONFIGURATIONS = 50
MIN_EFFECT = 0.01  # a knob's effect on P(success) below this is not worth a sentence
SIMILAR = 3
TIERS = {
    1: "run in {env} with all requested resources",
    2: "run in {env}, not yet with all requested resources",
    3: "never run in {env} (cold start)",
}


@dataclass(frozen=True)
class EnvironmentProfile:
    """What a request leaves unsaid, filled from the environment's habits."""

    gateways: list[tuple[str, float]]  # (host, share of runs), most used first
    source_environment: str | None
    deployment_type: str | None
    automation_triggered: bool
    typical_knobs: pd.Series  # median knob values over the environment's runs


@dataclass
class Advisor:
    """Answers ``recommend`` and ``predict`` from a snapshot and (optionally) the champion."""

    snapshot: HistorySnapshot
    models: ServingModels | None
    profiles: dict[str, EnvironmentProfile]
    similarity: PatternSimilarity | None
    index: PatternIndex
    failures: FailureIndex
    issue_text: dict[str, str] = field(default_factory=dict)
    blend: BlendParams = field(default_factory=BlendParams)
    boolean_knobs: frozenset[str] = frozenset()  # knob keys whose templates hold booleans
    vocabulary: Vocabulary | None = None  # what the history has seen (None: not checked)
    provenance: ModelProvenance | None = None  # whether the champion learned from this store
    _similar_cache: dict[str, list[SimilarPattern]] = field(default_factory=dict, repr=False)
    _positions: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = field(
        default=None, repr=False
    )

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        frame: pd.DataFrame,
        patterns: Sequence[DeploymentPattern],
        *,
        models: ServingModels | None = None,
        at: datetime | None = None,
        issues: pd.DataFrame | None = None,
        provenance: ModelProvenance | None = None,
    ) -> Advisor:
        """Fold ``frame`` (``Store.executions_frame()``) as of ``at``.

        ``at`` defaults to ``serving_time(frame)``: now, or just after the newest record if
        the history ends earlier (a replayed or demo history is served as of its own end).
        """
        blend = models.blend if models is not None else NO_MODEL
        when = at or serving_time(frame)
        snapshot = HistorySnapshot.build(
            frame, patterns, at=when, half_life_days=blend.half_life_days
        )
        index = PatternIndex()
        for p in patterns:
            index.add(p.pattern_id, p.deployment_strategy, p.configuration_template)
        similarity = models.similarity if models is not None else None
        if similarity is None and len(snapshot.knobs):
            similarity = _knob_similarity(snapshot, blend.prior_strength)
        text = {}
        if issues is not None and len(issues):
            text = dict(zip(issues["issue_id"], issues["normalized"], strict=True))
        return cls(
            snapshot=snapshot,
            models=models,
            profiles=_profiles(frame, snapshot),
            similarity=similarity,
            index=index,
            failures=FailureIndex.build(frame, snapshot.at),
            issue_text=text,
            blend=blend,
            boolean_knobs=frozenset(
                column_name(key)
                for p in patterns
                for key, value in p.configuration_template.items()
                if isinstance(value, bool)
            ),
            vocabulary=Vocabulary.build(frame, patterns),
            provenance=provenance,
        )

    # -- recommendations --------------------------------------------------------------------
    def recommend(
        self,
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
        if self.models is not None:
            ids, tiers = self._all_candidates(env, resources, deployment_strategy)
            tier = min(tiers) if tiers else 1
        else:
            ids, tier = self._candidates(env, resources, deployment_strategy)
            tiers = [tier] * len(ids)
        rank_by = (
            self.blend.rank_by
            if risk_averse is None
            else ("lower_quantile" if risk_averse else "mean")
        )
        meta = self._meta()
        unknown = self._unknowns(
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
            known = ", ".join(self.snapshot.environments()) or "none"
            return answer(
                [],
                [
                    f"no pattern matches (strategy {deployment_strategy!r})"
                    if deployment_strategy
                    else f"no deployment history at all (environments known: {known})"
                ],
            )
        profile = self._profile(env)
        planned = pd.DataFrame(
            {
                "pattern_id": ids,
                "target_environment": env,
                "resources_deployed": [resources] * len(ids),
                "deployment_strategy": [self.snapshot.patterns[p].deployment_strategy for p in ids],
                "source_environment": source_environment or profile.source_environment,
                "deployment_type": deployment_type or profile.deployment_type,
                "automation_triggered": profile.automation_triggered,
            },
            dtype=object,  # plain Python values: Arrow-backed strings cost more than they save here
        )
        prior, prior_source, X = self._prior(planned, gateway_host, tier)
        decayed = np.array([self.snapshot.decayed_counts(p, env) for p in ids]).reshape(-1, 2)
        post = posterior(prior, decayed[:, 0], decayed[:, 1], self.blend.prior_strength)
        mean = post.mean
        confidence = post.quantile(CONFIDENCE_QUANTILE)[0]
        if rank_by == "mean":
            order = np.lexsort((np.asarray(ids), -confidence, -mean))[:limit]
        else:
            order = np.lexsort((np.asarray(ids), -mean, -confidence))[:limit]
        interval = post.quantile(INTERVAL)
        effects = (
            self._knob_effects(planned.iloc[order], X[order]) if X is not None and explain else {}
        )
        return answer(
            [
                self._recommendation(
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
        self, env: str, resources: list[str], strategy: str | None
    ) -> tuple[list[str], list[int]]:
        """Every known pattern (of ``strategy``), with its evidence tier in ``env``: the ones
        run there first, then by runs anywhere, at most ``MAX_MODEL_CANDIDATES``."""
        wanted = frozenset(resources)
        by_pattern = self.snapshot.bundles.get(env, {})
        ids = [
            p
            for p, pattern in self.snapshot.patterns.items()
            if not strategy or pattern.deployment_strategy == strategy
        ]

        def tier(p: str) -> int:
            bundles = by_pattern.get(p)
            if bundles is None:
                return 3
            return 1 if any(wanted <= b for b in bundles) else 2

        tiers = {p: tier(p) for p in ids}
        runs = {p: self.snapshot.key("pattern", p).runs for p in ids}
        ids = sorted(ids, key=lambda p: (tiers[p], -runs[p], p))[:MAX_MODEL_CANDIDATES]
        return ids, [tiers[p] for p in ids]

    def _candidates(
        self, env: str, resources: list[str], strategy: str | None
    ) -> tuple[list[str], int]:
        wanted = frozenset(resources)
        by_pattern = self.snapshot.bundles.get(env, {})
        tiers = (
            [p for p, bundles in by_pattern.items() if any(wanted <= b for b in bundles)],
            list(by_pattern),
            list(self.snapshot.patterns),
        )
        for tier, ids in enumerate(tiers, start=1):
            ids = [p for p in ids if p in self.snapshot.patterns]
            if strategy:
                ids = [p for p in ids if self.snapshot.patterns[p].deployment_strategy == strategy]
            if ids:
                runs = {p: self.snapshot.key("pattern_environment", p, env).runs for p in ids}
                ids = sorted(ids, key=lambda p: (-runs[p], p))[:MAX_CANDIDATES]
                return ids, tier
        return [], 1

    def _prior(
        self, planned: pd.DataFrame, gateway_host: str | None, tier: int
    ) -> tuple[np.ndarray, list[str], np.ndarray | None]:
        """Per candidate: the model's probability (gateway-averaged) and its input on the
        most used gateway, or the empirical probability and no input."""
        n = len(planned)
        if self.models is not None:
            p, X = self._model_probability(planned, gateway_host)
            return p, [self.models.describe(ranking=True)] * n, X
        env = str(planned["target_environment"].iloc[0])
        resources = list(planned["resources_deployed"].iloc[0])
        s, f, _ = self.snapshot.context_counts(env, resources)
        env_stats = self.snapshot.key("environment", env)
        rate, source = empirical_prior(
            (s, f), (env_stats.successes, env_stats.failures), self.snapshot.global_counts
        )
        p = np.full(n, rate)
        sources = [f"{source} success rate (no trained model)"] * n
        if tier > 1 and self.similarity is not None:
            neighbours = self._similarity_prior(list(planned["pattern_id"]))
            for i, value in enumerate(neighbours):
                if not np.isnan(value):
                    p[i], sources[i] = value, "similar patterns' success rates (cold start)"
        return p, sources, None

    def _model_probability(
        self, planned: pd.DataFrame, gateway_host: str | None
    ) -> tuple[np.ndarray, np.ndarray]:
        env = str(planned["target_environment"].iloc[0])
        gateways: Sequence[tuple[str | None, float]] = (
            [(gateway_host, 1.0)] if gateway_host else self._profile(env).gateways
        )
        if not gateways:
            gateways = [(None, 1.0)]
        rows = pd.concat(
            [planned.assign(gateway_host=host) for host, _ in gateways], ignore_index=True
        )
        X = self._matrix(rows)
        p = self._probability(X, ranking=True).reshape(len(gateways), len(planned))
        weights = np.array([w for _, w in gateways], dtype=np.float64)
        return weights @ p / weights.sum(), X[: len(planned)]

    def _matrix(self, rows: pd.DataFrame, knob_rows: pd.DataFrame | None = None) -> np.ndarray:
        """Model input; a planned ``started_at`` sets the hour and weekday features."""
        assert self.models is not None
        X = self.snapshot.candidate_matrix(
            rows, self.models.feature_names, self.models.node_embeddings, knob_rows
        )
        if "started_at" in rows:
            planned_at = pd.to_datetime(rows["started_at"], utc=True)
            has = planned_at.notna().to_numpy()
            layout = self.snapshot.layout(self.models.feature_names)
            for column, values in (
                ("hour", planned_at.dt.hour),
                ("weekday", planned_at.dt.day_of_week),
            ):
                position = layout.position.get(column)
                if position is not None and has.any():
                    X[has, position] = values[has].to_numpy(dtype=np.float32)
        return X

    def _probability(self, X: np.ndarray, *, ranking: bool = False) -> np.ndarray:
        """The champion's P(success); ``ranking``: by its ranking twin, which recommendations
        rank configurations with (``SuccessModel.ranking_probability``)."""
        assert self.models is not None
        success = self.models.success
        if ranking and hasattr(success, "ranking_probability"):
            return cast(np.ndarray, success.ranking_probability(X))
        return cast(np.ndarray, success.success_probability(X))

    def _knob_variants(
        self, x: np.ndarray, own: np.ndarray, typical: np.ndarray
    ) -> list[tuple[str, np.ndarray]]:
        """For each knob whose value differs from the environment's typical one: the model
        input ``x`` with that knob set to the typical value (``own``/``typical``: knob-table
        rows). The counterfactuals behind knob effects and risk factors."""
        source, target = self._knob_positions()
        differs = _differs(own, typical)
        out = []
        for key, columns in source.items():
            if differs[columns].any():
                variant = x.copy()
                variant[target[key]] = typical[columns]
                out.append((key, variant))
        return out

    def _knob_positions(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per knob key: its knob-table columns and their positions in the model's input
        (fixed for a snapshot and a model, so computed once)."""
        if self._positions is not None:
            return self._positions
        assert self.models is not None
        layout = self.snapshot.layout(self.models.feature_names)
        columns = list(self.snapshot.knobs.columns)
        source: dict[str, np.ndarray] = {}
        target: dict[str, np.ndarray] = {}
        for key, names in _knob_groups(columns).items():
            pairs = [(columns.index(c), layout.position[c]) for c in names if c in layout.position]
            if pairs:
                source[key] = np.array([j for j, _ in pairs])
                target[key] = np.array([i for _, i in pairs])
        self._positions = (source, target)
        return self._positions

    def _knob_effects(
        self, planned: pd.DataFrame, X: np.ndarray
    ) -> dict[int, list[KnobEffect]]:
        """Per candidate: how much P(success) it would lose if each knob took the
        environment's typical value (a counterfactual on the champion, not a causal claim).
        ``X`` is the candidates' model input (on the requested or most used gateway)."""
        env = str(planned["target_environment"].iloc[0])
        profile = self._profile(env)
        typical = profile.typical_knobs.reindex(self.snapshot.knobs.columns).to_numpy(float)
        knob_index = self.snapshot.knobs.index
        variants: list[tuple[int, int, str]] = []
        blocks: list[np.ndarray] = []
        for j, pattern_id in enumerate(planned["pattern_id"]):
            row = knob_index.get_indexer([pattern_id])[0]
            if row < 0:
                continue
            for key, variant in self._knob_variants(X[j], self.snapshot.knob_values[row], typical):
                blocks.append(variant)
                variants.append((int(planned.index[j]), j, key))
        if not blocks:
            return {}
        p = self._probability(np.vstack([X, *blocks]), ranking=True)
        base, what_if = p[: len(X)], p[len(X) :]
        groups = _knob_groups(self.snapshot.knobs.columns)
        out: dict[int, list[KnobEffect]] = {}
        for (position, j, key), q in zip(variants, what_if, strict=True):
            delta = float(base[j] - q)
            if abs(delta) < MIN_EFFECT:
                continue
            config = self.snapshot.patterns[str(planned["pattern_id"].iloc[j])]
            template = config.configuration_template
            out.setdefault(position, []).append(
                KnobEffect(
                    knob=_template_key(template, key),
                    value=_template_value(template, key),
                    typical_value=self._knob_value(profile.typical_knobs, groups[key], key),
                    effect=round(delta, 4),
                )
            )
        for effects in out.values():
            effects.sort(key=lambda e: -abs(e.effect))
        return out

    def _recommendation(
        self,
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
        pattern = self.snapshot.patterns[str(row["pattern_id"])]
        env = str(row["target_environment"])
        in_env = self.snapshot.key("pattern_environment", pattern.pattern_id, env)
        s_ctx, f_ctx, n_ctx = self.snapshot.context_counts(
            env, list(row["resources_deployed"]), pattern.pattern_id
        )
        overall = self.snapshot.key("pattern", pattern.pattern_id)
        reasons = _reasons(
            env=env,
            resources=list(row["resources_deployed"]),
            tier=tier,
            context=(s_ctx, f_ctx),
            in_env=(in_env.successes, in_env.failures),
            decayed=decayed,
            prior=prior,
            prior_source=prior_source,
            half_life=self.blend.half_life_days,
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
            similar_patterns=self._similar(pattern.pattern_id),
        )

    # -- predict ----------------------------------------------------------------------------
    def predict(self, planned: Iterable[PlannedDeployment]) -> PredictionAnswer:
        """Risk of each planned deployment: probability, interval, risk factors, past failures.

        A missing configuration or gateway is averaged over what that strategy and environment
        actually used (module docstring); the primary row (the most used of them) carries the
        pattern id and the risk factors.
        """
        items = list(planned)
        meta = dict(self._meta())
        if not items:
            return PredictionAnswer(**meta, predictions=[])
        rows, knob_rows, known = self._planned_rows(items)
        variants, variant_knobs, owner, weight, assumed = self._variants(items, rows, knob_rows)
        variant_known = variants["pattern_id"].map(lambda p: p in self.snapshot.patterns)
        if self.models is not None:
            p_variant = self._probability(self._matrix(variants, variant_knobs))
            sources = [self.models.describe()] * len(items)
        else:
            p_variant = np.zeros(len(variants))
            sources = []
            for i, item in enumerate(items):
                prior, source = self._empirical(item)
                p_variant[owner == i] = prior
                sources.append(source)
        decayed = np.array(
            [
                self.snapshot.decayed_counts(pid, env) if ok else (0.0, 0.0)
                for pid, env, ok in zip(
                    variants["pattern_id"],
                    variants["target_environment"],
                    variant_known,
                    strict=True,
                )
            ]
        ).reshape(-1, 2)
        post = posterior(p_variant, decayed[:, 0], decayed[:, 1], self.blend.prior_strength)
        per_variant = np.vstack([post.mean, post.quantile(INTERVAL), p_variant, decayed.sum(1)])
        totals = np.bincount(owner, weights=weight, minlength=len(items))
        averaged = np.vstack(
            [np.bincount(owner, weights=weight * v, minlength=len(items)) for v in per_variant]
        ) / np.maximum(totals, 1e-12)
        primary_p = p_variant[self._primary(owner, weight, len(items))]
        factors = self._risk_factors(rows, knob_rows, primary_p) if self.models else {}
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
                    similar_past_failures=self._similar_failures(rows.iloc[i]),
                    configuration_assumed=assumed.get(i),
                    **self._unknowns(
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

    def _unknowns(self, **context: Any) -> dict[str, Any]:
        """``unknown``, ``did_you_mean`` and ``warnings`` for a request (``serving.unknowns``)."""
        if self.vocabulary is None:
            return {}
        return self.vocabulary.check(**context).as_answer()

    @staticmethod
    def _primary(owner: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
        """Per item, the position of its heaviest variant (the first one on ties)."""
        order = np.lexsort((-weight, owner))
        first = np.r_[True, owner[order][1:] != owner[order][:-1]]
        out = np.zeros(n, dtype=np.int64)
        out[owner[order][first]] = order[first]
        return out

    def _assumed_configurations(
        self, item: PlannedDeployment
    ) -> tuple[list[str], list[float], str]:
        """Patterns the strategy used in the environment (else anywhere), weighted by runs."""
        env, strategy = item.target_environment, item.deployment_strategy
        ids = [p for p, x in self.snapshot.patterns.items() if x.deployment_strategy == strategy]
        for prefix, where in (("pattern_environment", f"in {env}"), ("pattern", "anywhere")):
            keys = (env,) if prefix == "pattern_environment" else ()
            runs = {p: self.snapshot.key(prefix, p, *keys).runs for p in ids}
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
        self,
        items: list[PlannedDeployment],
        rows: pd.DataFrame,
        knob_rows: pd.DataFrame,
    ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray, dict[int, str]]:
        """The rows to score per item (owner, weight): the item itself, or one per assumed
        configuration x gateway when the plan leaves them out. Rows are replaced in place:
        ``rows`` gets the heaviest assumed configuration as its primary row."""
        columns = list(self.snapshot.knobs.columns)
        out, knobs, owner, weight = [], [], [], []
        assumed: dict[int, str] = {}
        for i, item in enumerate(items):
            configs: list[tuple[str | None, float]] = [(None, 1.0)]
            unknown = rows["pattern_id"].iloc[i] not in self.snapshot.patterns
            if not item.configuration_used and unknown:
                ids, runs, text = self._assumed_configurations(item)
                assumed[i] = text
                if ids:
                    configs = list(zip(ids, runs, strict=True))
                    rows.loc[i, "pattern_id"] = ids[0]
                    knob_rows.loc[i] = self.snapshot.knobs.loc[ids[0]].reindex(columns).to_numpy()
            gateways = [(rows["gateway_host"].iloc[i], 1.0)]
            if item.gateway_host is None:
                gateways = self._profile(item.target_environment).gateways or gateways
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
                        else self.snapshot.knobs.loc[pattern_id].reindex(columns)
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

    def _planned_rows(
        self, items: list[PlannedDeployment]
    ) -> tuple[pd.DataFrame, pd.DataFrame, list[bool]]:
        records, knob_rows, known = [], [], []
        for i, item in enumerate(items):
            template = canonical_template(item.configuration_used)
            pattern_id = self.index.match(item.deployment_strategy, template)
            known.append(pattern_id is not None and pattern_id in self.snapshot.patterns)
            profile = self._profile(item.target_environment)
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
            knob_rows.append(knob_row(template, list(self.snapshot.knobs.columns)))
        rows = pd.DataFrame(records)
        return rows, pd.DataFrame(knob_rows, index=rows.index), known

    def _empirical(self, item: PlannedDeployment) -> tuple[float, str]:
        s, f, _ = self.snapshot.context_counts(item.target_environment, item.resources_deployed)
        env_stats = self.snapshot.key("environment", item.target_environment)
        rate, source = empirical_prior(
            (s, f), (env_stats.successes, env_stats.failures), self.snapshot.global_counts
        )
        return rate, f"{source} success rate (no trained model)"

    def _risk_factors(
        self, rows: pd.DataFrame, knob_rows: pd.DataFrame, p: np.ndarray
    ) -> dict[int, list[RiskFactor]]:
        """What lowers each planned deployment's probability, by counterfactual on the model:
        each knob at the environment's typical value, and an average gateway of the
        environment in place of this one. Largest risks first."""
        assert self.models is not None
        X = self._matrix(rows, knob_rows)
        layout = self.snapshot.layout(self.models.feature_names)
        groups = _knob_groups(self.snapshot.knobs.columns)
        knob_values = knob_rows.reindex(columns=self.snapshot.knobs.columns).to_numpy(float)
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
            profile = self._profile(str(rows["target_environment"].iloc[i]))
            typical = profile.typical_knobs.reindex(self.snapshot.knobs.columns).to_numpy(float)
            own = pd.Series(knob_values[i], index=self.snapshot.knobs.columns)
            for key, variant in self._knob_variants(X[i], knob_values[i], typical):
                blocks.append(variant)
                variants.append(
                    (
                        i,
                        "configuration",
                        key,
                        self._knob_value(own, groups[key], key),
                        self._knob_value(profile.typical_knobs, groups[key], key),
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
        what_if = self._probability(np.vstack(blocks))
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

    def _similar_failures(self, row: pd.Series) -> list[PastFailure]:
        known = not str(row["pattern_id"]).startswith("\x00")
        found = self.failures.similar(
            environment=str(row["target_environment"]),
            pattern_id=str(row["pattern_id"]) if known else None,
            strategy=str(row["deployment_strategy"]),
            gateway=row["gateway_host"],
            resources=list(row["resources_deployed"]),
            issue_text=self.issue_text,
        )
        return [PastFailure(**failure) for failure in found]

    # -- shared -----------------------------------------------------------------------------
    def _profile(self, env: str) -> EnvironmentProfile:
        return self.profiles.get(env) or EnvironmentProfile(
            gateways=[],
            source_environment=None,
            deployment_type=None,
            automation_triggered=False,
            typical_knobs=pd.Series(dtype=np.float64),
        )

    def _similarity_prior(self, pattern_ids: list[str]) -> np.ndarray:
        assert self.similarity is not None
        vectors = self.snapshot.knobs.reindex(pattern_ids)
        try:
            return np.asarray(self.similarity.predict(vectors), dtype=np.float64)
        except (KeyError, ValueError):
            return np.full(len(pattern_ids), np.nan)

    def _similar(self, pattern_id: str) -> list[SimilarPattern]:
        """The nearest patterns (cached: the similarity model is fixed for a snapshot)."""
        if pattern_id not in self._similar_cache:
            self._similar_cache[pattern_id] = self._nearest(pattern_id)
        return self._similar_cache[pattern_id]

    def _nearest(self, pattern_id: str) -> list[SimilarPattern]:
        if self.similarity is None:
            return []
        try:
            table = self.similarity.similar(pattern_id, SIMILAR)
        except KeyError:
            return []
        out = []
        for row in table.itertuples(index=False):
            other = self.snapshot.patterns.get(str(row.pattern_id))
            out.append(
                SimilarPattern(
                    pattern_id=str(row.pattern_id),
                    pattern_name=other.pattern_name if other else None,
                    similarity=round(float(row.similarity), 3),
                    smoothed_success_rate=round(float(row.smoothed_rate), 4),
                    runs=int(row.runs),
                )
            )
        return out

    def _knob_value(self, values: pd.Series, columns: list[str], key: str) -> Any:
        """A knob's value from its knob-table columns, as a person would write it: a number,
        a boolean, a level name, or None when the knob is not set."""
        picked = values.reindex(columns)
        if len(columns) == 1 and columns[0] == f"cfg__{key}":
            value = picked.iloc[0]
            if pd.isna(value):
                return None
            if key in self.boolean_knobs and value in (0.0, 1.0):
                return bool(value)
            return int(value) if float(value).is_integer() else round(float(value), 4)
        if picked.isna().all():
            return None
        best = picked.idxmax()
        return str(best).split("__", 2)[-1] if picked.max() >= 0.5 else None

    def _meta(self) -> ServedAnswer:
        models = self.models
        provenance = self.provenance
        return ServedAnswer(
            model_provenance=None if provenance is None else provenance.as_answer(),
            warnings=[provenance.warning] if provenance and provenance.warning else [],
            as_of=self.snapshot.at.isoformat(),
            model=None
            if models is None
            else ModelInfo(
                name="deploylearn-success",
                version=models.version,
                run_id=models.run_id,
                trained_until=models.trained_until,
            ),
            blend=BlendSettings(
                prior_strength=self.blend.prior_strength,
                half_life_days=self.blend.half_life_days,
            ),
        )


def serving_time(frame: pd.DataFrame) -> pd.Timestamp:
    """Now, or one second after the newest start/completion if the history ends before now."""
    now = pd.Timestamp(datetime.now(UTC))
    if not len(frame):
        return now
    newest = max(
        pd.Timestamp(frame["started_at"].max()),
        pd.Timestamp(frame["completed_at"].max())
        if frame["completed_at"].notna().any()
        else pd.Timestamp(frame["started_at"].max()),
    )
    return min(now, newest + pd.Timedelta(seconds=1))


def _profiles(frame: pd.DataFrame, snapshot: HistorySnapshot) -> dict[str, EnvironmentProfile]:
    out: dict[str, EnvironmentProfile] = {}
    if not len(frame):
        return out
    knobs = snapshot.knobs
    for env, runs in frame.groupby("target_environment", sort=True):
        hosts = runs["gateway_host"].value_counts()
        top = hosts.head(MAX_GATEWAYS)
        typical = knobs.reindex(runs["pattern_id"].astype(object)).median(skipna=True)
        out[str(env)] = EnvironmentProfile(
            gateways=[(str(h), float(c) / float(top.sum())) for h, c in top.items()],
            source_environment=_mode(runs["source_environment"]),
            deployment_type=_mode(runs["deployment_type"]),
            automation_triggered=bool(runs["automation_triggered"].astype(bool).mean() >= 0.5),
            typical_knobs=typical,
        )
    return out


def _mode(values: pd.Series) -> str | None:
    counts = values.dropna().value_counts()
    return str(counts.index[0]) if len(counts) else None


def _knob_similarity(snapshot: HistorySnapshot, prior_strength: float) -> PatternSimilarity:
    """Knob-only similarity for when no champion brought one (embeddings need training)."""
    ids = list(snapshot.knobs.index)
    runs = np.array([snapshot.key("pattern", p).runs for p in ids])
    s = np.array([snapshot.key("pattern", p).successes for p in ids])
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(runs > 0, s / runs, np.nan)
    model = PatternSimilarity(prior_strength=prior_strength, embedding_weight=0.0)
    return model.fit(snapshot.knobs, rates, runs)


def _knob_groups(columns: Iterable[str]) -> dict[str, list[str]]:
    """``cfg__key`` and its ``cfg__key__level`` columns, by key."""
    groups: dict[str, list[str]] = {}
    for column in columns:
        parts = str(column).split("__")
        groups.setdefault(parts[1] if len(parts) > 1 else str(column), []).append(str(column))
    return groups


def _template_key(template: dict[str, Any], key: str) -> str:
    for name in template:
        if column_name("cfg", name) == f"cfg__{key}":
            return name
    return key


def _template_value(template: dict[str, Any], key: str) -> Any:
    return template.get(_template_key(template, key))


def _differs(own: np.ndarray, typical: np.ndarray) -> np.ndarray:
    """Element-wise: the values differ (NaN equals NaN: both unset)."""
    both_nan = np.isnan(own) & np.isnan(typical)
    return cast(np.ndarray, ~both_nan & ~np.isclose(own, typical))


def _show(value: Any) -> str:
    return (
        "not set"
        if value is None
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


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
