"""The training pipeline: steps as plain functions, the nightly runner, backtests, the lock.

``run_training(store, TrainingSettings(...))`` is the nightly job (``ign train``);
``run_backtest(store, BacktestSettings(...))`` the rolling-origin evaluation
(``ign evaluate backtest``).
"""

from deploylearn.pipeline.backtest import BacktestReport, BacktestSettings, run_backtest
from deploylearn.pipeline.lock import TrainingLockedError, training_lock
from deploylearn.pipeline.train import (
    EXIT_GATE_REFUSED,
    EXIT_LOCKED,
    EXIT_OK,
    NotEnoughDataError,
    TrainingRun,
    TrainingSettings,
    run_training,
)

__all__ = [
    "EXIT_GATE_REFUSED",
    "EXIT_LOCKED",
    "EXIT_OK",
    "BacktestReport",
    "BacktestSettings",
    "NotEnoughDataError",
    "TrainingLockedError",
    "TrainingRun",
    "TrainingSettings",
    "run_backtest",
    "run_training",
    "training_lock",
]
