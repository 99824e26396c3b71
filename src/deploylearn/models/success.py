"""The calibrated success-probability classifier: gradient boosting, calibrated forward in time.

Why this shape (evidence in docs/learning.md):

* **Gradient boosting** (``HistGradientBoostingClassifier``) handles the oracle's interactions
  (strategy x environment, database x backup) and NaN features (unknown embeddings, patterns
  without history) natively, and fits 30,000 rows in about two seconds on two cores.
* **Non-stationary features are left out by default.** Cumulative counts, ``log_runs``, days
  since the first record and a pattern's age grow with time, so a holdout always lies beyond
  the range the trees were trained on; on the demo world they biased holdout predictions by
  -0.04 (ECE 0.04). Rates, recent-window rates and context carry the same information in a
  stationary form. ``exclude_features`` (regular expressions) controls this.
* **Calibration is fitted on forward-chained out-of-fold predictions**: fold j trains on rows
  before its window and predicts the window, the way the model is used (on the future). A
  shuffled ``CalibratedClassifierCV`` learns the wrong map under drift (ECE 0.08 on the demo).
  ``calibration="auto"`` scores none / sigmoid / isotonic on every fold with calibrators fitted
  on the folds before it, and keeps a calibrator only if it lowers the mean log loss by at
  least ``calibration_min_gain``: under drift a map learned on past folds can point the wrong
  way (on the demo world an isotonic map chosen on one fold moved holdout ECE from 0.015 to
  0.023), so "none" wins unless calibration pays consistently. The holdout is never seen.

* **One OpenMP thread by default** (``n_threads``): the boosting's OpenMP threads spin-wait, and
  with the cores shared (three jobs at once on two cores) a fit took 5x longer with two threads
  per job than with one. ``n_threads=None`` uses every core, for a dedicated machine.

Rows passed to ``fit`` must be in time order (``TrainingFrame`` rows are).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import ThreadpoolController, threadpool_limits

from deploylearn.models.metrics import EPS, log_loss, log_losses, standard_error

NONSTATIONARY_FEATURES: tuple[str, ...] = (
    r"_successes$",
    r"_failures$",
    r"_log_runs(_min)?$",
    r"_recent_runs$",
    r"^days_since_first_record$",
    r"^pattern_age_days$",
)
CALIBRATIONS = ("auto", "none", "sigmoid", "isotonic")
MIN_CALIBRATION_ROWS = 100  # per fold: fewer and a calibrator fits noise


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def openmp_threads(n_threads: int | None) -> Iterator[None]:
    """Limit OpenMP (the boosting's thread pool) to ``n_threads``; None leaves it alone."""
    context = (
        nullcontext() if n_threads is None else threadpool_limits(n_threads, user_api="openmp")
    )
    with context:
        yield


def fillable_columns(values: np.ndarray) -> np.ndarray:
    """``values`` with every column that holds no value at all (all NaN) set to 0.

    scikit-learn's histogram binning cannot bin a column without a single value (it raises
    "window shape cannot be larger than input array shape"), and such columns are normal here:
    a knob of a configuration seen once, in a row outside this fit's slice (a later forward
    fold, the holdout). A constant column gets no split, so the fitted trees ignore it and
    predictions on rows that do carry the knob (or NaN) are unchanged. Call before every fit.
    """
    empty = np.isnan(values).all(axis=0)
    if not empty.any():
        return values
    out = values.copy()
    out[:, empty] = 0.0
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return cast(np.ndarray, np.log(p / (1 - p)))


@dataclass
class Calibrator:
    """A fitted map from raw boosted probability to calibrated probability."""

    method: str
    model: Any = None

    @classmethod
    def fit(cls, method: str, scores: np.ndarray, y: np.ndarray, random_state: int) -> Calibrator:
        if method == "none":
            return cls("none")
        if method == "sigmoid":
            # Platt scaling on the logit of the score: the identity map is representable.
            model = LogisticRegression(C=1e4, random_state=random_state)
            model.fit(_logit(scores)[:, None], y)
            return cls("sigmoid", model)
        if method == "isotonic":
            model = IsotonicRegression(out_of_bounds="clip", y_min=EPS, y_max=1 - EPS)
            model.fit(scores, y)
            return cls("isotonic", model)
        raise ValueError(f"unknown calibration {method!r}")

    def transform(self, scores: np.ndarray) -> np.ndarray:
        if self.method == "sigmoid":
            return cast(np.ndarray, self.model.predict_proba(_logit(scores)[:, None])[:, 1])
        if self.method == "isotonic":
            return np.asarray(self.model.predict(scores), dtype=np.float64)
        return scores


class SuccessModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # sklearn: untyped
    """P(success | execution features), calibrated on forward-in-time out-of-fold predictions.

    Args:
        learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization: the
            boosting hyperparameters (see ``HistGradientBoostingClassifier``).
        calibration: ``auto`` (choose on the last forward fold), ``none``, ``sigmoid`` or
            ``isotonic``.
        calibration_folds: forward-chained folds whose predictions fit the calibrator.
        calibration_min_gain: mean log-loss gain (nats) a calibrator needs under ``auto``.
        calibration_start: fraction of the rows before the first fold's window.
        calibration_max_rows: each forward fold trains on at most this many of the most
            recent rows before its window (None: all). Caps the cost at millions of rows; the
            calibrator needs scores like the final model's, not the oldest history.
        exclude_features: regular expressions of feature names the model must not use.
        ranking_exclude_features: if given (and different), ``fit`` also fits the same
            procedure without these columns as ``ranking_``, the model that ranks candidate
            configurations (``ranking_probability``; see ``select_success_params`` for why a
            recommender may want fewer features than a predictor).
        n_threads: OpenMP threads for fitting and predicting (None: all cores).
        random_state: seed of the boosting (binning subsample) and calibrators.
    """

    def __init__(
        self,
        *,
        learning_rate: float = 0.05,
        max_iter: int = 200,
        max_leaf_nodes: int = 7,
        min_samples_leaf: int = 200,
        l2_regularization: float = 1.0,
        calibration: str = "auto",
        calibration_folds: int = 3,
        calibration_start: float = 0.5,
        calibration_min_gain: float = 0.002,
        calibration_max_rows: int | None = 250_000,
        exclude_features: Sequence[str] = NONSTATIONARY_FEATURES,
        ranking_exclude_features: Sequence[str] | None = None,
        n_threads: int | None = 1,
        random_state: int = 0,
    ) -> None:
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.calibration_start = calibration_start
        self.calibration_min_gain = calibration_min_gain
        self.calibration_max_rows = calibration_max_rows
        self.exclude_features = exclude_features
        self.ranking_exclude_features = ranking_exclude_features
        self.n_threads = n_threads
        self.random_state = random_state

    # -- fitting ----------------------------------------------------------------------------
    def _booster(self) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,  # its validation split is shuffled: not across time
            random_state=self.random_state,
        )

    def _validate(self) -> None:
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, not {self.calibration!r}")
        if self.calibration_folds < 1:
            raise ValueError("calibration_folds must be at least 1")
        if not 0.0 < self.calibration_start < 1.0:
            raise ValueError("calibration_start must be in (0, 1)")

    def fit(self, X: pd.DataFrame, y: Any) -> SuccessModel:
        """Fit on time-ordered rows: forward folds for the calibrator, then all rows."""
        self._validate()
        frame = _as_frame(X)
        y_arr = np.asarray(y, dtype=np.int64).ravel()
        if len(frame) != len(y_arr):
            raise ValueError(f"X has {len(frame)} rows but y has {len(y_arr)}")
        if len(np.unique(y_arr)) < 2:
            raise ValueError("SuccessModel needs both successes and failures to fit")
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.used_features_ = _used_columns(frame.columns, self.exclude_features)
        if not self.used_features_:
            raise ValueError("exclude_features left no feature to learn from")
        values = frame[self.used_features_].to_numpy(dtype=np.float32)
        self.classes_ = np.array([0, 1])
        with openmp_threads(self.n_threads):
            self._fit(values, y_arr)
        self.ranking_: SuccessModel | None = None
        ranking = self.ranking_exclude_features
        if ranking is not None and _used_columns(frame.columns, ranking) != self.used_features_:
            params = {**self.get_params(), "exclude_features": tuple(ranking)}
            params["ranking_exclude_features"] = None
            self.ranking_ = SuccessModel(**params).fit(frame, y_arr)
        return self

    def _fit(self, values: np.ndarray, y_arr: np.ndarray) -> None:
        scores, labels, fold_of = self._forward_scores(values, y_arr)
        self.calibration_scores_: dict[str, float] = {}
        method = self.calibration
        if method == "auto":
            method = self._choose_calibration(scores, labels, fold_of)
        if len(scores) < MIN_CALIBRATION_ROWS or len(np.unique(labels)) < 2:
            method = "none"
        self.calibration_method_ = method
        self.calibrator_ = Calibrator.fit(method, scores, labels, self.random_state)
        self.oof_scores_ = scores
        self.oof_labels_ = labels
        self.oof_folds_ = fold_of  # which forward fold each out-of-fold score came from
        self.estimator_ = self._booster().fit(fillable_columns(values), y_arr)

    def _forward_scores(
        self, values: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Out-of-fold scores of forward-chained folds (train on the past, score the next)."""
        n = len(y)
        if self.calibration == "none":
            return np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        edges = np.linspace(self.calibration_start * n, n, self.calibration_folds + 1)
        edges = edges.astype(np.int64)
        scores: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        folds: list[np.ndarray] = []
        for j, (start, stop) in enumerate(itertools.pairwise(edges)):
            if stop <= start or len(np.unique(y[:start])) < 2:
                continue
            first = 0 if self.calibration_max_rows is None else start - self.calibration_max_rows
            first = max(first, 0)
            booster = self._booster().fit(fillable_columns(values[first:start]), y[first:start])
            scores.append(booster.predict_proba(values[start:stop])[:, 1])
            labels.append(y[start:stop])
            folds.append(np.full(stop - start, j))
        if not scores:
            return np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        return np.concatenate(scores), np.concatenate(labels), np.concatenate(folds)

    def _choose_calibration(
        self, scores: np.ndarray, labels: np.ndarray, fold_of: np.ndarray
    ) -> str:
        """Rolling choice: each fold after the first is scored by calibrators fitted on the
        folds before it; a calibrator must beat "none" by ``calibration_min_gain`` on average."""
        if len(scores) == 0:
            return "none"
        losses: dict[str, list[float]] = {"none": [], "sigmoid": [], "isotonic": []}
        for fold in np.unique(fold_of)[1:]:
            earlier, current = fold_of < fold, fold_of == fold
            if earlier.sum() < MIN_CALIBRATION_ROWS or len(np.unique(labels[earlier])) < 2:
                continue
            for method, values in losses.items():
                calibrator = Calibrator.fit(
                    method, scores[earlier], labels[earlier], self.random_state
                )
                values.append(log_loss(labels[current], calibrator.transform(scores[current])))
        if not losses["none"]:
            return "none"
        self.calibration_scores_ = {k: float(np.mean(v)) for k, v in losses.items()}
        best = min(self.calibration_scores_, key=self.calibration_scores_.__getitem__)
        gain = self.calibration_scores_["none"] - self.calibration_scores_[best]
        return best if gain >= self.calibration_min_gain else "none"

    # -- prediction -------------------------------------------------------------------------
    def _values(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        frame = _as_frame(X, self.feature_names_in_)
        used = frame.reindex(columns=self.used_features_)
        return cast(np.ndarray, used.to_numpy(dtype=np.float32))

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Columns: P(failure), P(success)."""
        values = self._values(X)
        with openmp_threads(self.n_threads):
            raw = self.estimator_.predict_proba(values)[:, 1]
        p = np.clip(self.calibrator_.transform(raw), 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def success_probability(self, values: np.ndarray) -> np.ndarray:
        """P(success) for a float array in ``feature_names_in_`` order: the serving path.

        One OpenMP thread: for the few hundred rows of a request, waking a thread pool per
        tree costs 20x the work (measured 9.8 ms vs 0.5 ms for 100 rows x 200 trees). The
        limit goes through a cached ``ThreadpoolController`` (0.03 ms, not 3 ms per call).
        """
        check_is_fitted(self, "estimator_")
        used = getattr(self, "_used_positions", None)
        if used is None:
            position = {str(c): i for i, c in enumerate(self.feature_names_in_)}
            used = np.array([position[str(c)] for c in self.used_features_], dtype=np.intp)
            self._used_positions = used
        with _controller().limit(limits=1, user_api="openmp"):
            raw = self.estimator_.predict_proba(np.asarray(values, np.float32)[:, used])[:, 1]
        return cast(np.ndarray, np.clip(self.calibrator_.transform(raw), 0.0, 1.0))

    def ranking_probability(self, values: np.ndarray) -> np.ndarray:
        """P(success) by the ranking twin (``success_probability`` where there is none):
        what recommendations rank candidate configurations by."""
        ranking = getattr(self, "ranking_", None)  # models pickled before it had one
        return (ranking or self).success_probability(values)

    def decision_function(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return self.predict_proba(X)[:, 1]


def _as_frame(
    X: pd.DataFrame | np.ndarray, names: Sequence[str] | np.ndarray | None = None
) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError("X must be two-dimensional")
    columns = list(names) if names is not None else [f"x{i}" for i in range(array.shape[1])]
    if len(columns) != array.shape[1]:
        raise ValueError(f"X has {array.shape[1]} columns, the model expects {len(columns)}")
    return pd.DataFrame(array, columns=columns)


DEFAULT_GRID: tuple[dict[str, Any], ...] = (
    {"learning_rate": 0.05, "max_iter": 200, "max_leaf_nodes": 7, "min_samples_leaf": 200},
    {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 15, "min_samples_leaf": 100},
    {"learning_rate": 0.03, "max_iter": 400, "max_leaf_nodes": 15, "min_samples_leaf": 200},
)
TREND_FEATURE = r"^days_since_first_record$"
EMBEDDING_FEATURES = r"^emb_"
CONFIGURATION_HISTORY = r"^pattern_"  # a configuration's own track record (its pattern's counts)
# Which feature blocks a store's model uses, chosen per store by ``select_success_params``:
# whether a time trend helps (a store whose success rate drifts) or hurts (trees extrapolate a
# trend past the training range), whether graph embeddings add signal beyond the raw context
# or only noise, and whether a configuration's own track record says more than its knobs,
# differ between histories, so none is fixed here. Every combination of the three is a set.
_TREND_CHOICES = {
    "stationary": NONSTATIONARY_FEATURES,
    "with trend": tuple(p for p in NONSTATIONARY_FEATURES if p != TREND_FEATURE),
}
_BLOCK_CHOICES: dict[str, tuple[str, ...]] = {
    "": (),
    ", no embeddings": (EMBEDDING_FEATURES,),
    ", no configuration history": (CONFIGURATION_HISTORY,),
    ", no embeddings, no configuration history": (EMBEDDING_FEATURES, CONFIGURATION_HISTORY),
}
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    trend + blocks: (*base, *extra)
    for trend, base in _TREND_CHOICES.items()
    for blocks, extra in _BLOCK_CHOICES.items()
}
# The predictor's choice (``exclude_features``) is among these: a configuration's own track
# record is dropped only from the ranking (``ranking_exclude_features``), see
# ``select_success_params``.
PREDICTOR_SETS: frozenset[str] = frozenset(
    name for name, patterns in FEATURE_SETS.items() if CONFIGURATION_HISTORY not in patterns
)


def feature_set_name(exclude_features: Sequence[str]) -> str:
    """The ``FEATURE_SETS`` name of an exclusion list, or ``custom``."""
    for name, patterns in FEATURE_SETS.items():
        if tuple(patterns) == tuple(exclude_features):
            return name
    return "custom"


def select_success_params(
    X: pd.DataFrame,
    y: Any,
    grid: Sequence[Mapping[str, Any]] = DEFAULT_GRID,
    *,
    feature_sets: Mapping[str, Sequence[str]] | None = None,
    validation_fraction: float = 0.2,
    random_state: int = 0,
    base: Mapping[str, Any] | None = None,
    max_rows: int | None = 250_000,
    predictor_sets: Collection[str] = PREDICTOR_SETS,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Pick boosting hyperparameters, then the feature sets, by log loss on the last slice of
    the training period.

    Each candidate trains (uncalibrated, to keep it cheap) on the rows before the slice, at
    most the ``max_rows`` most recent of them (a grid over a million rows would cost more than
    the choice is worth). The grid is scored with the default feature set, then each of
    ``feature_sets`` (default ``FEATURE_SETS``; ``{}`` skips this stage) with the best
    parameters: two small searches instead of their product. A feature set that leaves the
    same columns as one already scored (a frame without embeddings) is not fitted twice. The
    holdout is never touched: callers pass the training period only.

    Two sets come out of the second stage. ``exclude_features``, the predictor's, has the
    lowest log loss among the default set and ``predictor_sets`` (default
    ``PREDICTOR_SETS``: a predictor keeps a configuration's own track record, as before that
    block was a choice). ``ranking_exclude_features``, the recommender's, is the set with the
    fewest columns whose log loss is within one standard error (of the paired per-row
    difference) of the lowest: the one-standard-error rule. A recommender takes the argmax
    over hundreds of configurations, many run a few times; features that only a
    configuration's identity explains (its own counts, its graph embedding) are noisy for
    those, and the argmax picks exactly the noisiest. Where the validation slice cannot tell
    the sets apart, the ranking uses the one with the least room for that noise.

    Returns the best parameters (with both exclusions when feature sets were scored) and one
    row per candidate (``validation_log_loss``, ``loss_se`` against the best set, ``used``).
    """
    y_arr = np.asarray(y, dtype=np.int64).ravel()
    cut = round(len(y_arr) * (1 - validation_fraction))
    first = 0 if max_rows is None else max(cut - max_rows, 0)
    if cut < 1 or cut >= len(y_arr) or len(np.unique(y_arr[first:cut])) < 2:
        raise ValueError("the training period is too small to hold a validation slice")
    default_exclude = tuple((base or {}).get("exclude_features", NONSTATIONARY_FEATURES))
    y_valid = y_arr[cut:]

    def row_losses(params: Mapping[str, Any]) -> np.ndarray:
        settings = {**(base or {}), **params, "calibration": "none", "random_state": random_state}
        model = SuccessModel(**settings).fit(X.iloc[first:cut], y_arr[first:cut])
        return log_losses(y_valid, model.predict_proba(X.iloc[cut:])[:, 1])

    default_name = feature_set_name(default_exclude)
    grid_losses = [row_losses(p) for p in grid]
    rows = [
        {**p, "features": default_name, "validation_log_loss": float(loss.mean())}
        for p, loss in zip(grid, grid_losses, strict=True)
    ]
    at = int(np.argmin([loss.mean() for loss in grid_losses]))
    best = dict(grid[at])
    sets = FEATURE_SETS if feature_sets is None else feature_sets
    if not sets:
        return best, pd.DataFrame(rows)
    used = _used_columns(X.columns, default_exclude)
    stage = [_Scored(default_name, default_exclude, grid_losses[at], len(used))]
    tried = {tuple(used)}
    for name, exclude in sets.items():
        used = _used_columns(X.columns, exclude)
        if not used or tuple(used) in tried:
            continue
        tried.add(tuple(used))
        loss = row_losses({**best, "exclude_features": tuple(exclude)})
        stage.append(_Scored(name, tuple(exclude), loss, len(used)))
    lowest = min(stage, key=lambda c: c.mean)
    se = [standard_error(c.loss - lowest.loss) for c in stage]
    within = [c for c, e in zip(stage, se, strict=True) if c.mean - lowest.mean <= e]
    predictor = min(
        (c for i, c in enumerate(stage) if i == 0 or c.name in predictor_sets),
        key=lambda c: c.mean,
    )
    best["exclude_features"] = predictor.exclude
    best["ranking_exclude_features"] = min(within, key=lambda c: (c.used, c.mean)).exclude
    rows += [
        {
            **grid[at],
            "features": c.name,
            "validation_log_loss": c.mean,
            "loss_se": e,
            "used": c.used,
        }
        for c, e in zip(stage[1:], se[1:], strict=True)
    ]
    return best, pd.DataFrame(rows)


@dataclass(frozen=True)
class _Scored:
    """One feature set of the second stage: its per-row validation losses and width."""

    name: str
    exclude: tuple[str, ...]
    loss: np.ndarray
    used: int

    @property
    def mean(self) -> float:
        return float(self.loss.mean())


def _used_columns(columns: Sequence[Any], exclude: Sequence[str]) -> list[Any]:
    """The columns no pattern of ``exclude`` matches (by name), in order."""
    patterns = [re.compile(p) for p in exclude]
    return [c for c in columns if not any(p.search(str(c)) for p in patterns)]


def feature_group(name: str) -> str:
    """What a column is part of, for importances: an embedding block (``emb_pattern``), a
    one-hot category (``deployment_strategy``), a knob with levels (``cfg__security_policy``);
    anything else is its own group. Shuffling a block's columns together asks what the block
    is worth; one of 32 embedding dimensions on its own says nothing."""
    if name.startswith("emb_"):
        return name.rsplit("_", 1)[0]
    parts = name.split("__")
    if parts[0] in ONE_HOT_GROUPS and len(parts) > 1:
        return parts[0]
    if parts[0] == "cfg" and len(parts) > 2:
        return "__".join(parts[:2])
    return name


ONE_HOT_GROUPS = (
    "deployment_strategy",
    "target_environment",
    "source_environment",
    "deployment_type",
)


def permutation_importances(
    model: SuccessModel,
    X: pd.DataFrame,
    y: Any,
    *,
    n_repeats: int = 3,
    max_rows: int = 2000,
    random_state: int = 0,
) -> pd.DataFrame:
    """Increase in Brier score when a used feature group (``feature_group``) is shuffled, on
    at most ``max_rows`` held-out rows; one row per group with its mean, std and column count.

    Boosted trees have no trustworthy built-in importance (split gain favours many-valued
    features); permutation importance on held-out rows measures what the predictions need.
    """
    check_is_fitted(model, "estimator_")
    frame = _as_frame(X).reindex(columns=model.feature_names_in_)
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    rng = np.random.default_rng(random_state)
    if len(frame) > max_rows:
        chosen = np.sort(rng.choice(len(frame), max_rows, replace=False))
        frame, y_arr = frame.iloc[chosen], y_arr[chosen]
    values = frame.to_numpy(dtype=np.float32)
    position = {str(c): i for i, c in enumerate(model.feature_names_in_)}
    groups: dict[str, list[int]] = {}
    for name in model.used_features_:
        groups.setdefault(feature_group(str(name)), []).append(position[str(name)])
    base = float(np.mean((model.success_probability(values) - y_arr) ** 2))
    rows = []
    for group, columns in groups.items():
        losses = []
        for _ in range(n_repeats):
            shuffled = values.copy()
            shuffled[:, columns] = values[rng.permutation(len(values))][:, columns]
            losses.append(float(np.mean((model.success_probability(shuffled) - y_arr) ** 2)))
        increase = np.array(losses) - base
        rows.append(
            {
                "feature": group,
                "importance": float(increase.mean()),
                "std": float(increase.std()),
                "columns": len(columns),
            }
        )
    table = pd.DataFrame(rows, columns=["feature", "importance", "std", "columns"])
    return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


__all__ = [
    "DEFAULT_GRID",
    "FEATURE_SETS",
    "NONSTATIONARY_FEATURES",
    "PREDICTOR_SETS",
    "Calibrator",
    "SuccessModel",
    "feature_group",
    "feature_set_name",
    "permutation_importances",
    "select_success_params",
]
