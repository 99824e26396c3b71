"""Duration quantiles (p50, p90) from the same features, with the quantile (pinball) loss.

One ``HistGradientBoostingRegressor(loss="quantile")`` per quantile, fitted on log seconds:
quantiles commute with a monotone transform, and the log makes a 3-minute direct deploy and a
40-minute canary equally important. Predictions are forced non-crossing (p90 >= p50).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted

from deploylearn.models.success import NONSTATIONARY_FEATURES, fillable_columns, openmp_threads


class DurationModel(RegressorMixin, BaseEstimator):  # type: ignore[misc]  # sklearn: untyped
    """Predicts duration quantiles in seconds: one column per quantile.

    Args:
        quantiles: the quantiles to model, ascending (default p50 and p90).
        learning_rate, max_iter, max_leaf_nodes, min_samples_leaf: boosting settings.
        exclude_features: regular expressions of feature names not to use.
        n_threads: OpenMP threads (None: all cores; see ``models.success``).
        random_state: seed of the boosting.
    """

    def __init__(
        self,
        quantiles: Sequence[float] = (0.5, 0.9),
        *,
        learning_rate: float = 0.1,
        max_iter: int = 100,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 50,
        exclude_features: Sequence[str] = NONSTATIONARY_FEATURES,
        n_threads: int | None = 1,
        random_state: int = 0,
    ) -> None:
        self.quantiles = quantiles
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.exclude_features = exclude_features
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any) -> DurationModel:
        """``y``: durations in seconds (rows with a missing or non-positive one are skipped)."""
        quantiles = [float(q) for q in self.quantiles]
        if not quantiles or any(not 0 < q < 1 for q in quantiles) or quantiles != sorted(quantiles):
            raise ValueError("quantiles must be ascending values in (0, 1)")
        seconds = np.asarray(y, dtype=np.float64).ravel()
        keep = np.isfinite(seconds) & (seconds > 0)
        if keep.sum() < 2:
            raise ValueError("DurationModel needs at least two positive durations")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        patterns = [re.compile(p) for p in self.exclude_features]
        self.used_features_ = [c for c in X.columns if not any(p.search(str(c)) for p in patterns)]
        values = fillable_columns(X[self.used_features_].to_numpy(dtype=np.float32)[keep])
        target = np.log(seconds[keep])
        with openmp_threads(self.n_threads):
            self.estimators_ = self._fit(values, target, quantiles)
        self.quantiles_ = quantiles
        return self

    def _fit(
        self, values: np.ndarray, target: np.ndarray, quantiles: list[float]
    ) -> list[HistGradientBoostingRegressor]:
        return [
            HistGradientBoostingRegressor(
                loss="quantile",
                quantile=q,
                learning_rate=self.learning_rate,
                max_iter=self.max_iter,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                early_stopping=False,
                random_state=self.random_state,
            ).fit(values, target)
            for q in quantiles
        ]

    def predict_quantiles(self, X: pd.DataFrame) -> pd.DataFrame:
        """One column per quantile (``p50``, ``p90``…), seconds, non-crossing."""
        check_is_fitted(self, "estimators_")
        values = X.reindex(columns=self.used_features_).to_numpy(dtype=np.float32)
        with openmp_threads(self.n_threads):
            logs = np.column_stack([e.predict(values) for e in self.estimators_])
        logs = np.maximum.accumulate(logs, axis=1)
        columns = [f"p{round(q * 100):d}" for q in self.quantiles_]
        return pd.DataFrame(np.exp(logs), columns=columns, index=X.index)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """``(n_rows, n_quantiles)`` seconds (what a registered model serves)."""
        return cast(np.ndarray, self.predict_quantiles(X).to_numpy())
