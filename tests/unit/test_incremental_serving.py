"""A serving state that folds writes in answers as a fresh build over the whole history would.

The history is cut: the state is built on its first part, then the rest arrives in steps
(in time order, plus a backfill of old runs, plus runs still in flight when they arrive), the
clock moving on past the recent window; after each step every count, profile, failure, the
vocabulary and the answers equal those of ``Advisor.build`` over everything at that instant.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.demo import demo_records
from deploylearn.domain.records import DeploymentPattern, parse_planned
from deploylearn.features import training_frame_from_history
from deploylearn.models.success import SuccessModel
from deploylearn.serving.advisor import Advisor
from deploylearn.serving.blend import BlendParams
from deploylearn.serving.models import ServingModels
from deploylearn.serving.snapshot import HistorySnapshot

N = 3000
DAYS = 90


@dataclass(frozen=True)
class History:
    url: str
    frame: pd.DataFrame
    patterns: list[DeploymentPattern]
    issues: pd.DataFrame
    models: ServingModels


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    url = f"duckdb://{tmp_path_factory.mktemp('incremental') / 'store.duckdb'}"
    with DeploymentPatternLearner.open(url, use_model=False) as learner:
        for records in demo_records(N, seed=3, days=DAYS, batch_size=N):
            learner.record_executions(records, batch_size=N)
        frame, patterns = learner.store.executions_frame(), learner.store.patterns()
        issues = learner.store.issues()
    tf = training_frame_from_history(frame, patterns, embeddings="numpy")
    model = SuccessModel(max_iter=30, min_samples_leaf=40, calibration="sigmoid").fit(tf.X, tf.y)
    models = ServingModels(
        success=model,
        feature_names=tf.feature_names,
        version="test",
        run_id=None,
        blend=BlendParams(prior_strength=10.0, half_life_days=20.0),
        node_embeddings=tf.node_embeddings,
    )
    yield History(url, frame, patterns, issues, models)


def _steps(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[pd.DataFrame, pd.Timestamp]]]:
    """The first third as the built history; the rest in ten steps, each with its instant."""
    start = frame["started_at"]
    first, last = start.min(), start.max()
    cut = first + (last - first) / 3
    base = frame[start < cut]
    backfill = base.sample(25, random_state=1)  # old runs that arrive late
    base = base.drop(backfill.index)
    rest = frame[start >= cut]
    edges = pd.date_range(cut, last + pd.Timedelta(hours=1), periods=11)
    steps = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        rows = rest[(rest["started_at"] >= lo) & (rest["started_at"] < hi)]
        if i == 4:
            rows = pd.concat([rows, backfill])
        steps.append((rows, hi))
    return base, steps


def _close(a: Any, b: Any, path: str = "") -> None:
    """Equal, floats to 1e-9 relative (decayed counts are scaled, not recomputed)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9), path
    else:
        assert a == b, path


def _same_snapshot(folded: HistorySnapshot, fresh: HistorySnapshot) -> None:
    assert folded.at == fresh.at
    for prefix, table in fresh.stats.items():
        assert folded.stats[prefix] == table, prefix  # counts are whole numbers: exact
    assert folded.bundles == fresh.bundles
    assert folded.global_counts == fresh.global_counts
    assert (folded.first_start, folded.rows, folded.newest) == (
        fresh.first_start,
        fresh.rows,
        fresh.newest,
    )
    assert folded.pattern_first_start == fresh.pattern_first_start
    pd.testing.assert_frame_equal(folded.knobs, fresh.knobs)
    _close(folded.decayed, fresh.decayed)
    _close(folded.decayed_table(7.0), fresh.decayed_table(7.0))


def _same_advisor(folded: Advisor, fresh: Advisor) -> None:
    _same_snapshot(folded.snapshot, fresh.snapshot)
    assert folded.profiles.keys() == fresh.profiles.keys()
    for env, profile in fresh.profiles.items():
        mine = folded.profiles[env]
        assert mine.gateways == profile.gateways, env
        assert (mine.source_environment, mine.deployment_type, mine.automation_triggered) == (
            profile.source_environment,
            profile.deployment_type,
            profile.automation_triggered,
        ), env
        pd.testing.assert_series_equal(mine.typical_knobs, profile.typical_knobs)
    assert folded.vocabulary == fresh.vocabulary
    assert folded.failures.vocabulary == fresh.failures.vocabulary
    assert folded.failures.by_environment.keys() == fresh.failures.by_environment.keys()
    for env, kept in fresh.failures.by_environment.items():
        mine = folded.failures.by_environment[env]
        assert list(mine.execution_id) == list(kept.execution_id), env
        assert list(mine.resources) == list(kept.resources), env
    assert folded.boolean_knobs == fresh.boolean_knobs
    assert folded.issue_text == fresh.issue_text


def _answers(advisor: Advisor) -> list[dict[str, Any]]:
    out = []
    for env in advisor.snapshot.environments():
        out.append(advisor.recommend(env, ["project", "database"]).model_dump(mode="json"))
        planned = parse_planned(
            {
                "target_environment": env,
                "deployment_strategy": "rolling",
                "resources_deployed": ["project"],
                "configuration_used": {"backup_enabled": False},
            }
        )
        out.append(advisor.predict([planned]).model_dump(mode="json"))
    return out


@pytest.mark.parametrize("with_model", [False, True], ids=["counts", "champion"])
def test_folded_writes_answer_as_a_fresh_build(history: History, with_model: bool) -> None:
    frame, models = history.frame, history.models if with_model else None
    base, steps = _steps(frame)
    used = set(base["pattern_id"])
    known_patterns = [p for p in history.patterns if p.pattern_id in used]
    assert len(known_patterns) < len(history.patterns)  # the steps create patterns too
    advisor = Advisor.build(
        base, known_patterns, models=models, at=steps[0][1] - pd.Timedelta(days=20),
        issues=history.issues,
    )
    assert advisor.snapshot._pending, "runs in flight at the cut are waiting for their outcome"
    seen = base
    for rows, at in steps:
        advisor.fold(rows, history.patterns, issues=history.issues, at=at.to_pydatetime())
        seen = pd.concat([seen, rows])
        fresh = Advisor.build(seen, history.patterns, models=models, at=at, issues=history.issues)
        _same_advisor(advisor, fresh)
    _close(_answers(advisor), _answers(fresh))
    # the clock alone: the window slides past every recent outcome
    later = steps[-1][1] + pd.Timedelta(days=40)
    advisor.fold(at=later.to_pydatetime())
    fresh = Advisor.build(seen, history.patterns, models=models, at=later, issues=history.issues)
    _same_advisor(advisor, fresh)
    assert all(s.recent_successes == 0 for s in advisor.snapshot.stats["pattern"].values())
    _close(_answers(advisor), _answers(fresh))


def test_fold_refuses_to_go_back_in_time(history: History) -> None:
    at = pd.Timestamp("2030-01-01", tz="UTC")
    advisor = Advisor.build(history.frame, history.patterns, at=at)
    with pytest.raises(ValueError, match="before the snapshot"):
        advisor.fold(at=pd.Timestamp("2029-01-01", tz="UTC").to_pydatetime())


def test_a_recorded_execution_is_folded_not_rebuilt(history: History, tmp_path: Any) -> None:
    """Through the facade: the serving state stays the same object, sees the new run at
    once, and a retry of the same record changes nothing."""
    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    records = next(demo_records(400, seed=5, days=30, batch_size=400))
    with DeploymentPatternLearner.open(url, use_model=False) as learner:
        learner.record_executions(records[:-3])
        advisor = learner.advisor()
        before = advisor.snapshot.rows
        for record in records[-3:]:
            learner.record_deployment_execution(**record)
            learner.record_deployment_execution(**record)  # a retry: nothing new
        learner.record_executions(records[-3:])  # a batch retry too
        assert learner.advisor() is advisor and advisor.snapshot.rows == before + 3
        folded = _answers(advisor)
        fresh = Advisor.build(
            learner.store.executions_frame(),
            learner.store.patterns(),
            at=advisor.snapshot.at,
            issues=learner.store.issues(),
            provenance=advisor.provenance,
        )
    _same_advisor(advisor, fresh)
    _close(folded, _answers(fresh))


def test_a_failed_write_drops_the_state(history: History, tmp_path: Any) -> None:
    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    records = next(demo_records(50, seed=6, days=10, batch_size=50))
    with DeploymentPatternLearner.open(url, use_model=False) as learner:
        learner.record_executions(records)
        learner.advisor()
        conflicting = {**records[0], "gateway_host": "other-gateway.local"}
        with pytest.raises(Exception, match="execution_id"):
            learner.record_deployment_execution(**conflicting)
        assert learner._advisor is not None  # a conflict writes nothing: the state stays
        learner.store.close()
        with pytest.raises(Exception):  # noqa: B017 - whichever store error it is
            learner.record_deployment_execution(**{**records[1], "execution_id": "new-one"})
        assert learner._advisor is None


def test_every_run_is_counted_once_whatever_the_order(history: History) -> None:
    """Folding one run at a time in shuffled order ends where one fold of all ends."""
    frame = history.frame
    base, _ = _steps(frame)
    rest = frame.drop(base.index).sample(frac=1.0, random_state=2).head(120)
    at = frame["started_at"].max() + pd.Timedelta(hours=2)
    one_by_one = Advisor.build(base, history.patterns, at=base["started_at"].max())
    for i in range(len(rest)):
        one_by_one.fold(rest.iloc[[i]], history.patterns)
    one_by_one.fold(at=at.to_pydatetime())
    fresh = Advisor.build(pd.concat([base, rest]), history.patterns, at=at)
    _same_advisor(one_by_one, fresh)
    assert np.isfinite(one_by_one.snapshot.global_counts).all()
