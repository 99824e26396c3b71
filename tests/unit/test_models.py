"""Models: metrics, baselines, the calibrated success model, similarity and duration quantiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from deploylearn.evaluation.report import KEEP_EMBEDDINGS
from deploylearn.models import (
    BetaPosteriorBaseline,
    DurationModel,
    GlobalRateBaseline,
    PatternSimilarity,
    SeedRankingBaseline,
    SuccessModel,
    brier_score,
    calibration_bins,
    expected_calibration_error,
    log_loss,
    permutation_importances,
    probability_metrics,
    roc_auc,
    select_success_params,
)
from deploylearn.models.baselines import RawFieldsModel, parrot, running_rate
from deploylearn.models.metrics import coverage, pinball_loss, within_group_auc
from deploylearn.models.success import (
    CONFIGURATION_HISTORY,
    EMBEDDING_FEATURES,
    FEATURE_SETS,
    NONSTATIONARY_FEATURES,
    Calibrator,
)

FAST = {"max_iter": 40, "min_samples_leaf": 20, "max_leaf_nodes": 7}


def _logistic(n: int = 3000, seed: int = 0, drift: float = 0.0) -> tuple[pd.DataFrame, pd.Series]:
    """A stationary logistic world (plus optional drifting count column) in time order."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    noise = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(1.2 + 1.5 * a - 0.8 * b + 0.6 * a * b)))
    y = (rng.random(n) < p).astype(np.int64)
    X = pd.DataFrame(
        {
            "signal_a": a,
            "signal_b": b,
            "noise": noise,
            "pattern_successes": np.arange(n) * (1 + drift),  # grows with time
            "pattern_failures": np.arange(n) * 0.2,
        }
    ).astype(np.float32)
    return X, pd.Series(y, name="success")


# ------------------------------------------------------------------ metrics
def test_metric_values_by_hand() -> None:
    y = np.array([1, 0, 1, 1])
    p = np.array([0.9, 0.2, 0.6, 0.4])
    assert brier_score(y, p) == pytest.approx((0.01 + 0.04 + 0.16 + 0.36) / 4)
    assert log_loss(y, p) == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.6, 0.4])))
    assert roc_auc(y, p) == pytest.approx(1.0)
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))
    # confidence 1.0 on a failure: large but finite
    assert np.isfinite(log_loss([0], [1.0])) and log_loss([0], [1.0]) > 13


def test_ece_uses_equal_mass_bins_and_keeps_ties_together() -> None:
    p = np.array([0.1] * 5 + [0.9] * 5)
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
    table = calibration_bins(y, p, n_bins=4)
    assert list(table["count"]) == [5, 5]  # ties never split across bins
    assert expected_calibration_error(y, p, n_bins=4) == pytest.approx(0.1)
    perfect = np.repeat([0.25, 0.75], 4)
    outcomes = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(outcomes, perfect) == pytest.approx(0.0)


def test_within_group_auc_only_compares_inside_groups() -> None:
    y = np.array([1, 0, 1, 0])
    score = np.array([0.9, 0.8, 0.2, 0.1])  # group b scores lower overall
    groups = ["a", "a", "b", "b"]
    assert within_group_auc(y, score, groups) == pytest.approx(1.0)
    assert roc_auc(y, score) == pytest.approx(0.75)
    assert within_group_auc(y, score, ["a", "b", "c", "d"]) != within_group_auc(y, score, groups)


def test_quantile_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    q = np.array([2.0, 2.0, 2.0, 2.0])
    assert coverage(y, q) == pytest.approx(0.5)
    assert pinball_loss(y, q, 0.5) == pytest.approx(np.mean(np.abs(y - q)) / 2)


# ------------------------------------------------------------------ baselines
def test_baselines_read_point_in_time_counts() -> None:
    X = pd.DataFrame(
        {
            "pattern_successes": [0.0, 10.0, 2.0],
            "pattern_failures": [0.0, 0.0, 8.0],
            "pattern_environment_successes": [0.0, 1.0, 1.0],
            "pattern_environment_failures": [0.0, 1.0, 1.0],
        }
    )
    y = pd.Series([1, 1, 0, 1])  # global rate 0.75
    train_X = pd.concat([X, X.iloc[:1]], ignore_index=True)
    glob = GlobalRateBaseline().fit(train_X, y)
    assert glob.predict_proba(X)[:, 1] == pytest.approx([0.75] * 3)
    beta = BetaPosteriorBaseline("pattern", prior_strength=10).fit(train_X, y)
    assert beta.predict_proba(X)[:, 1] == pytest.approx([0.75, (7.5 + 10) / 20, (7.5 + 2) / 20])
    seed = SeedRankingBaseline().fit(train_X, y)
    assert list(seed.predict_proba(X)[:, 1]) == [0.5, 1.0, 1.0]
    assert list(seed.decision_function(X)) == [0.0, 10.0, 2.0]  # ranks by popularity
    with pytest.raises(ValueError, match="pattern_environment_successes"):
        BetaPosteriorBaseline("pattern_environment").fit(X[["pattern_successes"]], y[:3])


def _raw_runs(outcomes: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    """(gateway, resources, minute, success) -> executions-frame rows, time-ordered."""
    base = pd.Timestamp("2026-01-01", tz="UTC")
    return pd.DataFrame(
        {
            "execution_id": [f"r-{i}" for i in range(len(outcomes))],
            "gateway_host": [g for g, _, _, _ in outcomes],
            "resources_deployed": [r.split(",") for _, r, _, _ in outcomes],
            "started_at": [base + pd.Timedelta(minutes=m) for _, _, m, _ in outcomes],
            "outcome": ["success" if ok else "failure" for _, _, _, ok in outcomes],
        }
    )


def test_gateway_rate_and_parrot_see_only_earlier_runs() -> None:
    runs = _raw_runs(
        [
            ("a", "db", 0, 1),
            ("a", "db", 1, 0),
            ("b", "db", 1, 1),
            ("a", "db,project", 2, 1),
            ("a", "db", 2, 1),  # same instant as the row above: they do not see each other
            ("a", "db", 3, 0),
        ]
    )
    everything = np.ones(len(runs), dtype=bool)
    rate = running_rate(runs, everything, ["gateway_host"])
    # prior 1 success in 2 runs; gateway a: before row 1 one success, ...
    assert rate == pytest.approx([1 / 2, 2 / 3, 1 / 2, 2 / 4, 2 / 4, 4 / 6])
    echo = parrot(runs, everything, fallback=0.7)
    assert echo == pytest.approx([0.7, 1.0, 0.7, 0.7, 0.0, 1.0])
    last_two = np.array([False] * 4 + [True] * 2)
    assert running_rate(runs, last_two, ["gateway_host"]) == pytest.approx([2 / 4, 4 / 6])


def test_raw_fields_model_learns_a_knob_of_the_run_itself() -> None:
    rng = np.random.default_rng(1)
    n = 1200
    knob = rng.choice(["fast", "safe"], size=n)
    retries = rng.integers(0, 4, size=n)
    p = np.where(knob == "safe", 0.85, 0.45)
    runs = pd.DataFrame(
        {
            "execution_id": [f"e-{i}" for i in range(n)],
            "target_environment": rng.choice(["plant", "lab"], size=n),
            "deployment_strategy": "wave",
            "gateway_host": rng.choice([f"gw-{i}" for i in range(300)], size=n),  # > 255 levels
            "resources_deployed": [["recipe"]] * n,
            "started_at": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), "h"),
            "outcome": np.where(rng.random(n) < p, "success", "failure"),
        }
    )
    configs = pd.Series(
        [
            {"mode": k, "retries": int(r), "nested": {"on": bool(r % 2)}}
            for k, r in zip(knob, retries, strict=True)
        ],
        index=runs["execution_id"].to_numpy(),
    )
    model = RawFieldsModel().fit(runs.iloc[:900], configs)
    probability = model.predict_proba(runs.iloc[900:], configs)
    safe = knob[900:] == "safe"
    assert probability[safe].mean() - probability[~safe].mean() > 0.25
    assert {"cfgs_mode", "cfg_retries", "cfg_nested.on"} <= set(model.columns_)
    without = RawFieldsModel().fit(runs.iloc[:900]).predict_proba(runs.iloc[900:])
    assert abs(without[safe].mean() - without[~safe].mean()) < 0.1  # no knobs, no signal


# ------------------------------------------------------------------ success model
def test_success_model_follows_the_estimator_contract() -> None:
    X, y = _logistic(1500)
    model = SuccessModel(**FAST, random_state=3)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict_proba(X)
    assert model.fit(X, y) is model
    p = model.predict_proba(X)
    assert p.shape == (len(X), 2) and np.allclose(p.sum(axis=1), 1.0)
    assert set(np.unique(model.predict(X))) <= {0, 1}
    assert list(model.classes_) == [0, 1]
    assert model.calibration_method_ in {"none", "sigmoid", "isotonic"}
    assert set(model.calibration_scores_) == {"none", "sigmoid", "isotonic"}
    # numpy input uses the fitted column order
    assert np.allclose(model.predict_proba(X.to_numpy()), p)
    # same seed, same model
    again = SuccessModel(**FAST, random_state=3).fit(X, y)
    assert np.array_equal(again.predict_proba(X), p)


def test_success_model_leaves_out_nonstationary_features() -> None:
    X, y = _logistic(1500)
    model = SuccessModel(**FAST, calibration="none").fit(X, y)
    assert model.used_features_ == ["signal_a", "signal_b", "noise"]
    everything = SuccessModel(**FAST, calibration="none", exclude_features=()).fit(X, y)
    assert "pattern_successes" in everything.used_features_
    assert len(NONSTATIONARY_FEATURES) >= 4
    with pytest.raises(ValueError, match="no feature"):
        SuccessModel(exclude_features=[".*"]).fit(X, y)


def test_success_model_is_skilful_and_calibrated_on_a_stationary_world() -> None:
    X, y = _logistic(6000, seed=1)
    model = SuccessModel(random_state=0).fit(X.iloc[:4500], y.iloc[:4500])
    p = model.predict_proba(X.iloc[4500:])[:, 1]
    metrics = probability_metrics(y.iloc[4500:], p)
    assert metrics["roc_auc"] > 0.75
    assert metrics["ece"] < 0.05


def test_success_model_rejects_bad_input() -> None:
    X, y = _logistic(300)
    with pytest.raises(ValueError, match="both successes and failures"):
        SuccessModel().fit(X, np.ones(len(X)))
    with pytest.raises(ValueError, match="calibration"):
        SuccessModel(calibration="platt").fit(X, y)
    with pytest.raises(ValueError, match="rows"):
        SuccessModel().fit(X, y[:10])


@pytest.mark.parametrize("row", [0, 2000, 2999])
def test_a_knob_seen_in_one_row_does_not_stop_fitting(row: int) -> None:
    """A feature with one value in one row is all NaN in most fit slices (forward folds, the
    grid's training part, a training period that ends before it): fitting must not fail, and
    the column must not change what the model predicts."""
    X, y = _logistic(3000)
    X["cfg_brand_new_knob"] = np.float32(np.nan)
    X.loc[row, "cfg_brand_new_knob"] = 7.0
    X["cfg_never_set"] = np.float32(np.nan)
    model = SuccessModel(**FAST, random_state=0).fit(X, y)
    without = SuccessModel(**FAST, random_state=0).fit(
        X.drop(columns=["cfg_brand_new_knob", "cfg_never_set"]), y
    )
    # one row cannot make a leaf (min_samples_leaf), so the knob changes no prediction
    assert np.allclose(model.predict_proba(X)[:, 1], without.predict_proba(X)[:, 1])
    best, _ = select_success_params(X, y, [FAST], validation_fraction=0.25)
    assert {k: best[k] for k in FAST} == FAST
    seconds = np.exp(np.random.default_rng(0).normal(6, 0.3, len(X)))
    duration = DurationModel(max_iter=20).fit(X, seconds)
    assert np.isfinite(duration.predict(X.iloc[[row]])).all()


def test_calibrator_maps() -> None:
    scores = np.linspace(0.05, 0.95, 200)
    y = (np.random.default_rng(0).random(200) < scores**2).astype(int)
    for method in ("none", "sigmoid", "isotonic"):
        out = Calibrator.fit(method, scores, y, 0).transform(scores)
        assert out.shape == scores.shape and np.all((out >= 0) & (out <= 1))
    assert np.array_equal(Calibrator.fit("none", scores, y, 0).transform(scores), scores)


def test_select_success_params_scores_only_the_training_period() -> None:
    X, y = _logistic(1200)
    grid = [{"max_iter": 10, "min_samples_leaf": 20}, {"max_iter": 60, "min_samples_leaf": 20}]
    best, table = select_success_params(X, y, grid, validation_fraction=0.25)
    exclusions = ("exclude_features", "ranking_exclude_features")
    assert {k: v for k, v in best.items() if k not in exclusions} in grid
    assert best["exclude_features"] == NONSTATIONARY_FEATURES  # no trend, no embeddings here
    assert best["ranking_exclude_features"] == NONSTATIONARY_FEATURES
    assert len(table) == 2 and table["validation_log_loss"].notna().all()


def test_the_feature_set_is_chosen_per_history() -> None:
    """Issue 13: whether a time trend and the graph embeddings help is a property of the
    store's history, chosen on its validation slice. Here success drifts with time and the
    embedding columns are noise: a set with the trend wins, the chosen exclusions are
    returned, and sets that leave the same columns are fitted once."""
    rng = np.random.default_rng(3)
    n = 4000
    X, _ = _logistic(n)
    days = np.linspace(0, 365, n)
    X["days_since_first_record"] = days.astype(np.float32)
    for j in range(8):
        X[f"emb_pattern_{j}"] = rng.normal(size=n).astype(np.float32)
    p = 1 / (1 + np.exp(-(1.5 * X["signal_a"] - 0.8 * X["signal_b"] + 2.0 - days / 90)))
    y = pd.Series((rng.random(n) < p).astype(np.int64))
    best, table = select_success_params(X, y, [FAST], validation_fraction=0.25)
    assert best["exclude_features"] in (
        FEATURE_SETS["with trend"],
        FEATURE_SETS["with trend, no embeddings"],
    )
    # no column of a configuration's own history here: those sets add no new column set
    assert set(table["features"]) == {n for n in FEATURE_SETS if "configuration" not in n}
    assert table["validation_log_loss"].notna().all()

    # the learning report compares embedding modes: its choice never drops the embeddings
    kept, table = select_success_params(
        X, y, [FAST], validation_fraction=0.25, feature_sets=KEEP_EMBEDDINGS
    )
    assert EMBEDDING_FEATURES not in kept["exclude_features"]
    assert set(table["features"]) == {"stationary", "with trend"}

    plain = X.drop(columns=[c for c in X.columns if c.startswith("emb_")])
    _, table = select_success_params(plain, y, [FAST], validation_fraction=0.25)
    assert len(table) == 2  # no embeddings: "no embeddings" variants add no new column set
    _, table = select_success_params(plain, y, [FAST], validation_fraction=0.25, feature_sets={})
    assert list(table["features"]) == ["stationary"]


def _with_configuration_history(
    n: int, informative: bool, seed: int = 5
) -> tuple[pd.DataFrame, pd.Series]:
    """The logistic world plus a block of ``pattern_`` columns: noise, or the signal itself."""
    X, y = _logistic(n, seed=seed)
    rng = np.random.default_rng(seed + 1000)  # not _logistic's draws
    hidden = rng.normal(size=n)
    for j in range(6):
        X[f"pattern_noise_{j}"] = rng.normal(size=n).astype(np.float32)
    if informative:  # an effect only the configuration's track record reveals
        X["pattern_rate"] = hidden.astype(np.float32)
        p = 1 / (1 + np.exp(-(1.2 + 1.5 * X["signal_a"] + 2.5 * hidden)))
        y = pd.Series((rng.random(n) < p).astype(np.int64))
    return X, y


def test_the_ranking_uses_the_fewest_features_within_one_standard_error() -> None:
    """Issue 13: recommendations take an argmax over many configurations, so their model is
    the narrowest feature set the validation slice cannot tell from the best one. Noise
    columns of a configuration's history are dropped from the ranking; history that carries
    a real effect (beyond one standard error) is kept."""
    X, y = _with_configuration_history(4000, informative=False)
    best, table = select_success_params(X, y, [FAST], validation_fraction=0.25)
    assert best["ranking_exclude_features"] == FEATURE_SETS["stationary, no configuration history"]
    assert CONFIGURATION_HISTORY not in best["exclude_features"]  # the predictor keeps it
    assert {"loss_se", "used"} <= set(table.columns)
    lowest = table["validation_log_loss"].min()
    ranking = table.loc[table["features"] == "stationary, no configuration history"].iloc[0]
    assert ranking["validation_log_loss"] - lowest <= ranking["loss_se"]

    X, y = _with_configuration_history(4000, informative=True)
    best, _ = select_success_params(X, y, [FAST], validation_fraction=0.25)
    assert CONFIGURATION_HISTORY not in best["exclude_features"]
    assert CONFIGURATION_HISTORY not in best["ranking_exclude_features"]


def test_the_ranking_twin_is_fitted_only_when_its_features_differ() -> None:
    X, y = _with_configuration_history(2000, informative=False)
    narrow = (*NONSTATIONARY_FEATURES, CONFIGURATION_HISTORY)
    model = SuccessModel(**FAST, calibration="none", ranking_exclude_features=narrow).fit(X, y)
    assert model.ranking_ is not None
    assert not any(c.startswith("pattern_") for c in model.ranking_.used_features_)
    assert any(c.startswith("pattern_noise") for c in model.used_features_)
    values = X.to_numpy(np.float32)
    assert not np.allclose(model.ranking_probability(values), model.success_probability(values))
    assert np.allclose(
        model.ranking_probability(values), model.ranking_.success_probability(values)
    )
    same = SuccessModel(**FAST, ranking_exclude_features=NONSTATIONARY_FEATURES).fit(X, y)
    assert same.ranking_ is None
    assert np.array_equal(same.ranking_probability(values), same.success_probability(values))
    assert clone(model).get_params()["ranking_exclude_features"] == narrow


def test_permutation_importance_finds_the_signal() -> None:
    X, y = _logistic(2000)
    model = SuccessModel(**FAST, calibration="none").fit(X, y)
    table = permutation_importances(model, X, y, n_repeats=2, max_rows=800)
    assert table["feature"].iloc[0] == "signal_a"
    assert set(table["feature"]) == set(model.used_features_)


# ------------------------------------------------------------------ similarity
def _vectors() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cfg__timeout": [30, 32, 120, 125, 60],
            "cfg__backup_enabled": [1, 1, 0, 0, np.nan],
            "emb_0": [1.0, 0.9, -1.0, -0.9, 0.0],
            "emb_1": [0.0, 0.1, 0.0, 0.1, 1.0],
        },
        index=["a", "a2", "b", "b2", "new"],
    )


def test_similarity_finds_neighbours_and_gives_a_cold_start_prior() -> None:
    vectors = _vectors()
    rates = np.array([0.9, 0.8, 0.2, 0.3, np.nan])  # "new" has never run
    runs = np.array([100, 50, 100, 50, 0])
    model = PatternSimilarity(n_neighbors=2, prior_strength=10).fit(vectors, rates, runs)
    similar = model.similar("a", n=2)
    assert similar["pattern_id"].iloc[0] == "a2" and "a" not in set(similar["pattern_id"])
    assert similar["similarity"].iloc[0] > similar["similarity"].iloc[1]
    prior = pd.Series(model.predict(vectors), index=vectors.index)
    assert prior["a"] > 0.75 > 0.35 > prior["b"]
    assert model.runs_[-1] == 0  # a pattern without outcomes lends no evidence
    with pytest.raises(KeyError):
        model.similar("missing")
    knobs_only = PatternSimilarity(n_neighbors=1, embedding_weight=0.0).fit(vectors)
    assert knobs_only.similar("b", n=1)["pattern_id"].iloc[0] == "b2"


# ------------------------------------------------------------------ duration
def test_duration_quantiles_cover_and_do_not_cross() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame(
        {"strategy_canary": rng.integers(0, 2, n), "n_resources": rng.integers(1, 5, n)}
    )
    median = 300 * (1 + X["strategy_canary"]) * (1 + 0.3 * X["n_resources"])
    seconds = median.to_numpy() * np.exp(rng.normal(0, 0.35, n))
    seconds[:5] = np.nan  # runs without a completion time are skipped
    model = DurationModel(max_iter=60).fit(X.iloc[:2000], seconds[:2000])
    predicted = model.predict_quantiles(X.iloc[2000:])
    assert list(predicted.columns) == ["p50", "p90"]
    assert (predicted["p90"] >= predicted["p50"]).all()
    assert coverage(seconds[2000:], predicted["p50"]) == pytest.approx(0.5, abs=0.06)
    assert coverage(seconds[2000:], predicted["p90"]) == pytest.approx(0.9, abs=0.05)
    assert model.predict(X.iloc[:3]).shape == (3, 2)
    with pytest.raises(ValueError, match="ascending"):
        DurationModel(quantiles=(0.9, 0.5)).fit(X, seconds)
