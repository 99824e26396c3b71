"""Rolling-origin backtest: how good, how trustworthy and how fast-learning the model is.

The labelled history is cut at ``folds`` origins between ``first_origin`` and the end. At each
origin the model is trained on everything before it (embeddings from the graph before it too)
and scored on the rows up to the next origin, next to every baseline. Per fold and method:

* **pattern confidence**: are the probabilities it reports trustworthy? Brier, log loss, ECE;
* **recommendation accuracy**: does it rank the right pattern first where a choice is made?
  ``context_auc``, the ROC AUC over pairs of runs in the same context (environment + resources),
  and with the synthetic oracle ``regret``: per context, true success probability of the best
  pattern used there minus that of the pattern the method scores highest (mean over rows);
* **cold start**: Brier on rows whose pattern had fewer than five outcomes before it.

**Learning velocity** is the slope of the Brier skill score (1 - Brier / Brier of the global
rate in the same fold) against log2 of the training rows: skill gained per doubling of history.

**Reference baselines** answer "does deploylearn add anything on *this* history?": on the same
rows, a per-gateway running success rate, "parrot" (the previous outcome of the same gateway
and resource set) and plain gradient boosting on each run's raw fields (environment, strategy,
gateway, resources, its own configuration, time; ``models.baselines.RawFieldsModel``) trained
on the same rows as the model. ``verdict`` compares the model with the best of them, fold by
fold. They need no durations, failure reasons or rollbacks, so they run on any store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from deploylearn.models.baselines import RawFieldsModel, parrot, running_rate
from deploylearn.models.success import SuccessModel
from deploylearn.pipeline import steps
from deploylearn.pipeline.training_frame import resolve_embeddings

if TYPE_CHECKING:
    from deploylearn.store.base import Store


@dataclass(frozen=True)
class BacktestSettings:
    folds: int = 4
    first_origin: float = 0.5
    embeddings: str = "auto"
    embedding_dimension: int = 32
    seed: int = 0
    prior_strength: float = 10.0
    success_params: dict[str, Any] = field(default_factory=dict)
    since: datetime | None = None
    min_training_rows: int = 200
    threads: int | None = 1


GATEWAY_RATE = "gateway running rate"
PARROT = "parrot (previous outcome, same gateway + resources)"
RAW_BOOSTING = "plain boosting on raw fields"
REFERENCES = (GATEWAY_RATE, PARROT, RAW_BOOSTING)


@dataclass
class BacktestReport:
    folds: pd.DataFrame
    summary: pd.DataFrame
    settings: dict[str, Any]
    verdict: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "summary": self.summary.to_dict(orient="records"),
            "folds": self.folds.to_dict(orient="records"),
            "verdict": self.verdict,
        }


def run_backtest(
    store: Store,
    settings: BacktestSettings | None = None,
    *,
    truth: pd.Series | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestReport:
    """Backtest on everything in ``store``; ``truth`` (execution_id -> true p) adds the oracle."""
    settings = settings or BacktestSettings()
    history = steps.extract(store)
    mode = resolve_embeddings(history.store_url, settings.embeddings)
    gds_table = (
        steps.gds_embeddings(store, settings.embedding_dimension, settings.seed)
        if mode == "gds"
        else None
    )
    return backtest_history(
        history,
        settings,
        truth=truth,
        progress=progress,
        embeddings=gds_table if gds_table is not None else mode,
        configurations=run_configurations(store),
    )


def run_configurations(store: Store) -> pd.Series:
    """execution_id -> the run's own ``configuration_used`` (as stored: secrets protected)."""
    out: dict[str, Any] = {}
    for batch in store.iter_executions():
        for row in batch:
            out[str(row["execution_id"])] = row.get("configuration_used") or {}
    return pd.Series(out, dtype=object)


def backtest_history(
    history: steps.History,
    settings: BacktestSettings,
    *,
    truth: pd.Series | None = None,
    progress: Callable[[int, int], None] | None = None,
    embeddings: str | pd.DataFrame = "numpy",
    configurations: pd.Series | None = None,
) -> BacktestReport:
    """The backtest of an extracted history (see the module docstring); ``configurations``
    (execution_id -> configuration_used) gives the raw-fields reference its knobs."""
    if settings.folds < 1 or not 0.0 < settings.first_origin < 1.0:
        raise ValueError("folds must be >= 1 and first_origin in (0, 1)")
    times = history.labelled["started_at"]
    if settings.since is not None:
        times = times[times >= pd.Timestamp(settings.since)]
    n = len(times)
    edges = np.linspace(settings.first_origin * n, n, settings.folds + 1).astype(np.int64)
    if edges[0] < settings.min_training_rows:
        raise ValueError(
            f"{n} executions with an outcome leave {edges[0]} rows before the first origin; "
            f"need {settings.min_training_rows}"
        )
    rows: list[pd.DataFrame] = []
    for j in range(settings.folds):
        origin = pd.Timestamp(times.iloc[edges[j]])
        end = pd.Timestamp(times.iloc[edges[j + 1]]) if edges[j + 1] < n else None
        tf = steps.build_features(
            history,
            embeddings=embeddings,
            embedding_dimension=settings.embedding_dimension,
            random_seed=settings.seed,
            graph_until=origin,
            since=settings.since,
        )
        train, rest = steps.split(tf, origin)
        test = rest if end is None else steps.split(rest, end)[0]
        if len(test) == 0 or train.y.nunique() < 2:
            continue
        model = SuccessModel(
            **{
                **settings.success_params,
                "random_state": settings.seed,
                "n_threads": settings.threads,
            }
        )
        model.fit(train.X, train.y)
        predictions = steps.predictions_on(
            model, train, test, prior_strength=settings.prior_strength, truth=truth
        )
        predictions.update(
            reference_predictions(
                history, train, test, configurations, seed=settings.seed, threads=settings.threads
            )
        )
        contexts = steps.holdout_contexts(history, test)
        table = steps.comparison_table(test.y.to_numpy(), predictions, contexts=contexts)
        table = _add_fold_metrics(table, test, predictions, contexts, truth)
        table.insert(0, "fold", j + 1)
        table.insert(1, "origin", origin.isoformat())
        table.insert(2, "training_rows", len(train))
        table.insert(3, "test_rows", len(test))
        rows.append(table)
        if progress:
            progress(j + 1, settings.folds)
    folds = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return BacktestReport(
        folds=folds,
        summary=summarize(folds),
        settings=_settings_dict(settings, embeddings),
        verdict=verdict(folds),
    )


def reference_predictions(
    history: steps.History,
    train: Any,
    test: Any,
    configurations: pd.Series | None,
    *,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, steps.Prediction]:
    """The three reference baselines on ``test``'s rows (see the module docstring)."""
    labelled = history.labelled.reset_index(drop=True)
    wanted = test.meta["execution_id"].to_numpy()
    query = labelled["execution_id"].isin(set(wanted)).to_numpy()
    ids = labelled.loc[query, "execution_id"].to_numpy()

    def aligned(values: np.ndarray) -> np.ndarray:
        series = pd.Series(values, index=ids).reindex(wanted)
        return cast(np.ndarray, series.to_numpy(dtype=np.float64))

    base_rate = float(train.y.mean())
    gateway = aligned(running_rate(labelled, query, ["gateway_host"]))
    echo = aligned(parrot(labelled, query, base_rate))
    train_rows = labelled[labelled["execution_id"].isin(set(train.meta["execution_id"]))]
    raw = RawFieldsModel(random_state=seed, n_threads=threads).fit(train_rows, configurations)
    test_rows = labelled[query]
    boosted = aligned(raw.predict_proba(test_rows, configurations))
    return {
        GATEWAY_RATE: (gateway, gateway),
        PARROT: (echo, echo),
        RAW_BOOSTING: (boosted, boosted),
    }


def verdict(folds: pd.DataFrame) -> list[str]:
    """Plain sentences: the model against the best reference baseline, fold by fold."""
    if folds.empty or steps.MODEL_LABEL not in set(folds["method"]):
        return []
    by = folds.set_index(["method", "fold"])
    model = by.loc[steps.MODEL_LABEL]
    lines = []
    present = [m for m in REFERENCES if m in set(folds["method"])]
    for metric, better, label in (("brier_score", -1, "Brier"), ("roc_auc", 1, "ROC AUC")):
        means = {m: float(by.loc[m][metric].mean()) for m in present}
        best = max(present, key=lambda m: better * means[m])
        delta = model[metric] - by.loc[best][metric].reindex(model.index)
        wins = int((better * delta > 0).sum())
        mean_delta = float(delta.mean())
        verb = "beats" if better * mean_delta > 0 else "does not beat"
        lines.append(
            f"{label}: the success model {verb} the best reference ({best}) by "
            f"{mean_delta:+.4f} on average, better in {wins} of {len(delta)} folds"
        )
    return lines


def _settings_dict(settings: BacktestSettings, embeddings: str | pd.DataFrame) -> dict[str, Any]:
    data = asdict(settings)
    data["embeddings"] = embeddings if isinstance(embeddings, str) else "gds"
    return data


def _add_fold_metrics(
    table: pd.DataFrame,
    test: Any,
    predictions: dict[str, steps.Prediction],
    contexts: list[str],
    truth: pd.Series | None,
) -> pd.DataFrame:
    y = test.y.to_numpy()
    runs = np.nan_to_num(test.X["pattern_successes"].to_numpy()) + np.nan_to_num(
        test.X["pattern_failures"].to_numpy()
    )
    cold = runs < steps.COLD_START_RUNS
    true_p = steps.oracle_probabilities(truth, test) if truth is not None else None
    patterns = test.meta["pattern_id"].to_numpy()
    extra = []
    for _name, (p, score) in predictions.items():
        row: dict[str, float] = {
            "cold_rows": float(cold.sum()),
            "cold_brier": float(np.mean((p[cold] - y[cold]) ** 2)) if cold.any() else np.nan,
        }
        if true_p is not None:
            row["regret"] = pick_regret(score, true_p, contexts, patterns)
        extra.append(row)
    return pd.concat([table, pd.DataFrame(extra)], axis=1)


def pick_regret(
    score: np.ndarray, true_p: np.ndarray, contexts: list[str], patterns: np.ndarray
) -> float:
    """Mean over rows of (best true p in the row's context - true p of the top-scored pattern).

    Only patterns used in the context compete, so this is regret over observed candidates;
    contexts with one pattern carry no choice and are skipped. Ties go to the first pattern.
    """
    frame = pd.DataFrame({"c": contexts, "pattern": patterns, "s": score, "t": true_p})
    by = frame.groupby(["c", "pattern"], sort=True).agg(
        s=("s", "mean"), t=("t", "mean"), n=("t", "size")
    )
    total, weight = 0.0, 0.0
    for _, group in by.groupby(level="c", sort=False):
        if len(group) < 2:
            continue
        picked = group["t"].iloc[int(np.argmax(group["s"].to_numpy()))]
        rows = float(group["n"].sum())
        total += rows * float(group["t"].max() - picked)
        weight += rows
    return total / weight if weight else float("nan")


def summarize(folds: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean of each metric over folds, and learning velocity."""
    if folds.empty:
        return pd.DataFrame()
    metric_columns = [
        c
        for c in folds.columns
        if c not in ("fold", "origin", "training_rows", "test_rows", "method")
    ]
    global_brier = folds[folds["method"] == "global rate"].set_index("fold")["brier_score"]
    out = []
    for method, part in folds.groupby("method", sort=False):
        row: dict[str, Any] = {"method": method}
        row.update({c: float(part[c].mean()) for c in metric_columns if c != "cold_rows"})
        skill = 1.0 - part["brier_score"].to_numpy() / global_brier.reindex(part["fold"]).to_numpy()
        row["brier_skill_first"] = float(skill[0])
        row["brier_skill_last"] = float(skill[-1])
        if len(part) >= 2:
            x = np.log2(part["training_rows"].to_numpy(dtype=np.float64))
            row["learning_velocity"] = float(np.polyfit(x, skill, 1)[0])
        else:
            row["learning_velocity"] = float("nan")
        out.append(row)
    return pd.DataFrame(out)
