"""The learning report: the success model against the baselines and the oracle, on the
synthetic world's time-ordered holdout, with and without graph embeddings.

Used by ``benchmarks/learning_report.py`` and the notebooks; no MLflow. The model is chosen
exactly as ``ign train`` chooses it (hyperparameters on a validation slice of the training
period, calibration on forward folds), so the table measures the shipped procedure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from deploylearn.models.success import (
    DEFAULT_GRID,
    EMBEDDING_FEATURES,
    FEATURE_SETS,
    select_success_params,
)
from deploylearn.pipeline import steps
from deploylearn.pipeline.backtest import pick_regret

if TYPE_CHECKING:
    from deploylearn.learner import DeploymentPatternLearner
    from deploylearn.store.base import Store

# The report compares embedding modes, so its models keep the embeddings they are given; only
# the time trend is chosen (``ign train`` also chooses whether to use the embeddings at all).
KEEP_EMBEDDINGS = {k: v for k, v in FEATURE_SETS.items() if EMBEDDING_FEATURES not in v}

TARGETS = {"brier_vs_oracle": 0.01, "ece": 0.02, "auc_vs_oracle": 0.02}


def record_demo_history(
    learner: DeploymentPatternLearner,
    n_executions: int,
    *,
    seed: int = 0,
    days: int = 365,
    start: datetime = datetime(2025, 1, 1, tzinfo=UTC),
    batch_size: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> pd.Series:
    """Record a synthetic history; returns the true success probability by execution_id."""
    from deploylearn.synthetic import SyntheticWorld

    world = SyntheticWorld(seed=seed, start=start, days=days)
    parts: list[pd.Series] = []
    done = 0
    for batch in world.generate(n_executions=n_executions, batch_size=batch_size):
        learner.record_executions(batch.records, batch_size=len(batch.records))
        ids = [r["execution_id"] for r in batch.records]
        parts.append(pd.Series(batch.true_success_probability, index=ids, name="true_p"))
        done += len(ids)
        if progress:
            progress(done)
    return pd.concat(parts)


def learning_report(
    store: Store,
    truth: pd.Series,
    *,
    embeddings: Sequence[str] = ("numpy", "none"),
    holdout_fraction: float = 0.2,
    seed: int = 0,
    embedding_dimension: int = 32,
    prior_strength: float = 10.0,
    tune: bool = True,
    threads: int | None = 1,
) -> pd.DataFrame:
    """One row per (embeddings, method): ROC AUC, Brier, log loss, ECE, context AUC, regret.

    ``embeddings`` modes: ``numpy``, ``none``, and on a Neo4j store ``gds``.

    Baselines and the oracle do not depend on the embeddings; they are reported once (with the
    first mode). Extra columns give the model's gaps to the oracle and the calibration chosen.
    """
    history = steps.extract(store)
    cut = steps.holdout_start(history, holdout_fraction)
    tables = []
    for i, mode in enumerate(embeddings):
        source: str | pd.DataFrame = mode
        if mode == "gds":  # FastRP inside Neo4j, on the whole current graph (structure only)
            source = steps.gds_embeddings(store, embedding_dimension, seed)
        tf = steps.build_features(
            history,
            embeddings=source,
            embedding_dimension=embedding_dimension,
            random_seed=seed,
            graph_until=cut,
        )
        train, holdout = steps.split(tf, cut)
        params: dict[str, Any] = {}
        if tune:
            params, _ = select_success_params(
                train.X,
                train.y,
                DEFAULT_GRID,
                feature_sets=KEEP_EMBEDDINGS,
                random_state=seed,
                base={"n_threads": threads},
            )
        model = steps.fit_success(train, params, random_state=seed, n_threads=threads)
        predictions = steps.predictions_on(
            model, train, holdout, prior_strength=prior_strength, truth=truth
        )
        if i > 0:
            predictions = {steps.MODEL_LABEL: predictions[steps.MODEL_LABEL]}
        contexts = steps.holdout_contexts(history, holdout)
        table = steps.comparison_table(holdout.y.to_numpy(), predictions, contexts=contexts)
        true_p = steps.oracle_probabilities(truth, holdout)
        patterns = holdout.meta["pattern_id"].to_numpy()
        table["regret"] = [
            pick_regret(score, true_p, contexts, patterns) for _, score in predictions.values()
        ]
        table.insert(0, "embeddings", mode)
        table.loc[table["method"] != steps.MODEL_LABEL, "embeddings"] = "-"
        table["calibration"] = [
            model.calibration_method_ if m == steps.MODEL_LABEL else "" for m in table["method"]
        ]
        table["training_rows"] = len(train)
        table["holdout_rows"] = len(holdout)
        tables.append(table)
    report = pd.concat(tables, ignore_index=True)
    oracle = report[report["method"] == steps.ORACLE_LABEL].iloc[0]
    report["brier_vs_oracle"] = report["brier_score"] - oracle["brier_score"]
    report["auc_vs_oracle"] = report["roc_auc"] - oracle["roc_auc"]
    return report


def meets_targets(report: pd.DataFrame) -> pd.DataFrame:
    """For each model row: Brier within 0.01 of the oracle, ECE <= 0.02, AUC within 0.02."""
    rows = report[report["method"] == steps.MODEL_LABEL]
    return pd.DataFrame(
        {
            "embeddings": rows["embeddings"],
            "brier_within_0.01": rows["brier_vs_oracle"] <= TARGETS["brier_vs_oracle"],
            "ece_at_most_0.02": rows["ece"] <= TARGETS["ece"],
            "auc_within_0.02": -rows["auc_vs_oracle"] <= TARGETS["auc_vs_oracle"],
        }
    ).reset_index(drop=True)
