"""Models: calibrated success probability, pattern similarity, duration quantiles, baselines
and metrics. Pure scikit-learn estimators; MLflow lives in ``deploylearn.tracking``."""

from deploylearn.models.baselines import (
    BetaPosteriorBaseline,
    GlobalRateBaseline,
    SeedRankingBaseline,
    default_baselines,
)
from deploylearn.models.duration import DurationModel
from deploylearn.models.metrics import (
    brier_score,
    calibration_bins,
    expected_calibration_error,
    log_loss,
    probability_metrics,
    roc_auc,
)
from deploylearn.models.similarity import PatternSimilarity
from deploylearn.models.success import (
    SuccessModel,
    permutation_importances,
    select_success_params,
)

__all__ = [
    "BetaPosteriorBaseline",
    "DurationModel",
    "GlobalRateBaseline",
    "PatternSimilarity",
    "SeedRankingBaseline",
    "SuccessModel",
    "brier_score",
    "calibration_bins",
    "default_baselines",
    "expected_calibration_error",
    "log_loss",
    "permutation_importances",
    "probability_metrics",
    "roc_auc",
    "select_success_params",
]
