"""MLflow at the edge: tracking, registry, evaluation, the gate and the ``champion`` alias.

The only module that imports ``mlflow``. Everything else hands it plain dicts, frames, figures
and fitted estimators.

* Tracking URI: ``MLFLOW_TRACKING_URI`` if set (a tracking server), else an SQLite database
  ``<root>/mlruns/mlflow.db`` with artifacts in ``<root>/mlruns/artifacts``, where root is the
  enclosing repository (a directory holding ``.git`` or ``pyproject.toml``) or the working
  directory. MLflow 3.x refuses a plain file store by default, and SQLite gives the model
  registry (aliases) locally too.
* Models are registered under stable names (``MODEL_NAMES``) and saved with skops (safe
  loading), trusting only the types listed in ``TRUSTED_TYPES``.
* The gate is MLflow's own: ``mlflow.models.evaluate`` on the holdout predictions (extra metrics
  ROC AUC, Brier, log loss, ECE) and ``mlflow.validate_evaluation_results`` with
  ``MetricThreshold``\\ s. The alias moves only when it passes; the move is recorded as tags on
  the new and the previous version and on the run.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas
from mlflow.exceptions import MlflowException
from mlflow.models import MetricThreshold, infer_signature, make_metric
from mlflow.models.evaluation.validation import ModelValidationFailedException

from deploylearn.errors import DeploylearnError
from deploylearn.models import metrics as m
from deploylearn.tracking.paths import default_tracking_uri

EXPERIMENT_NAME = "deploylearn"
CHAMPION_ALIAS = "champion"
TAG = "deploylearn."
MODEL_NAMES: dict[str, str] = {
    "success": "deploylearn-success",
    "similarity": "deploylearn-pattern-similarity",
    "duration": "deploylearn-duration",
}
TRUSTED_TYPES: list[str] = [
    "deploylearn.models.success.SuccessModel",
    "deploylearn.models.success.Calibrator",
    "deploylearn.models.similarity.PatternSimilarity",
    "deploylearn.models.duration.DurationModel",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
]
# What each registered model is, for people browsing the registry (set on every log_model).
MODEL_DESCRIPTIONS: dict[str, str] = {
    "success": "deploylearn: probability that a deployment succeeds in its context "
    "(environment, gateway, strategy, resources, configuration knobs, history counts). "
    "Calibrated gradient boosting; predict_proba[:, 1] is P(success). Serving blends it with "
    "each pattern's time-decayed Beta posterior. Tagged with the store it learned from "
    "(deploylearn.store_id); serving refuses it for any other store.",
    "duration": "deploylearn: p50 and p90 of a deployment's duration in seconds "
    "(quantile gradient boosting on the success model's features).",
    "similarity": "deploylearn: nearest deployment patterns by configuration knobs and graph "
    "embeddings, with their smoothed success rates; the cold-start prior for unseen patterns.",
}
_DECIDED = ("promoted", "refused")
_PREDICT_FN = {"success": "predict_proba", "similarity": "predict", "duration": "predict"}


class RegistryInconsistentError(DeploylearnError):
    """The champion versions come from different runs and cannot be repaired automatically."""


@dataclass(frozen=True)
class ModelRef:
    """One registered model version."""

    kind: str
    name: str
    version: str
    run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class Threshold:
    """A gate rule on one metric; maps to ``mlflow.models.MetricThreshold``."""

    threshold: float | None = None
    min_absolute_change: float | None = None
    greater_is_better: bool = False


@dataclass(frozen=True)
class GateResult:
    passed: bool
    failures: str
    thresholds: dict[str, str]
    candidate: dict[str, float]
    baseline: dict[str, float] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failures": self.failures,
            "thresholds": self.thresholds,
            "candidate": self.candidate,
            "baseline": self.baseline,
        }


@contextmanager
def _registry_prints_follow_log_level() -> Iterator[None]:
    """MLflow prints "Successfully registered model …" and "Created version …" to stderr
    whatever its log level; hold stderr back while the ``mlflow`` logger is above INFO (as
    ``ign`` sets it without ``--verbose``), and let it through if the call fails.

    (``mlflow.utils.logging_utils.disable_logging`` does not hold: MLflow's own logging
    context re-enables the stream inside the first ``log_model``.)
    """
    if logging.getLogger("mlflow").getEffectiveLevel() <= logging.INFO:
        yield
        return
    held = io.StringIO()
    try:
        with redirect_stderr(held):
            yield
    except BaseException:
        sys.stderr.write(held.getvalue())
        raise


def _metric(name: str, fn: Any) -> Any:
    def evaluate(predictions: pd.Series, targets: pd.Series, metrics: Any) -> float:
        return float(fn(targets.to_numpy(dtype=float), predictions.to_numpy(dtype=float)))

    return make_metric(eval_fn=evaluate, greater_is_better=m.GREATER_IS_BETTER[name], name=name)


_EXTRA_METRICS = [
    _metric("roc_auc", m.roc_auc),
    _metric("brier_score", m.brier_score),
    _metric("log_loss", m.log_loss),
    _metric("ece", m.expected_calibration_error),
]


class Registry:
    """Tracking and registry operations deploylearn needs, on one tracking URI.

    Sets MLflow's global tracking URI (MLflow's fluent API has no other way to log runs).
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        experiment_name: str = EXPERIMENT_NAME,
        root: Path | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri or default_tracking_uri(root)
        self.experiment_name = experiment_name
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        mlflow.set_tracking_uri(self.tracking_uri)
        self.client = MlflowClient(self.tracking_uri)
        self.experiment_id = self._experiment()

    def _experiment(self) -> str:
        existing = self.client.get_experiment_by_name(self.experiment_name)
        if existing is not None:
            return str(existing.experiment_id)
        location = None
        if self.tracking_uri.startswith("sqlite:///"):
            database = Path(self.tracking_uri.removeprefix("sqlite:///"))
            location = (database.parent / "artifacts").resolve().as_uri()
        return str(self.client.create_experiment(self.experiment_name, location))

    # -- runs -------------------------------------------------------------------------------
    @contextmanager
    def start_run(self, run_name: str, tags: Mapping[str, str] | None = None) -> Iterator[str]:
        """A run in the deploylearn experiment; FAILED if the block raises."""
        with mlflow.start_run(
            experiment_id=self.experiment_id, run_name=run_name, tags=dict(tags or {})
        ) as run:
            yield run.info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        mlflow.log_params({k: _param(v) for k, v in params.items()})

    def log_metrics(self, values: Mapping[str, float]) -> None:
        mlflow.log_metrics(
            {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}
        )

    def set_tags(self, tags: Mapping[str, Any], run_id: str | None = None) -> None:
        if run_id is None:
            mlflow.set_tags({k: str(v) for k, v in tags.items()})
        else:
            for key, value in tags.items():
                self.client.set_tag(run_id, key, str(value))

    def log_dict(self, data: Any, path: str) -> None:
        mlflow.log_dict(data, path)

    def log_text(self, text: str, path: str) -> None:
        mlflow.log_text(text, path)

    def log_figure(self, figure: Any, path: str) -> None:
        mlflow.log_figure(figure, path)

    def log_table(self, table: pd.DataFrame, path: str) -> None:
        mlflow.log_text(table.to_csv(index=False), path)

    def log_dataset(
        self, frame: pd.DataFrame, *, name: str, context: str, targets: str | None = None
    ) -> None:
        """Record a data set (schema, size, digest) as a run input."""
        with _no_integer_hint():
            dataset = from_pandas(frame, name=name, targets=targets)
            mlflow.log_input(dataset, context=context)

    def log_embeddings(self, table: pd.DataFrame, path: str) -> None:
        """The node-embedding table a model was trained with (serving must use the same)."""
        folder, _, filename = path.rpartition("/")
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / filename
            table.to_parquet(local, index=False)
            mlflow.log_artifact(str(local), artifact_path=folder or None)

    def load_embeddings(self, run_id: str, path: str) -> pd.DataFrame | None:
        """A run's node-embedding table, or None if it logged none."""
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, tracking_uri=self.tracking_uri
            )
        except (MlflowException, OSError):
            return None
        return pd.read_parquet(local)

    def find_finished_run(self, fingerprint: str) -> str | None:
        """The newest finished run trained on exactly this data and these settings that
        reached a decision (promoted or refused: a run ended mid-way does not count)."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TAG}fingerprint` = '{fingerprint}' "
            "and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=20,
        )
        decided = [r for r in runs if r.data.tags.get(f"{TAG}outcome") in _DECIDED]
        return decided[0].info.run_id if decided else None

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def run_params(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.params)

    def run_summary(self, run_id: str) -> tuple[str, dict[str, float], dict[str, str]]:
        """(experiment id, metrics, params) of one run, in one read."""
        run = self.client.get_run(run_id)
        return str(run.info.experiment_id), dict(run.data.metrics), dict(run.data.params)

    def artifact_bytes(self, run_id: str, path: str) -> bytes | None:
        """One artifact of a run, or None if it logged none there."""
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, tracking_uri=self.tracking_uri
            )
        except (MlflowException, OSError):
            return None
        return Path(local).read_bytes()

    # -- models -----------------------------------------------------------------------------
    @_registry_prints_follow_log_level()
    def log_model(
        self, kind: str, model: Any, example: pd.DataFrame, *, pip_requirements: list[str]
    ) -> ModelRef:
        """Log and register ``model`` (signature and input example from ``example``)."""
        name = MODEL_NAMES[kind]
        info = self._log_sklearn(
            kind,
            model,
            example,
            name=f"{kind}_model",
            pip_requirements=pip_requirements,
            input_example=example.head(5),
            registered_model_name=name,
        )
        version = str(info.registered_model_version)
        self.client.update_registered_model(name, description=MODEL_DESCRIPTIONS[kind])
        run = mlflow.active_run()
        return ModelRef(kind, name, version, run.info.run_id)  # type: ignore[union-attr]  # called inside a run

    @_registry_prints_follow_log_level()
    def log_unregistered_model(
        self,
        kind: str,
        model: Any,
        example: pd.DataFrame,
        *,
        name: str,
        pip_requirements: list[str],
    ) -> str:
        """Log ``model`` in the active run without registering it; returns its model URI (the
        evaluated twin of a refit model, which the next run's gate compares against)."""
        info = self._log_sklearn(kind, model, example, name=name, pip_requirements=pip_requirements)
        return str(info.model_uri)

    @staticmethod
    def _log_sklearn(
        kind: str,
        model: Any,
        example: pd.DataFrame,
        *,
        name: str,
        pip_requirements: list[str],
        **extra: Any,
    ) -> Any:
        """One ``mlflow.sklearn.log_model`` call: signature from ``example``, skops format."""
        predict = getattr(model, _PREDICT_FN[kind])
        return mlflow.sklearn.log_model(
            model,
            name=name,
            signature=infer_signature(example, predict(example)),
            pyfunc_predict_fn=_PREDICT_FN[kind],
            serialization_format="skops",
            skops_trusted_types=TRUSTED_TYPES,
            pip_requirements=pip_requirements,
            **extra,
        )

    def champion(self, kind: str = "success") -> ModelRef | None:
        """The version holding the ``champion`` alias, or None before the first promotion."""
        name = MODEL_NAMES[kind]
        try:
            version = self.client.get_model_version_by_alias(name, CHAMPION_ALIAS)
        except MlflowException:
            return None
        return ModelRef(kind, name, str(version.version), version.run_id, dict(version.tags))

    def load(self, ref: ModelRef) -> Any:
        return self.load_uri(ref.uri)

    def load_uri(self, uri: str) -> Any:
        return mlflow.sklearn.load_model(uri)

    def load_champion(self, kind: str = "success") -> Any | None:
        ref = self.champion(kind)
        return None if ref is None else self.load(ref)

    def describe_version(self, ref: ModelRef, description: str) -> None:
        """The version's description in the registry (what it learned from, how it scored)."""
        self.client.update_model_version(ref.name, ref.version, description=description)

    def tag_version(self, ref: ModelRef, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(ref.name, ref.version, key, str(value))

    # -- evaluation and gate ----------------------------------------------------------------
    def evaluate(self, y: np.ndarray, p: np.ndarray) -> Any:
        """``mlflow.models.evaluate`` of holdout probabilities in the active run."""
        data = pd.DataFrame({"success": np.asarray(y, dtype=np.int64), "probability": p})
        with _no_integer_hint():
            return mlflow.models.evaluate(
                data=data,
                targets="success",
                predictions="probability",
                model_type=None,
                extra_metrics=_EXTRA_METRICS,
            )

    @contextmanager
    def nested_run(self, run_name: str) -> Iterator[str]:
        with mlflow.start_run(
            experiment_id=self.experiment_id, run_name=run_name, nested=True
        ) as run:
            yield run.info.run_id

    def validate(
        self,
        thresholds: Mapping[str, Threshold],
        candidate: Any,
        baseline: Any | None = None,
    ) -> GateResult:
        """``mlflow.validate_evaluation_results``; a refusal is a result, not an error."""
        rules = {
            name: MetricThreshold(
                threshold=t.threshold,
                min_absolute_change=t.min_absolute_change,
                greater_is_better=t.greater_is_better,
            )
            for name, t in thresholds.items()
        }
        failures = ""
        try:
            mlflow.validate_evaluation_results(rules, candidate, baseline)
        except ModelValidationFailedException as exc:
            failures = exc.message
        return GateResult(
            passed=not failures,
            failures=failures,
            thresholds={k: str(v) for k, v in rules.items()},
            candidate={k: float(v) for k, v in candidate.metrics.items() if k in rules},
            baseline=None
            if baseline is None
            else {k: float(v) for k, v in baseline.metrics.items() if k in rules},
        )

    def promote(self, refs: list[ModelRef], *, run_id: str, reason: str) -> dict[str, str | None]:
        """Move ``champion`` to each of ``refs`` and record the move; returns previous versions."""
        now = datetime.now(UTC).isoformat()
        previous: dict[str, str | None] = {}
        for ref in refs:
            old = self.champion(ref.kind)
            previous[ref.kind] = old.version if old else None
            self.client.set_registered_model_alias(ref.name, CHAMPION_ALIAS, ref.version)
            self.tag_version(
                ref,
                {
                    f"{TAG}gate": "passed",
                    f"{TAG}promoted_at": now,
                    f"{TAG}promoted_by_run": run_id,
                    f"{TAG}previous_champion": old.version if old else "none",
                    f"{TAG}promotion_reason": reason,
                },
            )
            if old is not None and old.version != ref.version:
                self.tag_version(old, {f"{TAG}demoted_at": now, f"{TAG}replaced_by": ref.version})
        self.set_tags(
            {
                f"{TAG}outcome": "promoted",
                f"{TAG}promoted_versions": json.dumps({r.kind: r.version for r in refs}),
                f"{TAG}previous_champions": json.dumps(previous),
            },
            run_id=run_id,
        )
        return previous

    def champions(self) -> dict[str, ModelRef | None]:
        """The ``champion`` of every model kind (None: never promoted)."""
        return {kind: self.champion(kind) for kind in MODEL_NAMES}

    def run_versions(self, run_id: str) -> dict[str, ModelRef]:
        """The versions one training run registered, by kind."""
        names = {name: kind for kind, name in MODEL_NAMES.items()}
        found: dict[str, ModelRef] = {}
        for version in self.client.search_model_versions(f"run_id = '{run_id}'"):
            kind = names.get(version.name)
            if kind is not None:
                found[kind] = ModelRef(
                    kind, version.name, str(version.version), run_id, dict(version.tags)
                )
        return found

    def repair_promotion(self) -> str | None:
        """Finish a promotion that was interrupted between its alias moves; returns the run
        whose set now holds ``champion`` (None: nothing to repair).

        MLflow moves one alias per call, so a crash in ``promote`` can leave the success
        champion from the new run and the others from an older one (serving refuses such a
        mix, see ``serving.models``). ``promote`` moves the success model first, so the set
        to complete is the success champion's run: every kind it registered, if its gate
        passed. A run left RUNNING by the crash is ended as FINISHED, tagged ``repaired``.
        """
        champions = self.champions()
        success = champions["success"]
        if success is None or success.run_id is None:
            return None
        if all(ref is not None and ref.run_id == success.run_id for ref in champions.values()):
            return None
        run_id = success.run_id
        run = self.client.get_run(run_id)
        versions = self.run_versions(run_id)
        if run.data.tags.get(f"{TAG}gate") != "passed" or set(versions) != set(MODEL_NAMES):
            raise RegistryInconsistentError(
                f"the champion models come from different runs and run {run_id} (the success "
                "champion's) cannot complete the set: move the aliases by hand"
            )
        ordered = [versions[kind] for kind in MODEL_NAMES]
        self.promote(ordered, run_id=run_id, reason="completed an interrupted promotion")
        self.set_tags({f"{TAG}repaired": datetime.now(UTC).isoformat()}, run_id=run_id)
        if run.info.status == "RUNNING":
            self.client.set_terminated(run_id, "FINISHED")
        return run_id

    def record_refusal(self, refs: list[ModelRef], *, run_id: str, failures: str) -> None:
        for ref in refs:
            self.tag_version(ref, {f"{TAG}gate": "refused", f"{TAG}gate_failures": failures[:4000]})
        self.set_tags({f"{TAG}outcome": "refused"}, run_id=run_id)

    def runs(self, max_results: int = 100) -> pd.DataFrame:
        """Training runs of the experiment, newest first (params, metrics, tags as columns)."""
        return mlflow.search_runs(
            experiment_ids=[self.experiment_id],
            max_results=max_results,
            order_by=["attributes.start_time DESC"],
        )

    def versions(self, kind: str = "success") -> pd.DataFrame:
        """Registered versions of one model with their gate and promotion tags."""
        name = MODEL_NAMES[kind]
        try:
            aliases = dict(self.client.get_registered_model(name).aliases)
        except MlflowException:
            return pd.DataFrame(columns=["version", "run_id", "aliases"])
        rows = []
        for version in self.client.search_model_versions(f"name = '{name}'"):
            held = [a for a, v in aliases.items() if str(v) == str(version.version)]
            rows.append(
                {
                    "version": int(version.version),
                    "run_id": version.run_id,
                    "aliases": ",".join(sorted(held)),
                    **{k.removeprefix(TAG): v for k, v in version.tags.items()},
                }
            )
        return pd.DataFrame(rows).sort_values("version").reset_index(drop=True)


@contextmanager
def _no_integer_hint() -> Iterator[None]:
    """Labels are 0/1 integers on purpose; MLflow's hint about integer columns is noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        yield


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]
