"""The promotion gate's rules (issue 12 item 4): noise-aware, against what serves now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.stats import bootstrap

from deploylearn.models.metrics import brier_difference, brier_score
from deploylearn.pipeline.gate import FALLBACK_LABEL, fallback_probabilities, gate_rules
from deploylearn.serving.blend import MIN_CONTEXT_RUNS, empirical_prior, empirical_prior_rates


def _world(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.55, 0.97, n)
    return (rng.random(n) < truth).astype(np.int64), truth


def test_a_tie_within_noise_passes_and_a_clearly_worse_model_is_refused() -> None:
    y, truth = _world()
    champion = np.clip(truth + np.random.default_rng(1).normal(0, 0.03, len(y)), 0.01, 0.99)
    # a retrain that differs from the champion by noise only, a hair worse on this holdout
    other = np.clip(champion + np.random.default_rng(2).normal(0, 0.01, len(y)), 0.01, 0.99)
    champion, tie = sorted([champion, other], key=lambda p: brier_score(y, p))
    assert 0 < brier_score(y, tie) - brier_score(y, champion) < 0.001
    rules = gate_rules(y, tie, champion, reference="champion v1", global_rate=float(y.mean()))
    metrics = {"brier_score": brier_score(y, tie), "ece": 0.0, "roc_auc": 0.9}
    assert rules.passes(metrics)
    assert not rules.versus_reference.worse_beyond_noise()

    worse = 0.5 * champion + 0.5 * float(y.mean())  # lost most of its ranking
    refused = gate_rules(y, worse, champion, reference="champion v1", global_rate=y.mean())
    assert refused.versus_reference.worse_beyond_noise()
    assert not refused.passes({"brier_score": brier_score(y, worse), "ece": 0.0, "roc_auc": 0.9})

    same = gate_rules(y, champion, champion, reference="champion v1", global_rate=y.mean())
    assert same.versus_reference.difference == 0 and same.versus_reference.margin == 0
    assert same.rules[0].holds(brier_score(y, champion))


def test_tolerance_still_widens_the_band() -> None:
    y, truth = _world()
    worse = np.clip(truth - 0.08, 0.01, 0.99)
    strict = gate_rules(y, worse, truth, reference="r", global_rate=y.mean())
    loose = gate_rules(y, worse, truth, reference="r", global_rate=y.mean(), tolerance=0.05)
    assert strict.rules[0].threshold < brier_score(y, worse) <= loose.rules[0].threshold


def test_noise_band_agrees_with_a_paired_bootstrap() -> None:
    y, truth = _world(1000, seed=3)
    a = np.clip(truth + np.random.default_rng(4).normal(0, 0.05, len(y)), 0.01, 0.99)
    difference = brier_difference(y, a, truth, confidence=0.95)
    d = (a - y) ** 2 - (truth - y) ** 2
    boot = bootstrap(
        (d,),
        np.mean,
        n_resamples=2000,
        confidence_level=0.95,
        alternative="greater",
        method="percentile",
        random_state=0,
    )
    assert difference.difference - difference.margin == pytest.approx(
        boot.confidence_interval.low, abs=0.15 * difference.margin
    )


def test_a_first_model_is_held_to_the_serving_fallback_not_to_absolute_thresholds() -> None:
    y, truth = _world()
    fallback = np.full(len(y), float(y.mean())) + 0.02 * (truth - truth.mean())
    model = np.clip(truth + 0.04, 0.01, 0.99)  # skilful but off by 0.04: ECE above 0.03
    rules = gate_rules(y, model, fallback, reference=FALLBACK_LABEL, global_rate=y.mean())
    metrics = {"brier_score": brier_score(y, model), "ece": 0.045, "roc_auc": 0.75}
    assert rules.reference_metrics["ece"] > 0.045  # what serves today is calibrated worse
    assert rules.passes(metrics)
    assert not rules.passes(
        {**metrics, "brier_score": rules.reference_metrics["brier_score"] + 0.01}
    )


def test_vectorized_empirical_prior_is_the_scalar_one() -> None:
    levels = [(0, 0), (3, 2), (MIN_CONTEXT_RUNS - 1, 0), (MIN_CONTEXT_RUNS, 5), (40, 10)]
    cases = [(c, e, g) for c in levels for e in levels for g in levels]
    vector = empirical_prior_rates(
        *[
            (np.array([x[i][0] for x in cases]), np.array([x[i][1] for x in cases]))
            for i in range(3)
        ]
    )
    assert vector == pytest.approx([empirical_prior(c, e, g)[0] for c, e, g in cases])


def test_fallback_probabilities_read_only_outcomes_known_before_each_run() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(30):  # production, pattern a: 24 successes then 6 failures
        rows.append(("a", "production", ["project"], "success" if i < 24 else "failure", i))
    rows.append(("b", "production", ["project"], "success", 30))  # a new pattern
    frame = pd.DataFrame(
        {
            "execution_id": [f"x{i}" for i in range(len(rows))],
            "pattern_id": [r[0] for r in rows],
            "target_environment": [r[1] for r in rows],
            "resources_deployed": [r[2] for r in rows],
            "outcome": [r[3] for r in rows],
            "started_at": [t0 + timedelta(hours=r[4]) for r in rows],
            "completed_at": [t0 + timedelta(hours=r[4], minutes=10) for r in rows],
        }
    )
    p = fallback_probabilities(frame, frame["execution_id"], prior_strength=10.0)
    assert p[0] == pytest.approx(0.5)  # nothing known yet: uninformative prior, no evidence
    # run 5: 5 successes known, the global rate (context has < MIN_CONTEXT_RUNS) is 1.0
    assert p[5] == pytest.approx((10 * (1 - 1e-4) + 5) / (10 + 5))
    # the new pattern: context rate 24/30 from 30 outcomes, no evidence of its own
    assert p[30] == pytest.approx(24 / 30)
    with pytest.raises(ValueError, match="not in the history"):
        fallback_probabilities(frame, pd.Series(["nope"]), prior_strength=10.0)
