"""The promotion gate's rules: a challenger must not be worse than what serves now.

What serves now (the **reference**) is the champion, or before any promotion what serving
answers without a model: the hierarchical empirical prior blended with the pattern's own
outcomes (``fallback_probabilities``). Both are scored on the same holdout rows as the
challenger, and every rule allows for the noise of a finite holdout:

* **Brier**: refused only when the challenger is worse *beyond noise*: the per-row paired
  difference d_i = (p_i - y_i)^2 - (r_i - y_i)^2 has mean D = Brier(p) - Brier(r); the
  challenger fails when the one-sided ``CONFIDENCE`` lower bound D - z * sd(d) / sqrt(n)
  exceeds ``tolerance``. A tie (D = 0) always passes, a model worse by more than the noise is
  refused. The same rule against the global training rate is a floor.
* **ECE** <= max(``max_ece``, the reference's ECE) + the ECE a perfectly calibrated model
  would show on these rows (``metrics.calibration_noise``): calibrated enough, or no worse
  calibrated than what serves.
* **ROC AUC** >= min(``min_auc``, the reference's AUC): ranks well enough, or no worse.

Pure functions: the runner (``pipeline.train``) turns the rules into MLflow thresholds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from deploylearn.features._columns import codes
from deploylearn.features.history import outcome_counts_as_of
from deploylearn.models.metrics import (
    PairedDifference,
    brier_difference,
    brier_score,
    calibration_noise,
    expected_calibration_error,
    roc_auc,
)
from deploylearn.serving.blend import empirical_prior_rates, posterior

CONFIDENCE = 0.99  # one-sided: a truly equal model is refused about one night in 100
FALLBACK_LABEL = "serving without a model (empirical prior)"


@dataclass(frozen=True)
class Rule:
    """One gate rule on one metric of the challenger."""

    metric: str
    threshold: float
    greater_is_better: bool
    why: str

    def holds(self, value: float) -> bool:
        return value >= self.threshold if self.greater_is_better else value <= self.threshold


@dataclass(frozen=True)
class GateRules:
    rules: list[Rule]
    reference: str
    versus_reference: PairedDifference
    versus_global_rate: PairedDifference
    reference_metrics: dict[str, float]

    def passes(self, metrics: dict[str, float]) -> bool:
        return all(rule.holds(metrics[rule.metric]) for rule in self.rules)

    def as_dict(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "confidence": CONFIDENCE,
            "brier_versus_reference": asdict(self.versus_reference),
            "brier_versus_global_rate": asdict(self.versus_global_rate),
            "reference_metrics": self.reference_metrics,
            "rules": {r.metric: {"threshold": r.threshold, "why": r.why} for r in self.rules},
        }


def gate_rules(
    y: np.ndarray,
    p: np.ndarray,
    reference_p: np.ndarray,
    *,
    reference: str,
    global_rate: float,
    tolerance: float = 0.0,
    max_ece: float = 0.03,
    min_auc: float = 0.55,
) -> GateRules:
    """The rules of the module docstring for challenger ``p`` against ``reference_p``."""
    y = np.asarray(y, dtype=np.float64)
    versus_reference = brier_difference(y, p, reference_p, confidence=CONFIDENCE)
    versus_global = brier_difference(y, p, np.full(len(y), global_rate), confidence=CONFIDENCE)
    ref = {
        "brier_score": brier_score(y, reference_p),
        "ece": expected_calibration_error(y, reference_p),
        "roc_auc": roc_auc(y, reference_p),
    }
    reference_brier = ref["brier_score"] + tolerance + versus_reference.margin
    global_brier = versus_global.reference + versus_global.margin
    ece_floor = max(max_ece, ref["ece"]) if np.isfinite(ref["ece"]) else max_ece
    auc_floor = min(min_auc, ref["roc_auc"]) if np.isfinite(ref["roc_auc"]) else min_auc
    rules = [
        Rule(
            "brier_score",
            min(reference_brier, global_brier),
            False,
            f"not worse than {reference} (Brier {ref['brier_score']:.6f} + tolerance "
            f"{tolerance:g} + noise {versus_reference.margin:.6f}) nor than the global rate "
            f"(Brier {versus_global.reference:.6f} + noise {versus_global.margin:.6f})",
        ),
        Rule(
            "ece",
            ece_floor + calibration_noise(p),
            False,
            f"max(max_ece {max_ece:g}, {reference}'s ECE {ref['ece']:.4f}) + sampling noise",
        ),
        Rule("roc_auc", auc_floor, True, f"min(min_auc {min_auc:g}, {reference}'s AUC)"),
    ]
    return GateRules(rules, reference, versus_reference, versus_global, ref)


def fallback_probabilities(
    history_frame: pd.DataFrame, execution_ids: pd.Series, *, prior_strength: float
) -> np.ndarray:
    """What serving answers without a trained model, for past executions, point in time.

    As ``serving.advisor`` does with no champion: the hierarchical empirical prior (the
    context's success rate with ``MIN_CONTEXT_RUNS`` outcomes, else the environment's, else the
    global one) as the mean of a Beta prior of strength ``prior_strength``, updated with the
    pattern's outcomes in the environment. Counts are those known before each run started
    (``features.history``). Two simplifications, both documented in docs/learning.md: the
    context is the exact resource set (serving also counts runs of a superset), and the
    pattern's counts are not time-decayed (the serving half-life is a year).
    """
    frame = history_frame
    resources = frame["resources_deployed"].map(
        lambda r: ",".join(sorted(map(str, r))) if r is not None else ""
    )
    env = frame["target_environment"]
    context = outcome_counts_as_of(frame, codes(env, resources))
    environment = outcome_counts_as_of(frame, codes(env))
    overall = outcome_counts_as_of(frame, np.zeros(len(frame), dtype=np.int64))
    s, f = outcome_counts_as_of(frame, codes(frame["pattern_id"], env))
    prior = empirical_prior_rates(context, environment, overall)
    p = posterior(prior, s, f, prior_strength).mean
    position = pd.Index(frame["execution_id"]).get_indexer(execution_ids.to_numpy())
    if (position < 0).any():
        raise ValueError(f"{int((position < 0).sum())} execution ids are not in the history")
    return np.asarray(p[position], dtype=np.float64)
