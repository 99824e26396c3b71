"""``run_training``: the nightly job. extract -> features -> train -> evaluate -> register ->
gate -> promote, in one place, under a lock.

* **Idempotent**: the run's fingerprint (labelled rows + settings) is a tag; if a finished run
  already has it, nothing is trained and the outcome is ``unchanged`` (``force`` overrides).
* **Honest holdout**: the last ``holdout_fraction`` of labelled rows by time. Hyperparameters,
  feature set and calibration are chosen inside the training period. The holdout judges the
  procedure; what is registered and serves is that procedure refit on every labelled row
  (``refit``; the newest history is what matters most under drift), and its evaluated twin is
  logged beside it so that the next run's gate compares evaluated models on rows neither saw.
* **Gate** (``pipeline.gate``, checked by MLflow's validation): the challenger must not be
  worse than what serves now, on the same holdout rows: the champion (rows after both models'
  training cut-offs, with its own embedding table), or before any promotion the serving
  fallback (empirical prior). Brier is refused only when worse beyond the paired noise band
  (+ ``tolerance``), or, with ``min_improvement``, when not better by that much; ECE and AUC
  are held to ``max_ece`` / ``min_auc`` or the reference's own value, whichever is looser.
  ``champion`` moves only on a pass.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from deploylearn.errors import DeploylearnError
from deploylearn.features import TrainingFrame, training_frame_from_history
from deploylearn.models.metrics import calibration_noise
from deploylearn.models.success import (
    DEFAULT_GRID,
    SuccessModel,
    feature_set_name,
    permutation_importances,
    select_success_params,
)
from deploylearn.pipeline import provenance, steps
from deploylearn.pipeline.gate import (
    FALLBACK_LABEL,
    GateRules,
    fallback_probabilities,
    gate_rules,
)
from deploylearn.pipeline.lock import training_lock
from deploylearn.pipeline.training_frame import resolve_embeddings
from deploylearn.serving.blend import DEFAULT_PRIOR_STRENGTH, NO_MODEL, BlendParams
from deploylearn.tracking.champion import (
    CUTOFF_TAG,
    EMBEDDINGS_ARTIFACT,
    TRAINED_UNTIL_TAG,
)
from deploylearn.tracking.paths import default_tracking_uri, mlruns_dir

if TYPE_CHECKING:
    from deploylearn.store.base import Store
    from deploylearn.tracking.registry import GateResult, ModelRef, Registry

Outcome = Literal["promoted", "unchanged", "refused", "dry_run"]
EXIT_OK = 0
EXIT_GATE_REFUSED = 5
EXIT_LOCKED = 6
EVALUATED_MODEL_TAG = "deploylearn.evaluated_model"  # URI of the evaluated twin of a refit
EVALUATED_MODEL_NAME = "success_model_evaluated"
# Pseudo-runs of the Beta-posterior baselines and the similarity prior (not the serving blend,
# which ``steps.blend_backtest`` fits on each store and logs as ``blend.*`` run params).
BASELINE_PRIOR_STRENGTH = DEFAULT_PRIOR_STRENGTH


class NotEnoughDataError(DeploylearnError, ValueError):
    """Too few executions with an outcome to train and hold out."""


@dataclass(frozen=True)
class TrainingSettings:
    """Everything a training run depends on (all of it lands in MLflow params)."""

    seed: int = 0
    holdout_fraction: float = 0.2
    since: datetime | None = None
    embeddings: str = "auto"
    embedding_dimension: int = 32
    tune: bool = True
    refit: bool = True  # serve a refit on every labelled row (False: serve the evaluated model)
    success_params: dict[str, Any] = field(default_factory=dict)
    blend_prior_strength: float | None = None  # None: fitted by backtest (inf = no blend)
    blend_half_life_days: float | None = None
    max_ece: float = 0.03
    min_auc: float = 0.55
    tolerance: float = 0.0
    min_improvement: float | None = None
    min_training_rows: int = 200
    min_holdout_rows: int = 100
    importance_repeats: int = 3
    threads: int | None = 1
    dry_run: bool = False
    force: bool = False
    tracking_uri: str | None = None
    lock_path: Path | None = None

    def fingerprint_fields(self) -> dict[str, Any]:
        """The settings that change what is trained (not how the run is reported)."""
        skip = {"dry_run", "force", "tracking_uri", "lock_path", "importance_repeats", "threads"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


@dataclass
class TrainingRun:
    """What a run did; ``exit_code`` is what a scheduler should see."""

    outcome: Outcome
    message: str
    fingerprint: str
    run_id: str | None = None
    tracking_uri: str | None = None
    store_id: str | None = None  # the store it learned from (Store.store_id)
    training_rows: int = 0
    holdout_rows: int = 0
    served_rows: int = 0  # rows the served success model learned from (all, after a refit)
    holdout_start: str | None = None
    embeddings: str = "none"
    success_params: dict[str, Any] = field(default_factory=dict)
    calibration: str | None = None
    comparison: pd.DataFrame | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    gate: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=dict)
    previous_champions: dict[str, str | None] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    blend: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # model kind -> why it was not fitted

    @property
    def exit_code(self) -> int:
        return EXIT_GATE_REFUSED if self.outcome == "refused" else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["comparison"] = (
            None if self.comparison is None else self.comparison.to_dict(orient="records")
        )
        data["blend"] = {
            k: (str(v) if isinstance(v, float) and math.isinf(v) else v)
            for k, v in self.blend.items()
            if k != "table"
        }
        data["exit_code"] = self.exit_code
        return data


Progress = Callable[[str], None]


def run_training(
    store: Store, settings: TrainingSettings | None = None, *, progress: Progress | None = None
) -> TrainingRun:
    """Run the nightly job once (see the module docstring); holds the training lock."""
    settings = settings or TrainingSettings()
    lock = settings.lock_path or mlruns_dir() / "train.lock"
    with training_lock(lock):
        return _run(store, settings, progress or (lambda _: None))


def _run(store: Store, settings: TrainingSettings, progress: Progress) -> TrainingRun:
    timer = _StepTimer(progress)
    step = timer.step

    step("extract")
    history = steps.extract(store)
    store_id = store.store_id()
    mode = resolve_embeddings(history.store_url, settings.embeddings)
    # the store id is part of it: the same rows in another store still need their own model
    fp = steps.fingerprint(
        history, {**settings.fingerprint_fields(), "embeddings": mode, "store_id": store_id}
    )
    tracking_uri = settings.tracking_uri or default_tracking_uri()
    registry: Registry | None = None
    note = ""  # what the run repaired before training
    if not settings.dry_run:
        from deploylearn.tracking.registry import Registry

        registry = Registry(tracking_uri)
        repaired = registry.repair_promotion()
        note = f"; completed the interrupted promotion of run {repaired}" if repaired else ""
        previous = None if settings.force else registry.find_finished_run(fp)
        if previous is not None:
            return TrainingRun(
                outcome="unchanged",
                message=f"run {previous} already trained on this data with these settings" + note,
                fingerprint=fp,
                run_id=previous,
                tracking_uri=tracking_uri,
                embeddings=mode,
                timings=timer.durations(),
            )
    try:
        cut = steps.holdout_start(
            history,
            settings.holdout_fraction,
            since=settings.since,
            min_training_rows=settings.min_training_rows,
            min_holdout_rows=settings.min_holdout_rows,
        )
    except ValueError as exc:
        raise NotEnoughDataError(str(exc)) from exc

    step("features")
    embeddings: str | pd.DataFrame = mode
    if mode == "gds":
        embeddings = steps.gds_embeddings(store, settings.embedding_dimension, settings.seed)
    tf = steps.build_features(
        history,
        embeddings=embeddings,
        embedding_dimension=settings.embedding_dimension,
        random_seed=settings.seed,
        graph_until=cut,
        since=settings.since,
    )
    train, holdout = steps.split(tf, cut)
    if train.y.nunique() < 2:
        raise NotEnoughDataError("the training period holds only one outcome (all succeed or fail)")

    step("train")
    params = dict(settings.success_params)
    tuning = None
    if settings.tune and not params:
        params, tuning = select_success_params(
            train.X,
            train.y,
            DEFAULT_GRID,
            random_state=settings.seed,
            base={"n_threads": settings.threads},
        )
    model = steps.fit_success(train, params, random_state=settings.seed, n_threads=settings.threads)
    # the holdout judges the procedure; what serves is the same procedure on every row
    served_frame = tf if settings.refit else train
    served = (
        steps.fit_success(
            served_frame, params, random_state=settings.seed, n_threads=settings.threads
        )
        if settings.refit
        else model
    )
    blend = _blend(settings, steps.blend_backtest(model, train, history))
    skipped: dict[str, str] = {}
    duration, reason = steps.try_fit(
        steps.fit_duration,
        train,
        steps.durations(history, train),
        random_state=settings.seed,
        n_threads=settings.threads,
    )
    if reason:
        skipped["duration"] = reason
    vectors = steps.pattern_vectors(history.patterns, train.node_embeddings)
    similarity = steps.fit_similarity(vectors, train, prior_strength=BASELINE_PRIOR_STRENGTH)

    step("evaluate")
    predictions = steps.predictions_on(
        model, train, holdout, prior_strength=BASELINE_PRIOR_STRENGTH
    )
    y = holdout.y.to_numpy()
    comparison = steps.comparison_table(
        y, predictions, contexts=steps.holdout_contexts(history, holdout)
    )
    model_row = comparison.iloc[0]
    metrics: dict[str, float] = {
        name: float(model_row[name]) for name in ("roc_auc", "brier_score", "log_loss", "ece")
    }
    metrics["context_auc"] = float(model_row["context_auc"])
    twin_rows = comparison[comparison["method"] == steps.RANKING_LABEL]
    for name in ("roc_auc", "brier_score", "context_auc") if len(twin_rows) else ():
        metrics[f"ranking.{name}"] = float(twin_rows.iloc[0][name])
    metrics["ece_noise"] = calibration_noise(predictions[steps.MODEL_LABEL][0])
    if duration is not None:
        metrics.update(steps.duration_metrics(duration, holdout, steps.durations(history, holdout)))
    metrics.update(steps.cold_start_metrics(similarity, vectors, train, holdout))
    global_rate = float(train.y.mean())
    importances = permutation_importances(
        model, holdout.X, y, n_repeats=settings.importance_repeats, random_state=settings.seed
    )

    run = TrainingRun(
        outcome="dry_run",
        message="",
        fingerprint=fp,
        tracking_uri=None if settings.dry_run else tracking_uri,
        store_id=store_id,
        training_rows=len(train),
        holdout_rows=len(holdout),
        served_rows=len(served_frame),
        holdout_start=cut.isoformat(),
        embeddings=tf.embeddings,
        success_params=params,
        calibration=model.calibration_method_,
        comparison=comparison,
        metrics=metrics,
        blend=blend,
        skipped=skipped,
    )
    skipped_note = "".join(f"; {kind} model skipped: {why}" for kind, why in skipped.items())
    if settings.dry_run or registry is None:
        fallback = _rules(
            y,
            predictions[steps.MODEL_LABEL][0],
            _fallback(history, holdout, settings),
            FALLBACK_LABEL,
            global_rate,
            settings,
        )
        run.gate = {"noise": fallback.as_dict()}
        run.message = (
            f"dry run: nothing logged or promoted; against {FALLBACK_LABEL} the gate would "
            + ("pass" if fallback.passes(metrics) else "fail")
            + " (the champion comparison needs a real run)"
            + skipped_note
        )
        run.timings = timer.durations()
        return run

    step("register")
    with registry.start_run(
        f"train-{datetime.now(UTC):%Y%m%dT%H%M%SZ}",
        tags={
            "deploylearn.fingerprint": fp,
            "deploylearn.outcome": "running",
            **provenance.run_tags(store_id, store.url),
        },
    ) as run_id:
        run.run_id = run_id
        _log_run(
            registry,
            settings,
            run,
            tf,
            train,
            holdout,
            model,
            tuning,
            importances,
            predictions,
            mode,
            cut,
        )
        fitted = [("success", served, train.X), ("duration", duration, train.X)]
        fitted.append(("similarity", similarity, vectors))
        refs = [
            registry.log_model(kind, estimator, X.head(50), pip_requirements=_requirements())
            for kind, estimator, X in fitted
            if estimator is not None
        ]
        version_tags = {
            CUTOFF_TAG: cut.isoformat(),
            TRAINED_UNTIL_TAG: cut.isoformat(),
            "deploylearn.fingerprint": fp,
            **provenance.run_tags(store_id, store.url),
        }
        success_tags = {TRAINED_UNTIL_TAG: _trained_until(served_frame, cut)}
        if served is not model:
            success_tags[EVALUATED_MODEL_TAG] = registry.log_unregistered_model(
                "success",
                model,
                train.X.head(50),
                name=EVALUATED_MODEL_NAME,
                pip_requirements=_requirements(),
            )
        for ref in refs:
            registry.tag_version(
                ref, {**version_tags, **(success_tags if ref.kind == "success" else {})}
            )
            registry.describe_version(ref, _version_description(ref.kind, run, store_id, store.url))
        run.versions = {ref.kind: ref.version for ref in refs}

        step("gate")
        gate, rules = _gate(registry, settings, history, holdout, model, cut, global_rate)
        run.gate = {**gate.as_dict(), "noise": rules.as_dict()}
        registry.log_dict(run.gate, "gate.json")
        registry.set_tags({"deploylearn.gate": "passed" if gate.passed else "refused"})

        step("promote")
        if gate.passed:
            run.previous_champions = registry.promote(
                refs, run_id=run_id, reason="passed the holdout gate"
            )
            run.outcome = "promoted"
            run.message = f"promoted version {run.versions['success']} to champion" + skipped_note
        else:
            registry.record_refusal(refs, run_id=run_id, failures=gate.failures)
            run.outcome = "refused"
            run.message = (
                f"gate refused version {run.versions['success']}: {gate.failures}" + skipped_note
            )
        run.message += note
        run.timings = timer.durations()
        registry.log_metrics({f"time_{k}": v for k, v in run.timings.items()})
    return run


def _trained_until(frame: TrainingFrame, cut: pd.Timestamp) -> str:
    """Just after the last run the served model learned from (the cut when it saw none later)."""
    last = pd.Timestamp(frame.meta["started_at"].max()) + pd.Timedelta(microseconds=1)
    return str(max(last, cut).isoformat())


def _blend(settings: TrainingSettings, choice: steps.BlendChoice) -> dict[str, Any]:
    """The serving blend to log: the backtest's choice unless the settings fix k/half-life."""
    params = choice.params
    note = choice.note
    if settings.blend_prior_strength is not None:
        params = BlendParams(
            settings.blend_prior_strength,
            settings.blend_half_life_days
            if settings.blend_half_life_days is not None
            else params.half_life_days,
            params.rank_by,
        )
        note = f"fixed by settings (backtest chose: {choice.note})"
    return {
        "prior_strength": params.prior_strength,
        "half_life_days": params.half_life_days,
        "rank_by": params.rank_by,
        "note": note,
        "scores": choice.scores,
        "table": choice.table,
    }


class _StepTimer:
    """Reports each step as it starts and keeps its wall time."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.starts: list[tuple[str, float]] = []

    def step(self, name: str) -> None:
        self.progress(name)
        self.starts.append((name, time.perf_counter()))

    def durations(self) -> dict[str, float]:
        ends = [t for _, t in self.starts[1:]] + [time.perf_counter()]
        return {f"{n}_s": round(e - t, 3) for (n, t), e in zip(self.starts, ends, strict=True)}


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in ("deploylearn", "scikit-learn", "numpy", "pandas", "scipy", "skops"):
        try:
            out.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return out


def _log_run(
    registry: Registry,
    settings: TrainingSettings,
    run: TrainingRun,
    tf: TrainingFrame,
    train: TrainingFrame,
    holdout: TrainingFrame,
    model: SuccessModel,
    tuning: pd.DataFrame | None,
    importances: pd.DataFrame,
    predictions: dict[str, steps.Prediction],
    mode: str,
    cut: pd.Timestamp,
) -> None:
    """Params, data sets, metrics, plots and tables of one run."""
    registry.log_params(
        {
            **{f"setting.{k}": v for k, v in settings.fingerprint_fields().items()},
            **{f"success.{k}": v for k, v in model.get_params().items()},
            "success.calibration_chosen": model.calibration_method_,
            "success.used_features": len(model.used_features_),
            "embeddings.mode": mode,
            "embeddings.source": tf.embeddings,
            "blend.prior_strength": run.blend["prior_strength"],
            "blend.half_life_days": run.blend["half_life_days"],
            "serving.rank_by": run.blend["rank_by"],
            "blend.choice": run.blend["note"],
            **{f"skipped.{kind}": why for kind, why in run.skipped.items()},
            "data.training_rows": len(train),
            "data.holdout_rows": len(holdout),
            "data.served_rows": run.served_rows,
            "success.feature_set": feature_set_name(model.exclude_features),
            "success.ranking_feature_set": feature_set_name(
                model.ranking_exclude_features or model.exclude_features
            ),
            "data.holdout_start": cut.isoformat(),
            "data.training_start": str(train.meta["started_at"].min()),
            "data.holdout_end": str(holdout.meta["started_at"].max()),
            "data.features": len(tf.feature_names),
            "data.training_success_rate": round(float(train.y.mean()), 4),
            "python": platform.python_version(),
        }
    )
    registry.set_tags(
        {
            CUTOFF_TAG: cut.isoformat(),
            **{f"deploylearn.skipped.{k}": v for k, v in run.skipped.items()},
        }
    )
    registry.log_metrics({f"blend.{k}": v for k, v in run.blend.get("scores", {}).items()})
    if run.blend.get("table") is not None and len(run.blend["table"]):
        registry.log_table(run.blend["table"], "evaluation/blend_tuning.csv")
    registry.log_dataset(_described(train), name="training", context="training", targets="success")
    registry.log_dataset(_described(holdout), name="holdout", context="holdout", targets="success")
    registry.log_metrics(run.metrics)
    comparison = run.comparison if run.comparison is not None else pd.DataFrame()
    for _, row in comparison.iloc[1:].iterrows():
        if row["method"] == steps.RANKING_LABEL:
            continue  # not a baseline: logged as ranking.* above
        registry.log_metrics(
            {
                provenance.baseline_metric_name(str(row["method"]), k): row[k]
                for k in comparison.columns
                if k != "method"
            }
        )
    registry.log_table(comparison, "evaluation/holdout_comparison.csv")
    registry.log_figure(
        steps.calibration_figure(holdout.y.to_numpy(), predictions), "evaluation/calibration.png"
    )
    registry.log_table(importances, "evaluation/feature_importances.csv")
    registry.log_figure(steps.importance_figure(importances), "evaluation/feature_importances.png")
    if model.calibration_scores_:
        registry.log_dict(model.calibration_scores_, "evaluation/calibration_choice.json")
    if tuning is not None:
        registry.log_table(tuning, "evaluation/tuning.csv")
    registry.log_dict(
        {"feature_names": tf.feature_names, "used_features": model.used_features_},
        "features/feature_names.json",
    )
    if tf.node_embeddings is not None:
        registry.log_embeddings(tf.node_embeddings, EMBEDDINGS_ARTIFACT)
    registry.log_dict(json.loads(json.dumps(tf.timings)), "features/timings.json")


def _version_description(kind: str, run: TrainingRun, store_id: str | None, url: str) -> str:
    """A registered version in one paragraph: what it learned from and how it scored."""
    m = run.metrics
    scores = {
        "success": f"holdout Brier {m.get('brier_score', float('nan')):.4f}, ROC AUC "
        f"{m.get('roc_auc', float('nan')):.3f}, ECE {m.get('ece', float('nan')):.4f}",
        "duration": ", ".join(f"{k} {v:.3g}" for k, v in sorted(m.items()) if "duration" in k),
        "similarity": ", ".join(f"{k} {v:.3g}" for k, v in sorted(m.items()) if "cold" in k),
    }
    return (
        f"Trained by run {run.run_id} on {run.training_rows} executions of store "
        f"{store_id or '(no store id)'} ({url}) started before {run.holdout_start}; "
        f"{scores.get(kind) or 'see the run metrics'} on the {run.holdout_rows} executions after. "
        + (
            f"The served model is the same procedure refit on all {run.served_rows} executions. "
            if kind == "success" and run.served_rows > run.training_rows
            else ""
        )
        + "Serves only that store."
    )


def _described(frame: TrainingFrame) -> pd.DataFrame:
    """What the run trained on, without the feature matrix: ids, time, context and label."""
    return frame.meta.assign(
        started_at=frame.meta["started_at"].astype(str), success=frame.y.to_numpy()
    )


def _gate(
    registry: Registry,
    settings: TrainingSettings,
    history: steps.History,
    holdout: TrainingFrame,
    model: SuccessModel,
    cut: pd.Timestamp,
    global_rate: float,
) -> tuple[GateResult, GateRules]:
    """MLflow validation of the challenger against what serves now, on the same rows: the
    champion, or without one the serving fallback (``pipeline.gate``)."""
    from deploylearn.tracking.registry import Threshold

    champion_ref = registry.champion("success")
    rows = holdout
    if champion_ref is not None:
        champion_cut = pd.Timestamp(champion_ref.tags.get(CUTOFF_TAG, cut.isoformat()))
        mask = (holdout.meta["started_at"] >= max(cut, champion_cut)).to_numpy()
        rows = steps.subset(holdout, mask)
        if len(rows) < settings.min_holdout_rows:
            rows = holdout  # too few rows after the champion's cut-off: compare on all
        # a refit champion is judged by its evaluated twin: the refit saw these rows
        evaluated = champion_ref.tags.get(EVALUATED_MODEL_TAG)
        champion = registry.load_uri(evaluated) if evaluated else registry.load(champion_ref)
        champion_X = _champion_features(registry, champion_ref, champion, history, rows)
        reference_p = champion.predict_proba(champion_X)[:, 1]
        reference = f"champion v{champion_ref.version}"
    else:
        reference_p = _fallback(history, rows, settings)
        reference = FALLBACK_LABEL
    y = rows.y.to_numpy()
    p = model.predict_proba(rows.X)[:, 1]
    rules = _rules(y, p, reference_p, reference, global_rate, settings)
    candidate = registry.evaluate(y, p)
    with registry.nested_run(f"{reference.split(' (')[0].replace(' ', '-')}-on-holdout"):
        baseline = registry.evaluate(y, reference_p)
    prefix = "champion" if champion_ref is not None else "fallback"
    registry.log_metrics({f"{prefix}.{k}": v for k, v in baseline.metrics.items()})
    registry.log_metrics(
        {
            "gate.brier_difference": rules.versus_reference.difference,
            "gate.brier_noise_margin": rules.versus_reference.margin,
        }
    )
    thresholds = {
        r.metric: Threshold(threshold=r.threshold, greater_is_better=r.greater_is_better)
        for r in rules.rules
    }
    if settings.min_improvement:
        thresholds["brier_score"] = Threshold(
            threshold=rules.versus_global_rate.reference + rules.versus_global_rate.margin,
            min_absolute_change=settings.min_improvement,
            greater_is_better=False,
        )
    against = baseline if settings.min_improvement else None
    return registry.validate(thresholds, candidate, against), rules


def _fallback(
    history: steps.History, rows: TrainingFrame, settings: TrainingSettings
) -> np.ndarray:
    return fallback_probabilities(
        history.frame, rows.meta["execution_id"], prior_strength=NO_MODEL.prior_strength
    )


def _rules(
    y: np.ndarray,
    p: np.ndarray,
    reference_p: np.ndarray,
    reference: str,
    global_rate: float,
    settings: TrainingSettings,
) -> GateRules:
    return gate_rules(
        y,
        p,
        reference_p,
        reference=reference,
        global_rate=global_rate,
        tolerance=settings.tolerance,
        max_ece=settings.max_ece,
        min_auc=settings.min_auc,
    )


def _champion_features(
    registry: Registry,
    ref: ModelRef,
    champion: Any,
    history: steps.History,
    rows: TrainingFrame,
) -> pd.DataFrame:
    """Holdout features as the champion sees them: with its own embedding table if it used one."""
    used = getattr(champion, "used_features_", [])
    if not any(str(c).startswith("emb_") for c in used) or ref.run_id is None:
        return rows.X
    table = registry.load_embeddings(ref.run_id, EMBEDDINGS_ARTIFACT)
    if table is None:
        return rows.X
    full = training_frame_from_history(history.frame, history.patterns, embeddings=table)
    position = pd.Index(full.meta["execution_id"]).get_indexer(rows.meta["execution_id"])
    if (position < 0).any():
        return rows.X
    return full.X.iloc[position].reset_index(drop=True)


__all__ = [
    "EXIT_GATE_REFUSED",
    "EXIT_LOCKED",
    "EXIT_OK",
    "NotEnoughDataError",
    "TrainingRun",
    "TrainingSettings",
    "run_training",
]
