"""Serving: the snapshot matches training features, the blend, recommendations and predict."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson
import pandas as pd
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.demo import demo_records
from deploylearn.domain.records import DeploymentPattern, parse_planned
from deploylearn.features import features_for_candidates, training_frame_from_history
from deploylearn.models.success import SuccessModel
from deploylearn.serving.advisor import Advisor, serving_time
from deploylearn.serving.blend import (
    BlendParams,
    empirical_prior,
    posterior,
)
from deploylearn.serving.models import ServingModels
from deploylearn.serving.predict import planned_rows
from deploylearn.serving.snapshot import HistorySnapshot
from deploylearn.serving.stats import wilson_lower_bounds
from tests.conftest import failed_record, make_record

N = 6000


@dataclass(frozen=True)
class History:
    url: str
    frame: pd.DataFrame
    patterns: list[DeploymentPattern]
    models: ServingModels


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    url = f"duckdb://{tmp_path_factory.mktemp('serving') / 'store.duckdb'}"
    with DeploymentPatternLearner.open(url, use_model=False) as learner:
        for records in demo_records(N, seed=1, days=120, batch_size=N):
            learner.record_executions(records, batch_size=N)
        frame, patterns = learner.store.executions_frame(), learner.store.patterns()
    tf = training_frame_from_history(frame, patterns, embeddings="numpy")
    model = SuccessModel(max_iter=60, min_samples_leaf=40, calibration="sigmoid").fit(tf.X, tf.y)
    models = ServingModels(
        success=model,
        feature_names=tf.feature_names,
        version="test",
        run_id=None,
        blend=BlendParams(prior_strength=10.0, half_life_days=30.0),
        node_embeddings=tf.node_embeddings,
    )
    yield History(url, frame, patterns, models)


# ------------------------------------------------------------------ snapshot
def test_snapshot_features_equal_training_features_at_the_same_instant(history: History) -> None:
    frame, models = history.frame, history.models
    at = frame["started_at"].max() + pd.Timedelta(hours=2)
    rows = frame.sample(30, random_state=0)[
        [
            "pattern_id",
            "target_environment",
            "gateway_host",
            "resources_deployed",
            "source_environment",
            "deployment_type",
            "automation_triggered",
            "deployment_strategy",
        ]
    ].reset_index(drop=True)
    rows.loc[0, "gateway_host"] = "never-seen-gateway"
    rows.at[1, "resources_deployed"] = ["project", "brand_new_resource"]
    rows.loc[2, "source_environment"] = None
    expected = features_for_candidates(
        frame,
        history.patterns,
        rows,
        feature_names=models.feature_names,
        node_embeddings=models.node_embeddings,
        at=at.to_pydatetime(),
    )
    snapshot = HistorySnapshot.build(frame, history.patterns, at=at)
    got = snapshot.candidate_features(rows, models.feature_names, models.node_embeddings)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-5, atol=1e-3)


def test_gateway_matrix_equals_one_candidate_matrix_per_gateway(history: History) -> None:
    """Recommendations score every pattern on each gateway; computing only the gateway's own
    columns per gateway must give exactly the rows of the full computation."""
    frame, models = history.frame, history.models
    snapshot = HistorySnapshot.build(frame, history.patterns)
    planned = frame.sample(40, random_state=3)[
        ["pattern_id", "target_environment", "resources_deployed", "deployment_strategy"]
    ].reset_index(drop=True)
    planned = planned.assign(source_environment="staging", deployment_type="update")
    gateways = [*frame["gateway_host"].value_counts().index[:4], "never-seen-gateway", None]
    got = snapshot.gateway_matrix(planned, gateways, models.feature_names, models.node_embeddings)
    rows = pd.concat([planned.assign(gateway_host=g) for g in gateways], ignore_index=True)
    expected = snapshot.candidate_matrix(rows, models.feature_names, models.node_embeddings)
    np.testing.assert_array_equal(got, expected)
    target = snapshot.layout(models.feature_names).embedding("gateway")
    assert target is not None and np.isnan(got[4 * 40 :, target]).all()  # no vector: NaN


def test_snapshot_counts_only_what_was_known_before_at(history: History) -> None:
    frame = history.frame
    at = frame["started_at"].iloc[len(frame) // 2]
    snapshot = HistorySnapshot.build(frame, history.patterns, at=at)
    pattern = frame["pattern_id"].iloc[0]
    known = frame["completed_at"].fillna(frame["started_at"])
    mine = (frame["pattern_id"] == pattern) & (known < at)
    stats = snapshot.key("pattern", pattern)
    assert stats.successes == int((mine & (frame["outcome"] == "success")).sum())
    assert stats.failures == int((mine & (frame["outcome"] == "failure")).sum())


# ------------------------------------------------------------------ blend
def test_posterior_prior_dominates_without_evidence_and_data_with_it() -> None:
    p = np.array([0.9, 0.9])
    post = posterior(p, np.array([0.0, 5.0]), np.array([0.0, 95.0]), prior_strength=10.0)
    assert post.mean[0] == pytest.approx(0.9)
    assert post.mean[1] < 0.2  # 95 failures outweigh a confident prior
    low, high = post.quantile([0.05, 0.95])
    assert (low < post.mean).all() and (post.mean < high).all()
    assert high[0] - low[0] > high[1] - low[1]  # more evidence, narrower interval


def test_empirical_prior_falls_back_through_the_hierarchy() -> None:
    assert empirical_prior((30, 10), (100, 100), (1, 1)) == (0.75, "context")
    assert empirical_prior((3, 1), (60, 40), (1, 1)) == (0.6, "environment")
    assert empirical_prior((0, 0), (1, 0), (8, 2)) == (0.8, "global")
    assert empirical_prior((0, 0), (0, 0), (0, 0)) == (0.5, "uninformative")


def test_wilson_lower_bound_penalizes_small_samples() -> None:
    low = wilson_lower_bounds(np.array([1, 90, 0]), np.array([1, 100, 0]))
    assert low[0] < low[1] and low[2] == 0.0
    assert 0.82 < low[1] < 0.9


# ------------------------------------------------------------------ recommendations
def test_recommendations_without_a_model_count_failures(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"duckdb://{tmp_path / 'small.duckdb'}"
    good = [make_record(i) for i in range(20)]
    bad = [
        failed_record(100 + i, configuration_used={"backup_enabled": False, "timeout": 5})
        for i in range(25)
    ]
    popular_but_bad = bad + [
        make_record(200 + i, configuration_used={"backup_enabled": False, "timeout": 5})
        for i in range(30)
    ]
    with DeploymentPatternLearner.open(url, use_model=False) as learner:
        learner.record_executions(good + popular_but_bad)
        answer = learner.get_deployment_recommendations("Production", ["database", "project"])
    orjson.dumps(answer)  # JSON-serializable as returned
    assert answer["model"] is None and answer["candidates"] == 2
    first, second = answer["recommendations"]
    assert first["success_count"] == 20 and first["failure_count"] == 0
    assert second["success_count"] == 30 and second["failure_count"] == 25
    assert first["success_probability"] > second["success_probability"]
    low, high = first["credible_interval"]
    assert low < first["success_probability"] < high
    assert "no trained model" in first["prior_source"]
    assert any("context match" in r for r in first["applicability_reasons"])


def test_recommendations_with_the_champion(history: History) -> None:
    advisor = Advisor.build(history.frame, history.patterns, models=history.models)
    answer = advisor.recommend("production", ["project"], limit=3).model_dump(mode="json")
    orjson.dumps(answer)
    assert answer["model"]["version"] == "test"
    recs = answer["recommendations"]
    assert len(recs) == 3
    assert answer["ranked_by"] == "mean"  # the fixture's BlendParams default
    assert [r["success_probability"] for r in recs] == sorted(
        (r["success_probability"] for r in recs), reverse=True
    )
    careful = advisor.recommend(
        "production", ["project"], limit=3, risk_averse=True
    ).model_dump(mode="json")
    assert careful["ranked_by"] == "lower_quantile"
    assert [r["confidence_score"] for r in careful["recommendations"]] == sorted(
        (r["confidence_score"] for r in careful["recommendations"]), reverse=True
    )
    for r in recs:
        assert 0 < r["model_probability"] < 1
        assert r["credible_interval"][0] <= r["success_probability"] <= r["credible_interval"][1]
        assert r["similar_patterns"], "the knob similarity always has neighbours"
    # a strategy filter only returns that strategy
    canary = advisor.recommend(
        "production", ["project"], deployment_strategy="canary"
    ).model_dump(mode="json")
    assert {r["deployment_strategy"] for r in canary["recommendations"]} == {"canary"}


def test_every_known_configuration_is_a_candidate_untried_ones_labelled(
    history: History,
) -> None:
    """With a model, configurations never run in the environment compete too (issue 13.3)."""
    advisor = Advisor.build(history.frame, history.patterns, models=history.models)
    prod = history.frame[history.frame["target_environment"] == "production"]
    canary = {p.pattern_id for p in history.patterns if p.deployment_strategy == "canary"}
    answer = advisor.recommend(
        "production", ["project"], deployment_strategy="canary", limit=len(canary), explain=False
    ).model_dump(mode="json")
    recs = answer["recommendations"]
    assert {r["pattern_id"] for r in recs} == canary
    untried = [r for r in recs if r["untried"]]
    assert {r["pattern_id"] for r in untried} == canary - set(prod["pattern_id"])
    assert untried, "the demo world has canary configurations never run in production"
    for r in untried:
        assert r["success_count"] == r["failure_count"] == 0
        assert any(text.startswith("untried") for text in r["applicability_reasons"])
        assert r["similar_patterns"], "the nearest evidence is listed"
        assert r["pattern_family"].startswith("canary")
    widths = {r["untried"]: r["credible_interval"][1] - r["credible_interval"][0] for r in recs}
    assert widths[True] > widths[False]  # the last of each kind: untried is less certain


def test_recommendations_rank_by_the_ranking_twin_and_predict_does_not(history: History) -> None:
    """Issue 13.3: candidate configurations are scored by the champion's ranking twin (no
    configuration track record here); ``predict`` keeps the champion's own probability."""
    from dataclasses import replace

    from deploylearn.models.success import CONFIGURATION_HISTORY, NONSTATIONARY_FEATURES

    tf = training_frame_from_history(history.frame, history.patterns, embeddings="numpy")
    narrow = (*NONSTATIONARY_FEATURES, CONFIGURATION_HISTORY)
    model = SuccessModel(
        max_iter=60, min_samples_leaf=40, calibration="none", ranking_exclude_features=narrow
    ).fit(tf.X, tf.y)
    assert model.ranking_ is not None
    models = replace(history.models, success=model, blend=BlendParams())  # no blend: p as is
    advisor = Advisor.build(history.frame, history.patterns, models=models)
    answer = advisor.recommend(
        "production", ["project"], limit=10, explain=False
    ).model_dump(mode="json")
    recs = answer["recommendations"]
    shown = [r["model_probability"] for r in recs]
    assert shown == sorted(shown, reverse=True)  # ordered by the probability it shows
    assert all(r["prior_source"].endswith("(its ranking twin)") for r in recs)
    ids = [r["pattern_id"] for r in recs]
    profile = advisor.profile("production")
    planned = pd.DataFrame(
        {
            "pattern_id": ids,
            "target_environment": "production",
            "resources_deployed": [["project"]] * len(ids),
            "deployment_strategy": [advisor.snapshot.patterns[p].deployment_strategy for p in ids],
            "source_environment": profile.source_environment,
            "deployment_type": profile.deployment_type,
            "automation_triggered": profile.automation_triggered,
        },
        dtype=object,
    )
    twin, X = advisor.model_probability(planned, None)
    assert np.allclose(shown, np.round(twin, 4))
    assert not np.allclose(model.success_probability(X), model.ranking_probability(X))

    row = history.frame.iloc[-1]
    plan = parse_planned(
        {
            "target_environment": row["target_environment"],
            "deployment_strategy": row["deployment_strategy"],
            "gateway_host": row["gateway_host"],
            "resources_deployed": list(row["resources_deployed"]),
            "configuration_used": advisor.snapshot.patterns[
                row["pattern_id"]
            ].configuration_template,
        }
    )
    prediction = advisor.predict([plan]).model_dump(mode="json")["predictions"][0]
    rows, knobs, _ = planned_rows(advisor, [plan])
    expected = model.success_probability(advisor.matrix(rows, knobs))[0]
    assert prediction["model_probability"] == round(float(expected), 4)
    assert "twin" not in prediction["prior_source"]


def test_choose_blend_keeps_the_model_unless_counts_add_information() -> None:
    from deploylearn.serving.blend import choose_blend

    rng = np.random.default_rng(0)
    n = 4000
    truth = rng.uniform(0.2, 0.9, n)
    y = (rng.random(n) < truth).astype(float)
    runs = rng.integers(0, 60, n).astype(float)
    s = rng.binomial(runs.astype(int), truth).astype(float)
    counts = {np.inf: (s, runs - s)}
    honest, table = choose_blend(truth, y, counts)
    assert not honest.blends  # the model already knows p: counts are noise on top
    assert np.isinf(table.iloc[0]["prior_strength"])
    blind, _ = choose_blend(np.full(n, y.mean()), y, counts)
    assert blind.blends  # a model that misses the per-pattern effect gains from counts


def test_predict_without_configuration_uses_what_the_strategy_ran(history: History) -> None:
    """Issue 12.3: a plan with no configuration is scored as the configurations that strategy
    actually used in that environment, weighted by runs, and the answer says so."""
    advisor = Advisor.build(history.frame, history.patterns, models=history.models)

    def plan(strategy: str) -> dict:
        return advisor.predict(
            [
                parse_planned(
                    {
                        "target_environment": "production",
                        "deployment_strategy": strategy,
                        "resources_deployed": ["project"],
                    }
                )
            ]
        ).model_dump(mode="json")["predictions"][0]

    direct, blue_green = plan("direct"), plan("blue_green")
    assert "direct used in production" in direct["configuration_assumed"]
    prod = history.frame[history.frame["target_environment"] == "production"]
    rate = {
        strategy: float((runs["outcome"] == "success").mean())
        for strategy, runs in prod.groupby("deployment_strategy")
    }
    assert rate["direct"] < rate["blue_green"]
    assert direct["success_probability"] < blue_green["success_probability"]
    assert abs(direct["success_probability"] - rate["direct"]) < 0.15


def test_unseen_context_is_a_cold_start_and_says_so(history: History) -> None:
    advisor = Advisor.build(history.frame, history.patterns)
    answer = advisor.recommend(
        "production", ["project", "never_deployed_resource"]
    ).model_dump(mode="json")
    assert "not yet with all requested resources" in answer["candidate_tier"]
    assert answer["recommendations"]
    unknown = advisor.recommend("moon_base", ["project"]).model_dump(mode="json")
    assert "cold start" in unknown["candidate_tier"]
    reasons = unknown["recommendations"][0]["applicability_reasons"]
    assert any("cold start" in r for r in reasons)


def test_bad_arguments_raise_value_errors(history: History) -> None:
    advisor = Advisor.build(history.frame, history.patterns)
    with pytest.raises(ValueError, match="limit"):
        advisor.recommend("production", ["project"], limit=0).model_dump(mode="json")
    with pytest.raises(ValueError, match="resource"):
        advisor.recommend("production", []).model_dump(mode="json")


def test_serving_time_is_now_or_just_after_the_history() -> None:
    frame = pd.DataFrame(
        {
            "started_at": pd.to_datetime(["2025-01-01T00:00:00Z"]),
            "completed_at": pd.to_datetime(["2025-01-01T00:10:00Z"]),
        }
    )
    assert serving_time(frame) == pd.Timestamp("2025-01-01T00:10:01Z")
    assert serving_time(frame.iloc[:0]) <= pd.Timestamp(datetime.now(UTC))


# ------------------------------------------------------------------ predict
def test_predict_explains_a_risky_plan(history: History) -> None:
    advisor = Advisor.build(history.frame, history.patterns, models=history.models)
    risky = parse_planned(
        {
            "target_environment": "production",
            "deployment_strategy": "direct",
            "resources_deployed": "project,database",
            "configuration": {"backup_enabled": False, "timeout": 10, "ssl_validation": False},
        }
    )
    # The blue-green configuration with the most successes in production (identity is exact,
    # so the most successful one overall may never have run there).
    frame = history.frame
    in_prod = frame[(frame["target_environment"] == "production") & (frame["outcome"] == "success")]
    wins = in_prod[in_prod["deployment_strategy"] == "blue_green"]["pattern_id"].value_counts()
    safe_template = next(p for p in history.patterns if p.pattern_id == wins.index[0])
    safe = parse_planned(
        {
            "target_environment": "production",
            "deployment_strategy": "blue_green",
            "resources_deployed": ["project", "database"],
            "configuration_used": safe_template.configuration_template,
        }
    )
    answer = advisor.predict([risky, safe]).model_dump(mode="json")
    orjson.dumps(answer)
    bad, good = answer["predictions"]
    assert bad["known_pattern"] is False and good["known_pattern"] is True
    assert bad["success_probability"] < good["success_probability"]
    assert bad["failure_risk"] == pytest.approx(1 - bad["success_probability"], abs=1e-4)
    assert bad["risk_factors"], "a plan without backup or SSL in production has risks"
    assert bad["risk_factors"][0]["risk_reduction"] >= bad["risk_factors"][-1]["risk_reduction"]
    assert bad["similar_past_failures"]
    assert all(f["execution_id"] for f in bad["similar_past_failures"])


def test_predict_validation_names_field_and_position(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from deploylearn.errors import InvalidRecordError

    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 's.duckdb'}") as learner:
        ok = {
            "target_environment": "prod",
            "deployment_strategy": "direct",
            "resources_deployed": ["project"],
        }
        with pytest.raises(InvalidRecordError) as caught:
            learner.predict_success([ok, {**ok, "resources_deployed": []}])
    problem = caught.value.problems[0]
    assert problem.field == "resources_deployed" and problem.line == 2


def test_an_empty_store_answers_without_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'empty.duckdb'}") as learner:
        answer = learner.get_deployment_recommendations("production", ["project"])
        assert answer["recommendations"] == [] and "no deployment history" in answer["notes"][0]
        risk = learner.predict_success(
            {
                "target_environment": "production",
                "deployment_strategy": "direct",
                "resources_deployed": ["project"],
            }
        )
    prediction = risk["predictions"][0]
    assert (
        prediction["success_probability"] == 0.5 and "uninformative" in prediction["prior_source"]
    )
    assert prediction["similar_past_failures"] == []
