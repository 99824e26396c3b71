"""Training steps as plain functions: frames in, frames, estimators and dicts out.

Only ``extract`` (and ``gds_embeddings``) touch the store; nothing here touches MLflow. The
runner (``pipeline.train``) wires the steps together and does the logging, which keeps every
step testable on a hand-made frame and reusable from a notebook.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from deploylearn.domain.records import DeploymentPattern
from deploylearn.domain.vocabulary import Label
from deploylearn.features import (
    TrainingFrame,
    fastrp_node_embeddings,
    knob_table,
    training_frame_from_history,
)
from deploylearn.features.embeddings import embedding_lookup
from deploylearn.features.frame import FastRPParams
from deploylearn.models.baselines import default_baselines
from deploylearn.models.duration import DurationModel
from deploylearn.models.metrics import (
    DEFAULT_BINS,
    brier_score,
    calibration_bins,
    coverage,
    pinball_loss,
    probability_metrics,
    within_group_auc,
)
from deploylearn.models.similarity import PatternSimilarity
from deploylearn.models.success import SuccessModel
from deploylearn.pipeline.training_frame import gds_node_embeddings
from deploylearn.serving.blend import (
    CONFIDENCE_QUANTILE,
    HALF_LIFE_GRID,
    BlendParams,
    blended_mean,
    choose_blend,
    choose_ranking,
    decayed_counts_as_of,
    posterior,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from deploylearn.store.base import Store

MODEL_LABEL = "success model"
RANKING_LABEL = "ranking twin (recommendations)"
ORACLE_LABEL = "oracle (true probability)"
COLD_START_RUNS = 5  # a pattern with fewer outcomes than this is "cold"


@dataclass(frozen=True)
class History:
    """What the store holds, as of extraction: executions (time-ordered) and patterns."""

    frame: pd.DataFrame
    patterns: list[DeploymentPattern]
    store_url: str

    @property
    def labelled(self) -> pd.DataFrame:
        """Executions with an outcome (training rows), time-ordered."""
        return self.frame[self.frame["outcome"].isin(["success", "failure"])]


# -- extract ---------------------------------------------------------------------------------
def extract(store: Store) -> History:
    """Load every execution and pattern (history features need all of it, whatever ``since``)."""
    frame = store.executions_frame()
    frame = frame.sort_values(["started_at", "execution_id"], kind="stable").reset_index(drop=True)
    return History(frame=frame, patterns=list(store.patterns()), store_url=store.url)


def gds_embeddings(store: Store, dimension: int, random_seed: int) -> pd.DataFrame:
    """FastRP inside Neo4j on the whole current graph (GDS cannot cut the graph at a time)."""
    return gds_node_embeddings(store, FastRPParams(dimension=dimension, random_seed=random_seed))


def fingerprint(history: History, settings: Mapping[str, Any]) -> str:
    """Hash of the labelled rows (id, time, pattern, outcome) and the settings: same data and
    same settings give the same fingerprint, so a second nightly run can be a no-op."""
    rows = history.labelled[["execution_id", "started_at", "pattern_id", "outcome"]]
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(rows.astype(str), index=False).to_numpy().tobytes())
    digest.update(json.dumps(dict(settings), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


# -- split and features ----------------------------------------------------------------------
def holdout_start(
    history: History,
    holdout_fraction: float,
    *,
    since: datetime | None = None,
    min_training_rows: int = 200,
    min_holdout_rows: int = 100,
) -> pd.Timestamp:
    """Start time of the holdout: the last ``holdout_fraction`` of labelled rows, by time.

    Rows at the same instant stay on one side. Raises ``ValueError`` when either side would be
    smaller than its minimum.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError("holdout_fraction must be in (0, 1)")
    times = history.labelled["started_at"]
    if since is not None:
        times = times[times >= pd.Timestamp(since)]
    n = len(times)
    if n == 0:
        raise ValueError("no execution with an outcome to train on")
    cut = pd.Timestamp(times.iloc[min(round(n * (1 - holdout_fraction)), n - 1)])
    training = int((times < cut).sum())
    if training < min_training_rows or n - training < min_holdout_rows:
        raise ValueError(
            f"{n} executions with an outcome give {training} training and {n - training} "
            f"holdout rows; need at least {min_training_rows} and {min_holdout_rows}"
        )
    return cut


def build_features(
    history: History,
    *,
    embeddings: str | pd.DataFrame,
    embedding_dimension: int = 32,
    random_seed: int = 0,
    graph_until: pd.Timestamp | None = None,
    since: datetime | None = None,
) -> TrainingFrame:
    """The training frame; numpy embeddings come from the graph of runs before ``graph_until``.

    Embeddings are structure, not outcomes, but structure from after a holdout row (which
    gateways a pattern will later run on) is still from its future, so they are computed on the
    graph as of the holdout start and the same table serves training and holdout rows.
    """
    node_embeddings: str | pd.DataFrame = embeddings
    if isinstance(embeddings, str) and embeddings == "numpy":
        frame = history.frame
        if graph_until is not None:
            frame = frame[frame["started_at"] < graph_until]
        node_embeddings = fastrp_node_embeddings(
            frame, history.patterns, dimension=embedding_dimension, random_seed=random_seed
        )
    return training_frame_from_history(
        history.frame,
        history.patterns,
        embeddings=node_embeddings,
        fastrp_params=FastRPParams(dimension=embedding_dimension, random_seed=random_seed),
        since=since,
    )


def split(tf: TrainingFrame, cut: pd.Timestamp) -> tuple[TrainingFrame, TrainingFrame]:
    """Rows starting before ``cut`` (training) and at or after it (holdout)."""
    before = (tf.meta["started_at"] < cut).to_numpy()
    return subset(tf, before), subset(tf, ~before)


def subset(tf: TrainingFrame, mask: np.ndarray) -> TrainingFrame:
    """The rows of ``tf`` where ``mask`` is true (meta, labels and features together)."""
    return TrainingFrame(
        X=tf.X.loc[mask].reset_index(drop=True),
        y=tf.y.loc[mask].reset_index(drop=True),
        meta=tf.meta.loc[mask].reset_index(drop=True),
        feature_names=tf.feature_names,
        embeddings=tf.embeddings,
        node_embeddings=tf.node_embeddings,
        timings=tf.timings,
    )


# -- success model ---------------------------------------------------------------------------
def fit_success(
    train: TrainingFrame,
    params: Mapping[str, Any] | None = None,
    *,
    random_state: int = 0,
    n_threads: int | None = 1,
) -> SuccessModel:
    settings = {**dict(params or {}), "random_state": random_state, "n_threads": n_threads}
    return SuccessModel(**settings).fit(train.X, train.y)


Prediction = tuple[np.ndarray, np.ndarray]  # (probability, ranking score)


def predictions_on(
    model: SuccessModel,
    train: TrainingFrame,
    holdout: TrainingFrame,
    *,
    prior_strength: float = 10.0,
    truth: pd.Series | None = None,
) -> dict[str, Prediction]:
    """Holdout probabilities of the model, its ranking twin (if it has one), every baseline
    and (if given) the oracle."""
    p = model.predict_proba(holdout.X)[:, 1]
    out: dict[str, Prediction] = {MODEL_LABEL: (p, p)}
    twin = getattr(model, "ranking_", None)
    if twin is not None:
        q = twin.predict_proba(holdout.X)[:, 1]
        out[RANKING_LABEL] = (q, q)
    for name, baseline in default_baselines(prior_strength).items():
        baseline.fit(train.X, train.y)
        out[name] = (baseline.predict_proba(holdout.X)[:, 1], baseline.decision_function(holdout.X))
    if truth is not None:
        oracle = oracle_probabilities(truth, holdout)
        out[ORACLE_LABEL] = (oracle, oracle)
    return out


def oracle_probabilities(truth: pd.Series, frame: TrainingFrame) -> np.ndarray:
    """The world's true probability per row (``truth`` indexed by execution_id)."""
    values = truth.reindex(frame.meta["execution_id"].to_numpy())
    if values.isna().any():
        raise ValueError(f"truth lacks {int(values.isna().sum())} execution ids of the frame")
    return cast(np.ndarray, values.to_numpy(dtype=np.float64))


def comparison_table(
    y: np.ndarray,
    predictions: Mapping[str, Prediction],
    *,
    contexts: Sequence[object] | None = None,
    n_bins: int = DEFAULT_BINS,
) -> pd.DataFrame:
    """One row per method: ROC AUC (of its ranking score), Brier, log loss, ECE of its
    probability, and with ``contexts`` the within-context AUC (ranking where it matters)."""
    rows = []
    for name, (p, score) in predictions.items():
        row: dict[str, Any] = {"method": name, **probability_metrics(y, p, score, n_bins)}
        if contexts is not None:
            row["context_auc"] = within_group_auc(y, score, contexts)
        rows.append(row)
    return pd.DataFrame(rows)


def holdout_contexts(history: History, frame: TrainingFrame) -> list[str]:
    """A recommendation context per row: target environment + the set of resources."""
    resources = history.frame.set_index("execution_id")["resources_deployed"]
    picked = resources.reindex(frame.meta["execution_id"].to_numpy())
    return [
        f"{env}|{','.join(sorted(r)) if isinstance(r, list | tuple | np.ndarray) else ''}"
        for env, r in zip(frame.meta["target_environment"], picked, strict=True)
    ]


# -- serving blend ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BlendChoice:
    """What the backtest of the serving blend chose, and the evidence."""

    params: BlendParams
    table: pd.DataFrame
    scores: dict[str, float]
    note: str


def blend_backtest(model: SuccessModel, train: TrainingFrame, history: History) -> BlendChoice:
    """Choose the serving blend and ranking rule on the model's last forward fold.

    The fold's rows were scored by a booster trained only on rows before them (the model's own
    out-of-fold scores, calibrated with its calibrator), so this is a time-ordered backtest
    inside the training period. Each row's pattern x environment counts are folded as serving
    would have folded them just before it started (point in time, decayed per half-life).
    """
    folds = getattr(model, "oof_folds_", None)
    if folds is None or not len(folds):
        return BlendChoice(BlendParams(), pd.DataFrame(), {}, "no forward fold: no blend")
    last = folds == folds.max()
    n = int(last.sum())
    p = model.calibrator_.transform(model.oof_scores_[last])
    y = model.oof_labels_[last]
    rows = train.meta.iloc[len(train) - n :]
    labelled = history.labelled
    start = pd.to_datetime(labelled["started_at"], utc=True)
    completed = pd.to_datetime(labelled["completed_at"], utc=True)
    events = pd.DataFrame(
        {
            "key": _pattern_env(labelled),
            "known": completed.where(completed.notna() & (completed >= start), start),
            "success": (labelled["outcome"] == "success").to_numpy(),
        }
    )
    queries = pd.DataFrame(
        {"key": _pattern_env(rows), "at": pd.to_datetime(rows["started_at"], utc=True)}
    )
    counts = {h: decayed_counts_as_of(events, queries, h) for h in HALF_LIFE_GRID}
    params, table = choose_blend(p, y, counts)
    s, f = counts[params.half_life_days if params.blends else HALF_LIFE_GRID[-1]]
    mean = blended_mean(p, s, f, params.prior_strength)
    lower = posterior(p, s, f, params.prior_strength).quantile(CONFIDENCE_QUANTILE)[0]
    contexts = holdout_contexts(history, subset(train, np.arange(len(train)) >= len(train) - n))
    rank_by, scores = choose_ranking(y, contexts, mean, lower)
    note = (
        f"blend k={params.prior_strength:g}, half-life {params.half_life_days:g} d"
        if params.blends
        else "no blend (counts did not lower log loss beyond noise)"
    )
    return BlendChoice(
        BlendParams(params.prior_strength, params.half_life_days, rank_by),
        table,
        {**scores, "rows": float(n)},
        f"{note}; rank by {rank_by}",
    )


def _pattern_env(frame: pd.DataFrame) -> np.ndarray:
    key = frame["pattern_id"].astype(str) + "\x1f" + frame["target_environment"].astype(str)
    return cast(np.ndarray, key.to_numpy(dtype=object))


# -- duration model --------------------------------------------------------------------------
def durations(history: History, frame: TrainingFrame) -> np.ndarray:
    """Seconds per row of ``frame`` (NaN where the run has no completion time)."""
    seconds = history.frame.set_index("execution_id")["duration_seconds"]
    per_row = seconds.reindex(frame.meta["execution_id"].to_numpy())
    return cast(np.ndarray, per_row.to_numpy(dtype=np.float64))


def fit_duration(
    train: TrainingFrame, seconds: np.ndarray, *, random_state: int = 0, n_threads: int | None = 1
) -> DurationModel:
    model = DurationModel(random_state=random_state, n_threads=n_threads)
    return model.fit(train.X, seconds)


def try_fit(fit: Any, *args: Any, **kwargs: Any) -> tuple[Any | None, str | None]:
    """``(fit(...), None)``, or ``(None, reason)`` when the data cannot support that model
    (a real history without durations, say): the rest of training goes on without it."""
    try:
        return fit(*args, **kwargs), None
    except ValueError as exc:
        return None, str(exc)


def duration_metrics(
    model: DurationModel, holdout: TrainingFrame, seconds: np.ndarray
) -> dict[str, float]:
    """Pinball loss (seconds) and coverage per quantile on rows with a known duration."""
    known = np.isfinite(seconds) & (seconds > 0)
    if not known.any():
        return {}
    predicted = model.predict_quantiles(holdout.X.loc[known])
    out: dict[str, float] = {}
    for column, q in zip(predicted.columns, model.quantiles_, strict=True):
        out[f"duration_{column}_pinball_s"] = pinball_loss(seconds[known], predicted[column], q)
        out[f"duration_{column}_coverage"] = coverage(seconds[known], predicted[column])
    return out


# -- similarity model ------------------------------------------------------------------------
def pattern_vectors(
    patterns: Sequence[DeploymentPattern], node_embeddings: pd.DataFrame | None
) -> pd.DataFrame:
    """One row per pattern (index pattern_id): configuration knobs and its graph embedding."""
    vectors = knob_table(patterns)
    if node_embeddings is not None and not node_embeddings.empty:
        lookup = embedding_lookup(node_embeddings, Label.PATTERN)
        dimension = len(next(iter(lookup.values()))) if lookup else 0
        table = np.full((len(vectors), dimension), np.nan, dtype=np.float64)
        for i, pattern_id in enumerate(vectors.index):
            vector = lookup.get(str(pattern_id))
            if vector is not None:
                table[i] = vector
        embedding = pd.DataFrame(
            table, index=vectors.index, columns=[f"emb_{j}" for j in range(dimension)]
        )
        vectors = pd.concat([vectors, embedding], axis=1)
    return vectors.astype(np.float64)


def pattern_outcomes(train: TrainingFrame, pattern_ids: Sequence[str]) -> tuple[np.ndarray, ...]:
    """Success rate (NaN if never run) and run count per pattern over the training rows."""
    grouped = pd.DataFrame({"p": train.meta["pattern_id"].to_numpy(), "y": train.y.to_numpy()})
    stats = grouped.groupby("p")["y"].agg(["mean", "size"]).reindex(list(pattern_ids))
    return stats["mean"].to_numpy(dtype=np.float64), stats["size"].fillna(0).to_numpy()


def fit_similarity(
    vectors: pd.DataFrame, train: TrainingFrame, *, prior_strength: float = 10.0
) -> PatternSimilarity:
    rates, runs = pattern_outcomes(train, list(vectors.index))
    return PatternSimilarity(prior_strength=prior_strength).fit(vectors, rates, runs)


def cold_start_metrics(
    similarity: PatternSimilarity,
    vectors: pd.DataFrame,
    train: TrainingFrame,
    holdout: TrainingFrame,
) -> dict[str, float]:
    """On holdout rows of patterns never run in training: Brier of the neighbours' prior vs
    the global rate (what a brand-new pattern would otherwise get)."""
    seen = set(train.meta["pattern_id"])
    cold = ~holdout.meta["pattern_id"].isin(seen).to_numpy()
    if not cold.any():
        return {"cold_start_rows": 0.0}
    ids = holdout.meta["pattern_id"].to_numpy()[cold]
    prior = pd.Series(similarity.predict(vectors), index=vectors.index).reindex(ids)
    prior = prior.fillna(similarity.global_rate_).to_numpy()
    y = holdout.y.to_numpy()[cold]
    return {
        "cold_start_rows": float(cold.sum()),
        "cold_start_brier_similarity": brier_score(y, prior),
        "cold_start_brier_global": brier_score(y, np.full(len(y), float(train.y.mean()))),
    }


# -- figures ---------------------------------------------------------------------------------
def calibration_figure(
    y: np.ndarray, predictions: Mapping[str, Prediction], *, n_bins: int = DEFAULT_BINS
) -> Figure:
    """Reliability diagram (equal-mass bins) of each method, with a histogram of the model's."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 7), layout="constrained")
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for name, (p, _) in predictions.items():
        if len(np.unique(p)) < 3:
            continue  # constant or two-valued: a point, not a curve
        table = calibration_bins(y, p, n_bins)
        top.plot(table["mean_predicted"], table["observed_rate"], marker="o", label=name)
    top.set_ylabel("observed success rate")
    top.set_title(f"holdout calibration ({n_bins} equal-mass bins)")
    top.legend(loc="upper left", fontsize="small")
    model_p = predictions[MODEL_LABEL][0] if MODEL_LABEL in predictions else None
    if model_p is not None:
        bottom.hist(model_p, bins=40, range=(0, 1), color="tab:blue")
    bottom.set_xlabel("predicted P(success)")
    bottom.set_ylabel("rows")
    return figure


def importance_figure(table: pd.DataFrame, top: int = 20) -> Figure:
    """Horizontal bars of the ``top`` permutation importances."""
    from matplotlib.figure import Figure

    shown = table.head(top).iloc[::-1]
    figure = Figure(figsize=(7, 0.3 * len(shown) + 1.2), layout="constrained")
    axes = figure.subplots()
    axes.barh(shown["feature"], shown["importance"], xerr=shown["std"], color="tab:blue")
    axes.set_xlabel("Brier score increase when shuffled")
    axes.set_title("permutation importance on the holdout")
    return figure
