"""The statistics the answers share: Wilson score intervals (one at a time and vectorized) and
the two-proportion comparison. One definition, so a rate's interval is the same in analytics,
in an adaptation's uplift and in the Wilson ranking baseline."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))  # two-sided 95 % normal quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion; None when ``n`` is 0."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)  # exact ends, no 0.9999…
    return low, high


def wilson_lower_bounds(successes: np.ndarray, runs: np.ndarray, z: float = Z95) -> np.ndarray:
    """``wilson_interval``'s lower end for arrays of counts (0 with no runs): the frequentist
    ranking baseline."""
    n = np.asarray(runs, dtype=np.float64)
    s = np.asarray(successes, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, s / n, 0.0)
        centre = p + z * z / (2 * n)
        spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low = (centre - spread) / (1 + z * z / n)
    return np.where((n > 0) & (s > 0), np.maximum(low, 0.0), 0.0)


def two_proportion_test(
    k1: int, n1: int, k2: int, n2: int
) -> tuple[str, float | None, float] | None:
    """(test name, statistic, two-sided p) comparing k1/n1 with k2/n2; None if a side is empty.

    The pooled two-proportion z-test when every expected cell count of the 2×2 table is at
    least 5, Fisher's exact test (statistic: the odds ratio, None when it is infinite) otherwise.
    """
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    expected = (n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if min(expected) >= 5:
        se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (k1 / n1 - k2 / n2) / se
        return "two-proportion z-test", float(z), float(2 * stats.norm.sf(abs(z)))
    odds, p = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])
    return "Fisher exact test", finite_or_none(odds), float(p)


def finite_or_none(value: Any) -> float | None:
    """A plain float, or None for missing / NaN / infinite values."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
