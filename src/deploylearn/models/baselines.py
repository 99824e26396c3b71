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

from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted

from deploylearn.models.success import openmp_threads


class _ProbabilityBaseline(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # sklearn: untyped
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
        return cast(np.ndarray, (k * self.global_rate_ + s) / (k + s + f))


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
        return cast(np.ndarray, np.nan_to_num(X["pattern_successes"].to_numpy(dtype=np.float64)))


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


# ---------------------------------------------------------------------------- reference baselines
# What a practitioner would try first on the store's raw history, without deploylearn's features:
# they read ``Store.executions_frame()`` rows (and each run's own configuration), not the feature
# frame, so they stay the same whatever the feature code does.
GATEWAY_RATE_PRIOR = (1.0, 2.0)  # pseudo (successes, runs): a new gateway starts at 0.5
MAX_CATEGORIES = 250  # HistGradientBoosting takes at most 255 levels per categorical feature
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def _labels(frame: pd.DataFrame) -> np.ndarray:
    return cast(np.ndarray, (frame["outcome"] == "success").to_numpy(dtype=np.float64))


def _resource_key(resources: Any) -> str:
    if resources is None or (isinstance(resources, float) and np.isnan(resources)):
        return ""
    return ",".join(sorted(str(r) for r in resources))


def running_rate(history: pd.DataFrame, query: np.ndarray, keys: list[str]) -> np.ndarray:
    """Per row of ``history`` (time-ordered, labelled) marked by ``query``: the success rate of
    earlier rows with the same ``keys``, with the ``GATEWAY_RATE_PRIOR`` pseudo-counts.

    Earlier means an earlier ``started_at``: rows at the same instant do not see each other,
    and every row sees the outcomes of all rows before it (online, as a dashboard would).
    """
    key = history[keys].astype(str).agg("|".join, axis=1).to_numpy()
    frame = pd.DataFrame({"k": key, "t": history["started_at"].to_numpy(), "y": _labels(history)})
    per_instant = frame.groupby(["k", "t"], sort=True)["y"].agg(["sum", "count"])
    before = per_instant.groupby(level="k").cumsum() - per_instant
    index = pd.MultiIndex.from_arrays([frame["k"], frame["t"]])
    s = before["sum"].reindex(index).to_numpy()[query]
    n = before["count"].reindex(index).to_numpy()[query]
    return cast(np.ndarray, (GATEWAY_RATE_PRIOR[0] + s) / (GATEWAY_RATE_PRIOR[1] + n))


def parrot(history: pd.DataFrame, query: np.ndarray, fallback: float) -> np.ndarray:
    """The previous outcome (1 or 0) of the same gateway and resource set, ``fallback`` for
    the first run of a combination; rows at the same instant do not see each other."""
    combo = (
        history["gateway_host"].astype(str) + "|" + history["resources_deployed"].map(_resource_key)
    ).to_numpy()
    frame = pd.DataFrame({"k": combo, "t": history["started_at"].to_numpy(), "y": _labels(history)})
    last = frame.groupby(["k", "t"], sort=True)["y"].last()
    previous = last.groupby(level="k").shift(1)
    index = pd.MultiIndex.from_arrays([frame["k"], frame["t"]])
    values = previous.reindex(index).to_numpy()[query]
    return np.where(np.isnan(values), fallback, values)


class RawFieldsModel:
    """Plain gradient boosting on each run's raw fields: environment, strategy, gateway and
    every configuration text value as categories, resources multi-hot, numeric and boolean
    configuration values as numbers, and the start time in days. No history features, no
    calibration: the bar any learner on this store has to clear."""

    def __init__(self, random_state: int = 0, n_threads: int | None = 1) -> None:
        self.random_state = random_state
        self.n_threads = n_threads

    def _raw(self, frame: pd.DataFrame, configurations: pd.Series | None) -> pd.DataFrame:
        columns: dict[str, Any] = {
            "env": frame["target_environment"].astype(str).to_numpy(),
            "strategy": frame["deployment_strategy"].astype(str).to_numpy(),
            "gateway": frame["gateway_host"].fillna("").astype(str).to_numpy(),
            "t": (frame["started_at"] - _EPOCH).dt.total_seconds().to_numpy() / 86_400.0,
        }
        raw = pd.DataFrame(columns)
        resources = frame["resources_deployed"].map(
            lambda r: [] if r is None or isinstance(r, float) else list(r)
        )
        names = getattr(self, "resources_", None) or sorted({x for rs in resources for x in rs})
        for name in names:
            raw[f"res_{name}"] = resources.map(lambda rs, n=name: float(n in rs)).to_numpy()
        if configurations is not None:
            knobs = configurations.reindex(frame["execution_id"].to_numpy())
            table = pd.DataFrame([_flat_config(c) for c in knobs])
            raw = pd.concat([raw, table.reset_index(drop=True)], axis=1)
        return raw

    def fit(self, frame: pd.DataFrame, configurations: pd.Series | None = None) -> RawFieldsModel:

        self.resources_ = None
        raw = self._raw(frame, configurations)
        self.resources_ = [c[4:] for c in raw.columns if c.startswith("res_")]
        self.categories_: dict[str, pd.Index] = {}
        for column in raw.columns:
            if not pd.api.types.is_numeric_dtype(raw[column]):
                top = raw[column].astype(str).value_counts().index[:MAX_CATEGORIES]
                self.categories_[column] = pd.Index(sorted(top))
        self.columns_ = list(raw.columns)
        self.model_ = HistGradientBoostingClassifier(
            max_iter=300,
            learning_rate=0.05,
            categorical_features="from_dtype",
            random_state=self.random_state,
        )
        y = (frame["outcome"] == "success").to_numpy(dtype=np.int64)
        self.constant_ = float(y.mean()) if len(np.unique(y)) < 2 else None
        if self.constant_ is None:
            with openmp_threads(self.n_threads):
                self.model_.fit(self._encode(raw), y)
        return self

    def _encode(self, raw: pd.DataFrame) -> pd.DataFrame:
        raw = raw.reindex(columns=self.columns_)
        for column in self.columns_:
            if column in self.categories_:
                categories = self.categories_[column]
                text = raw[column].map(lambda v: None if v is None or v is np.nan else str(v))
                raw[column] = pd.Categorical(
                    text.where(text.isin(categories), None), categories=categories
                )
            else:
                raw[column] = pd.to_numeric(raw[column], errors="coerce").astype(np.float64)
        return raw

    def predict_proba(
        self, frame: pd.DataFrame, configurations: pd.Series | None = None
    ) -> np.ndarray:
        if not hasattr(self, "columns_"):
            raise ValueError("RawFieldsModel is not fitted")
        if self.constant_ is not None:
            return np.full(len(frame), self.constant_)
        encoded = self._encode(self._raw(frame, configurations))
        with openmp_threads(self.n_threads):
            return cast(np.ndarray, self.model_.predict_proba(encoded)[:, 1])


def _flat_config(config: Any) -> dict[str, Any]:
    """Top-level and nested knobs as ``cfg_<path>``: numbers and booleans as floats, the rest
    as text (lists and objects as JSON)."""
    out: dict[str, Any] = {}
    if not isinstance(config, dict):
        return out

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, bool | int | float):
            out[f"cfg_{prefix}"] = float(value)
        elif value is not None:
            out[f"cfgs_{prefix}"] = value if isinstance(value, str) else str(value)

    walk("", config)
    return out
