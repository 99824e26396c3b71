"""Probability and quantile metrics, defined once so every report, gate and notebook agrees.

Probabilities are clipped to ``[EPS, 1 - EPS]`` before the log loss, so a baseline that says
1.0 (the seed's confidence) gets a large, finite penalty instead of infinity. Expected
calibration error uses **equal-mass bins** (``n_bins`` quantile bins of the predictions, ties
kept together): success probabilities crowd into 0.8-0.95, where equal-width bins would put most
rows into two or three bins and hide miscalibration. ECE is the row-weighted mean of
``|observed success rate - mean predicted probability|`` over the bins. On a finite sample even
the true probabilities have ECE > 0 (about 0.01 on 10,000 rows), so compare with the oracle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

EPS = 1e-6
DEFAULT_BINS = 10
METRIC_NAMES = ("roc_auc", "brier_score", "log_loss", "ece")
GREATER_IS_BETTER = {"roc_auc": True, "brier_score": False, "log_loss": False, "ece": False}


def _arrays(
    y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    p_arr = np.asarray(p, dtype=np.float64).ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"y has {y_arr.size} values but p has {p_arr.size}")
    return y_arr, p_arr


def roc_auc(y: Sequence[float] | np.ndarray, score: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present (undefined, not 0.5)."""
    y_arr, s = _arrays(y, score)
    if len(np.unique(y_arr)) < 2:
        return float("nan")
    return float(roc_auc_score(y_arr, s))


def brier_score(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> float:
    """Mean squared error of the probability (lower is better; oracle floor is mean p(1-p))."""
    y_arr, p_arr = _arrays(y, p)
    return float(np.mean((p_arr - y_arr) ** 2))


def log_losses(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per-row negative log-likelihood with probabilities clipped to ``[EPS, 1 - EPS]``."""
    y_arr, p_arr = _arrays(y, p)
    p_arr = np.clip(p_arr, EPS, 1 - EPS)
    return -(y_arr * np.log(p_arr) + (1 - y_arr) * np.log(1 - p_arr))


def log_loss(y: Sequence[float] | np.ndarray, p: Sequence[float] | np.ndarray) -> float:
    """Mean of ``log_losses``."""
    return float(np.mean(log_losses(y, p)))


def standard_error(values: np.ndarray) -> float:
    """Standard error of the mean of ``values`` (0 for fewer than two): with per-row paired
    differences of two models, the noise common to both cancels."""
    n = values.size
    return float(np.std(values, ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def calibration_bins(
    y: Sequence[float] | np.ndarray,
    p: Sequence[float] | np.ndarray,
    n_bins: int = DEFAULT_BINS,
) -> pd.DataFrame:
    """Equal-mass bins: per bin the row count, mean predicted probability and observed rate."""
    y_arr, p_arr = _arrays(y, p)
    if y_arr.size == 0:
        return pd.DataFrame(columns=["bin", "count", "mean_predicted", "observed_rate"])
    order = np.argsort(p_arr, kind="stable")
    ranks = np.empty(len(p_arr), dtype=np.int64)
    ranks[order] = np.arange(len(p_arr))
    bin_of = np.minimum(ranks * n_bins // len(p_arr), n_bins - 1)
    # Ties stay together: every row with a given p goes to the bin of its first occurrence.
    first_bin = pd.Series(bin_of[order]).groupby(p_arr[order]).transform("min").to_numpy()
    bin_of[order] = first_bin
    table = (
        pd.DataFrame({"bin": bin_of, "p": p_arr, "y": y_arr})
        .groupby("bin", sort=True)
        .agg(count=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
        .reset_index()
    )
    return table


def expected_calibration_error(
    y: Sequence[float] | np.ndarray,
    p: Sequence[float] | np.ndarray,
    n_bins: int = DEFAULT_BINS,
) -> float:
    """Row-weighted mean |observed rate - mean predicted| over equal-mass bins."""
    table = calibration_bins(y, p, n_bins)
    if table.empty:
        return float("nan")
    weights = table["count"] / table["count"].sum()
    return float((weights * (table["observed_rate"] - table["mean_predicted"]).abs()).sum())


def calibration_noise(p: Sequence[float] | np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """Expected ECE of a *perfectly calibrated* model with these predictions on this many rows.

    Per bin the observed rate scatters around the mean prediction with standard deviation
    sqrt(sum p(1-p)) / n_b, and E|N(0, s)| = s * sqrt(2/pi). A gate compares ECE with a
    threshold plus this allowance, so a 600-row holdout (allowance ~0.04) is not held to the
    standard of a 10,000-row one (~0.01).
    """
    p_arr = np.asarray(p, dtype=np.float64).ravel()
    if p_arr.size == 0:
        return float("nan")
    table = calibration_bins(p_arr, p_arr, n_bins)  # bins of p (the y argument is unused here)
    order = np.argsort(p_arr, kind="stable")
    sorted_p = p_arr[order]
    total = 0.0
    start = 0
    for count in table["count"].to_numpy():
        part = sorted_p[start : start + count]
        start += count
        total += np.sqrt(2 / np.pi) * np.sqrt(np.sum(part * (1 - part)))
    return float(total / p_arr.size)


@dataclass(frozen=True)
class PairedDifference:
    """Brier(p) - Brier(reference) on the same rows, with its paired standard error.

    ``margin`` is the one-sided noise band z * se at ``confidence``: a difference below it is
    what two equally good models show on this many rows.
    """

    difference: float
    standard_error: float
    margin: float
    candidate: float
    reference: float
    rows: int
    confidence: float

    def worse_beyond_noise(self, tolerance: float = 0.0) -> bool:
        return self.difference - self.margin > tolerance


def brier_difference(
    y: Sequence[float] | np.ndarray,
    p: Sequence[float] | np.ndarray,
    reference: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
) -> PairedDifference:
    """Paired comparison of two probability columns on the same rows.

    Per row d_i = (p_i - y_i)^2 - (r_i - y_i)^2; the mean of d is the Brier difference and its
    standard error is sd(d) / sqrt(n), so the noise common to both models (a hard row is hard
    for both) cancels. This is the normal approximation of a paired bootstrap of the mean of
    d (the two agree within a few per cent from ~100 rows, see docs/learning.md); it costs
    O(n) where a bootstrap at 200,000 holdout rows took 12.8 s.
    """
    y_arr, p_arr = _arrays(y, p)
    _, r_arr = _arrays(y, reference)
    d = (p_arr - y_arr) ** 2 - (r_arr - y_arr) ** 2
    n = d.size
    se = standard_error(d)
    return PairedDifference(
        difference=float(d.mean()) if n else float("nan"),
        standard_error=se,
        margin=float(norm.ppf(confidence) * se),
        candidate=brier_score(y_arr, p_arr) if n else float("nan"),
        reference=brier_score(y_arr, r_arr) if n else float("nan"),
        rows=int(n),
        confidence=confidence,
    )


def probability_metrics(
    y: Sequence[float] | np.ndarray,
    p: Sequence[float] | np.ndarray,
    score: Sequence[float] | np.ndarray | None = None,
    n_bins: int = DEFAULT_BINS,
) -> dict[str, float]:
    """ROC AUC (of ``score`` if given, else of ``p``), Brier, log loss and ECE of ``p``."""
    return {
        "roc_auc": roc_auc(y, p if score is None else score),
        "brier_score": brier_score(y, p),
        "log_loss": log_loss(y, p),
        "ece": expected_calibration_error(y, p, n_bins),
    }


def pinball_loss(
    y: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray, alpha: float
) -> float:
    """Quantile (pinball) loss of predictions ``q`` for quantile ``alpha``."""
    y_arr, q_arr = _arrays(y, q)
    diff = y_arr - q_arr
    return float(np.mean(np.maximum(alpha * diff, (alpha - 1) * diff)))


def coverage(y: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Share of outcomes at or below the predicted quantile (should be near its alpha)."""
    y_arr, q_arr = _arrays(y, q)
    return float(np.mean(y_arr <= q_arr)) if y_arr.size else float("nan")


def within_group_auc(
    y: Sequence[float] | np.ndarray,
    score: Sequence[float] | np.ndarray,
    groups: Sequence[object] | np.ndarray,
) -> float:
    """ROC AUC over pairs in the same group only (pairs of a success and a failure).

    With groups = deployment contexts this is ranking accuracy where a recommendation is made:
    the chance that, of two runs in the same context with different outcomes, the successful
    one was scored higher. Ties count one half. Pair-weighted over groups.
    """
    y_arr, s = _arrays(y, score)
    frame = pd.DataFrame({"y": y_arr, "s": s, "g": pd.factorize(pd.Series(list(groups)))[0]})
    total_pairs = 0.0
    concordant = 0.0
    for _, part in frame.groupby("g", sort=False):
        positives = int(part["y"].sum())
        negatives = len(part) - positives
        if positives == 0 or negatives == 0:
            continue
        ranks = part["s"].rank(method="average").to_numpy()
        rank_sum = ranks[part["y"].to_numpy() == 1].sum()
        concordant += rank_sum - positives * (positives + 1) / 2
        total_pairs += positives * negatives
    return float(concordant / total_pairs) if total_pairs else float("nan")
