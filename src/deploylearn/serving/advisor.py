"""``Advisor``: one loaded history and champion, shared by the two model-served questions.

Built once (``Advisor.build``: the history folded into a ``HistorySnapshot``, the champion
loaded), then each answer costs a few milliseconds: candidates come from the snapshot's
indexes, features from its per-key counts, probabilities from one model call. The questions
live in their own modules, ``serving.recommend`` (which patterns to use) and
``serving.predict`` (how risky a planned deployment is); ``Advisor.recommend`` and
``Advisor.predict`` are their entry points. What both need stays here: the model input of a
row, the champion's (or its ranking twin's) probability, the knob counterfactuals, the
environment profiles that fill what a request leaves unsaid, the unknown-value check and the
answer's provenance fields.

Every answer names what the store has never seen (``serving.unknowns``: ``unknown``,
``did_you_mean``, ``warnings``) and whether the champion learned from this store
(``model_provenance``; a refused champion is not passed in, see ``serving.models``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd

from deploylearn.domain.answers.recommendations import SimilarPattern
from deploylearn.domain.answers.served import BlendSettings, ModelInfo, ServedAnswer
from deploylearn.domain.identity import PatternIndex
from deploylearn.domain.records import DeploymentPattern
from deploylearn.features._columns import column_name
from deploylearn.features.config import knob_groups
from deploylearn.models.similarity import PatternSimilarity
from deploylearn.serving import predict as predict_question
from deploylearn.serving import recommend as recommend_question
from deploylearn.serving.blend import NO_MODEL, BlendParams
from deploylearn.serving.failures import FailureIndex
from deploylearn.serving.models import ModelProvenance, ServingModels
from deploylearn.serving.profiles import EMPTY_PROFILE, EnvironmentProfile, ProfileCounts
from deploylearn.serving.snapshot import HistorySnapshot
from deploylearn.serving.unknowns import Vocabulary
from deploylearn.store.base import EXECUTION_FRAME_DTYPES

SIMILAR = 3
_EMPTY_FRAME = pd.DataFrame(
    {name: pd.Series(dtype=dtype) for name, dtype in EXECUTION_FRAME_DTYPES.items()}
)


@dataclass
class Advisor:
    """Answers ``recommend`` and ``predict`` from a snapshot and (optionally) the champion."""

    snapshot: HistorySnapshot
    models: ServingModels | None
    profiles: dict[str, EnvironmentProfile]
    profile_counts: ProfileCounts
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
        counts = ProfileCounts()
        counts.add(frame)
        advisor = cls(
            snapshot=snapshot,
            models=models,
            profiles={},
            profile_counts=counts,
            similarity=None,
            index=index,
            failures=FailureIndex.build(frame, snapshot.at),
            issue_text=_issue_text(issues),
            blend=blend,
            boolean_knobs=_boolean_knobs(patterns),
            vocabulary=Vocabulary.build(frame, patterns),
            provenance=provenance,
        )
        advisor._refresh_derived(set(counts.by_environment))
        return advisor

    # -- keeping up with writes -------------------------------------------------------------
    def fold(
        self,
        frame: pd.DataFrame | None = None,
        patterns: Sequence[DeploymentPattern] | None = None,
        *,
        issues: pd.DataFrame | None = None,
        at: datetime | None = None,
    ) -> None:
        """Add executions just written (``Store.executions_frame_of`` of their ids) without
        a rebuild, and move on to ``at`` (default: ``serving_time`` of the history with these
        rows): the answers then equal those of ``Advisor.build`` over the whole history at
        that instant. ``patterns``: the store's patterns, when the rows created some;
        ``issues``: its issues, when the rows added some. No frame: only time moves on."""
        when = at or self.next_serving_time(frame)
        if patterns is not None and any(p.pattern_id not in self.index for p in patterns):
            for p in patterns:
                self.index.add(p.pattern_id, p.deployment_strategy, p.configuration_template)
            self.snapshot.set_patterns(patterns)
            self.boolean_knobs = _boolean_knobs(patterns)
            self._positions = None
            touched = set(self.profile_counts.by_environment)  # knob columns may have changed
        else:
            touched = set()
        rows = frame if frame is not None else _EMPTY_FRAME
        self.snapshot.fold(rows, when)
        touched |= self.profile_counts.add(rows)
        self.failures = self.failures.fold(rows, self.snapshot.at)
        if self.vocabulary is not None and len(rows):
            self.vocabulary = self.vocabulary.including(rows, patterns or [])
        if issues is not None:
            self.issue_text = _issue_text(issues)
        if len(rows) or touched:
            self._refresh_derived(touched)

    def next_serving_time(self, frame: pd.DataFrame | None = None) -> pd.Timestamp:
        """``serving_time`` of the history plus ``frame``'s rows, never before ``at``."""
        now = pd.Timestamp(datetime.now(UTC))
        candidates = [_newest(frame)] if frame is not None and len(frame) else []
        if self.snapshot.rows:
            candidates.append(pd.Timestamp(self.snapshot.newest * 1000, tz=UTC))
        if not candidates:
            return max(self.snapshot.at, now)
        return max(self.snapshot.at, min(now, max(candidates) + pd.Timedelta(seconds=1)))

    def _refresh_derived(self, environments: set[str]) -> None:
        """What follows from the counts: the profiles of ``environments``, the knob-only
        similarity (rates moved), the similar-pattern cache."""
        for env in environments:
            self.profiles[env] = self.profile_counts.profile(env, self.snapshot.knobs)
        self.similarity = self.models.similarity if self.models is not None else None
        if self.similarity is None and len(self.snapshot.knobs):
            self.similarity = _knob_similarity(self.snapshot, self.blend.prior_strength)
        self._similar_cache.clear()

    # -- the two questions, each in its own module ------------------------------------------
    recommend = recommend_question.recommend
    predict = predict_question.predict

    # -- shared by both questions: model input, probabilities, counterfactuals --------------
    def model_probability(
        self, planned: pd.DataFrame, gateway_host: str | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ranking P(success) of ``planned`` rows, run-weighted over the environment's
        gateways when none is given, and the model input on the first (most used) one."""
        env = str(planned["target_environment"].iloc[0])
        gateways: Sequence[tuple[str | None, float]] = (
            [(gateway_host, 1.0)] if gateway_host else self.profile(env).gateways
        )
        if not gateways:
            gateways = [(None, 1.0)]
        assert self.models is not None
        X = self.snapshot.gateway_matrix(
            planned,
            [host for host, _ in gateways],
            self.models.feature_names,
            self.models.node_embeddings,
        )
        if "started_at" in planned:
            rows = pd.concat([planned] * len(gateways), ignore_index=True)
            self._planned_time(X, rows)
        p = self.probability(X, ranking=True).reshape(len(gateways), len(planned))
        weights = np.array([w for _, w in gateways], dtype=np.float64)
        return weights @ p / weights.sum(), X[: len(planned)]

    def matrix(self, rows: pd.DataFrame, knob_rows: pd.DataFrame | None = None) -> np.ndarray:
        """Model input; a planned ``started_at`` sets the hour and weekday features."""
        assert self.models is not None
        X = self.snapshot.candidate_matrix(
            rows, self.models.feature_names, self.models.node_embeddings, knob_rows
        )
        if "started_at" in rows:
            self._planned_time(X, rows)
        return X

    def _planned_time(self, X: np.ndarray, rows: pd.DataFrame) -> None:
        """A planned ``started_at`` sets the rows' hour and weekday features."""
        assert self.models is not None
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

    def probability(self, X: np.ndarray, *, ranking: bool = False) -> np.ndarray:
        """The champion's P(success); ``ranking``: by its ranking twin, which recommendations
        rank configurations with (``SuccessModel.ranking_probability``)."""
        assert self.models is not None
        success = self.models.success
        if ranking and hasattr(success, "ranking_probability"):
            return cast(np.ndarray, success.ranking_probability(X))
        return cast(np.ndarray, success.success_probability(X))

    def knob_variants(
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
        for key, names in knob_groups(columns).items():
            pairs = [(columns.index(c), layout.position[c]) for c in names if c in layout.position]
            if pairs:
                source[key] = np.array([j for j, _ in pairs])
                target[key] = np.array([i for _, i in pairs])
        self._positions = (source, target)
        return self._positions

    def unknowns(self, **context: Any) -> dict[str, Any]:
        """``unknown``, ``did_you_mean`` and ``warnings`` for a request (``serving.unknowns``)."""
        if self.vocabulary is None:
            return {}
        return self.vocabulary.check(**context).as_answer()

    def profile(self, env: str) -> EnvironmentProfile:
        """The environment's habits (an empty profile for an environment never seen)."""
        return self.profiles.get(env) or EMPTY_PROFILE

    def similar_patterns(self, pattern_id: str) -> list[SimilarPattern]:
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

    def knob_value(self, values: pd.Series, columns: list[str], key: str) -> Any:
        """A knob's value from its knob-table columns, as a person would write it: a number,
        a boolean, a level name, or None when the knob is not set."""
        # Series.get per column: a reindex cost ~1 ms, and answers ask this per knob
        picked = np.array([values.get(c, np.nan) for c in columns], dtype=np.float64)
        if len(columns) == 1 and columns[0] == f"cfg__{key}":
            value = float(picked[0])
            if np.isnan(value):
                return None
            if key in self.boolean_knobs and value in (0.0, 1.0):
                return bool(value)
            return int(value) if value.is_integer() else round(value, 4)
        if np.isnan(picked).all():
            return None
        best = int(np.nanargmax(picked))  # the first of equal maxima, as idxmax
        return columns[best].split("__", 2)[-1] if picked[best] >= 0.5 else None

    def meta(self) -> ServedAnswer:
        """The fields every model-served answer carries: champion, provenance, blend, time."""
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
                prior_strength=_finite(self.blend.prior_strength),
                half_life_days=_finite(self.blend.half_life_days),
            ),
        )


def _finite(value: float) -> float | None:
    """JSON has no infinity: an infinite setting is null in the answer (as ``--json`` always
    printed it)."""
    return value if math.isfinite(value) else None


def serving_time(frame: pd.DataFrame) -> pd.Timestamp:
    """Now, or one second after the newest start/completion if the history ends before now."""
    now = pd.Timestamp(datetime.now(UTC))
    if not len(frame):
        return now
    return min(now, _newest(frame) + pd.Timedelta(seconds=1))


def _newest(frame: pd.DataFrame) -> pd.Timestamp:
    """The latest start or completion of a non-empty frame."""
    return max(
        pd.Timestamp(frame["started_at"].max()),
        pd.Timestamp(frame["completed_at"].max())
        if frame["completed_at"].notna().any()
        else pd.Timestamp(frame["started_at"].max()),
    )


def _issue_text(issues: pd.DataFrame | None) -> dict[str, str]:
    if issues is None or not len(issues):
        return {}
    return dict(zip(issues["issue_id"], issues["normalized"], strict=True))


def _boolean_knobs(patterns: Sequence[DeploymentPattern]) -> frozenset[str]:
    """Knob columns whose templates hold booleans (shown as true/false, not 1/0)."""
    return frozenset(
        column_name(key)
        for p in patterns
        for key, value in p.configuration_template.items()
        if isinstance(value, bool)
    )


def _knob_similarity(snapshot: HistorySnapshot, prior_strength: float) -> PatternSimilarity:
    """Knob-only similarity for when no champion brought one (embeddings need training)."""
    ids = list(snapshot.knobs.index)
    runs = np.array([snapshot.key("pattern", p).runs for p in ids])
    s = np.array([snapshot.key("pattern", p).successes for p in ids])
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(runs > 0, s / runs, np.nan)
    model = PatternSimilarity(prior_strength=prior_strength, embedding_weight=0.0)
    return model.fit(snapshot.knobs, rates, runs)


def _differs(own: np.ndarray, typical: np.ndarray) -> np.ndarray:
    """Element-wise: the values differ (NaN equals NaN: both unset)."""
    both_nan = np.isnan(own) & np.isnan(typical)
    return cast(np.ndarray, ~both_nan & ~np.isclose(own, typical))



