"""Baselines the success model must beat, as estimators over the same feature frame.

All three read only point-in-time columns of ``TrainingFrame.X`` (counts of outcomes known
before each run), so on a holdout they keep learning online exactly as the model's history
features do; the comparison is about the learner, not about who saw more data.

* ``GlobalRateBaseline``: the training-period success rate for everyone (AUC 0.5 by design).
* ``BetaPosteriorBaseline``: per key (pattern, or pattern x environment) the Beta posterior
  mean (k*p0 + s) / (k + s + f), prior mean p0 = training rate; what ``serving`` does without
  a model.
* ``SeedRankingBaseline``: the original system: learns from successes only and ranks by
  popularity (``decision_function`` = the pattern's success count), and reports confidence 1.0
  for a pattern with a recorded success, 0.5 otherwise (``predict_proba``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted


class _ProbabilityBaseline(ClassifierMixin, BaseEstimator):
    """Shared plumbing: ``classes_``, ``predict`` at 0.5, two-column ``predict_proba``."""

    def _success_probability(self, X: pd.DataFrame) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _fit_rate(self, y: Any) -> None:
        y_arr = np.asarray(y, dtype=np.float64)
        if y_arr.size == 0:
            raise ValueError("cannot fit a baseline on zero rows")
        self.classes_ = np.array([0, 1])
        self.global_rate_ = float(y_arr.mean())

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "global_rate_")
        p = np.clip(self._success_probability(X), 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(X)[:, 1]


class GlobalRateBaseline(_ProbabilityBaseline):
    """Everyone gets the training-period success rate."""

    def fit(self, X: pd.DataFrame, y: Any) -> GlobalRateBaseline:
        self._fit_rate(y)
        return self

    def _success_probability(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), self.global_rate_)


class BetaPosteriorBaseline(_ProbabilityBaseline):
    """Beta(k*p0 + s, k*(1-p0) + f) mean from the ``{key}_successes``/``{key}_failures`` columns.

    Args:
        key: feature prefix of the counts: ``pattern`` or ``pattern_environment``.
        prior_strength: k, the prior's weight in pseudo-runs (serving's default is 10).
    """

    def __init__(self, key: str = "pattern", prior_strength: float = 10.0) -> None:
        self.key = key
        self.prior_strength = prior_strength

    def fit(self, X: pd.DataFrame, y: Any) -> BetaPosteriorBaseline:
        if self.prior_strength <= 0:
            raise ValueError("prior_strength must be positive")
        for column in self._columns():
            if column not in X.columns:
                raise ValueError(f"BetaPosteriorBaseline needs feature column {column!r}")
        self._fit_rate(y)
        return self

    def _columns(self) -> tuple[str, str]:
        return f"{self.key}_successes", f"{self.key}_failures"

    def _success_probability(self, X: pd.DataFrame) -> np.ndarray:
        s_col, f_col = self._columns()
        s = np.nan_to_num(X[s_col].to_numpy(dtype=np.float64))
        f = np.nan_to_num(X[f_col].to_numpy(dtype=np.float64))
        k = float(self.prior_strength)
        return (k * self.global_rate_ + s) / (k + s + f)


class SeedRankingBaseline(_ProbabilityBaseline):
    """The seed's signal: popularity (success count) to rank, confidence 0.5 or 1.0 to report."""

    def fit(self, X: pd.DataFrame, y: Any) -> SeedRankingBaseline:
        if "pattern_successes" not in X.columns:
            raise ValueError("SeedRankingBaseline needs feature column 'pattern_successes'")
        self._fit_rate(y)
        return self

    def _success_probability(self, X: pd.DataFrame) -> np.ndarray:
        successes = np.nan_to_num(X["pattern_successes"].to_numpy(dtype=np.float64))
        return np.where(successes > 0, 1.0, 0.5)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """The ranking signal: how many successes the pattern has (popularity)."""
        check_is_fitted(self, "global_rate_")
        return np.nan_to_num(X["pattern_successes"].to_numpy(dtype=np.float64))


def default_baselines(prior_strength: float = 10.0) -> dict[str, _ProbabilityBaseline]:
    """The baselines every evaluation reports, by display name."""
    return {
        "global rate": GlobalRateBaseline(),
        "Beta posterior (pattern)": BetaPosteriorBaseline("pattern", prior_strength),
        "Beta posterior (pattern x environment)": BetaPosteriorBaseline(
            "pattern_environment", prior_strength
        ),
        "seed ranking (popularity, confidence 0.5/1.0)": SeedRankingBaseline(),
    }
