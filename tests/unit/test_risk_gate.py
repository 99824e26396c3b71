"""The CI gate cannot be fooled: unknown contexts are named and fail ``--fail-below``, a champion
serves only the store it learned from, and training runs say where they came from.

Real DuckDB stores, a real SQLite MLflow registry in a temporary folder, the real ``ign`` app.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner, Result

import deploylearn
from deploylearn.cli.app import app
from deploylearn.domain.answers.prediction import Prediction, PredictionAnswer
from deploylearn.domain.answers.served import BlendSettings
from deploylearn.learner import DeploymentPatternLearner
from deploylearn.pipeline import TrainingRun
from deploylearn.serving.models import ServingModels, check_provenance
from deploylearn.serving.risk_gate import risk_gate
from deploylearn.serving.unknowns import Vocabulary, suggestion
from deploylearn.store import open_store
from deploylearn.synthetic import SyntheticWorld
from deploylearn.tracking.registry import MODEL_NAMES
from tests.conftest import train_quick_champion

PLAN = ["-s", "blue_green", "-r", "project,database"]


@dataclass(frozen=True)
class Trained:
    url: str
    tracking_uri: str
    run: TrainingRun


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A demo store and a champion trained on it, in a registry of its own."""
    folder = tmp_path_factory.mktemp("gate")
    url = f"duckdb://{folder / 'store.duckdb'}"
    world = SyntheticWorld(seed=0, start=datetime(2025, 1, 1, tzinfo=UTC), days=120)
    with DeploymentPatternLearner.open(url) as learner:
        for batch in world.generate(n_executions=2500, batch_size=5000):
            learner.record_executions(batch.records)
    tracking_uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    run = train_quick_champion(url, folder, tracking_uri)
    return Trained(url, tracking_uri, run)


def ign(*args: str) -> Result:
    """``ign`` in this process (a subprocess pays ~10 s of imports per call); the global
    options write the environment, which is restored afterwards."""
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "DEPLOYLEARN_STORE")}
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ------------------------------------------------------------------ unknown contexts (item 1)
def test_suggestions_come_from_the_known_values() -> None:
    known = ["development", "production", "qa", "staging"]
    assert suggestion("prod", known) == "production"
    assert suggestion("stagign", known) == "staging"
    assert suggestion("zzz", known) is None
    assert suggestion("prod", []) is None


def test_an_unknown_environment_is_named_in_predict_and_recommendations(trained: Trained) -> None:
    with DeploymentPatternLearner.open(trained.url, tracking_uri=trained.tracking_uri) as learner:
        answer = learner.predict_success(
            {
                "target_environment": "prod",
                "deployment_strategy": "blue_green",
                "resources_deployed": ["project", "databse"],
                "gateway_host": "prod-gw-99.nowhere.local",
                "configuration_used": {"backup_enabeld": True},
            }
        )
        known = learner.predict_success(
            {
                "target_environment": "production",
                "deployment_strategy": "blue_green",
                "resources_deployed": ["project"],
            }
        )
        advice = learner.get_deployment_recommendations("prod", ["project"], "blue_grene")
    p = answer["predictions"][0]
    assert p["unknown"] == {
        "target_environment": "prod",
        "gateway_host": "prod-gw-99.nowhere.local",
        "resources_deployed": ["databse"],
        "configuration_keys": ["backup_enabeld"],
    }
    assert p["did_you_mean"]["prod"] == "production"
    assert p["did_you_mean"]["databse"] == "database"
    assert p["did_you_mean"]["backup_enabeld"] == "backup_enabled"
    assert any("'prod' (did you mean 'production'?)" in w for w in p["warnings"])
    assert known["predictions"][0]["unknown"] == {} and known["predictions"][0]["warnings"] == []
    assert advice["unknown"] == {"target_environment": "prod", "deployment_strategy": "blue_grene"}
    assert advice["did_you_mean"] == {"prod": "production", "blue_grene": "blue_green"}
    assert any("did you mean 'production'?" in w for w in advice["warnings"])


def test_vocabulary_of_an_empty_store_says_the_store_is_empty() -> None:
    empty = Vocabulary.build(pd.DataFrame(), [])
    found = empty.check(target_environment="production", resources_deployed=["project"])
    assert found.gating == {"target_environment": "production", "resources_deployed": ["project"]}
    assert "no deployment history" in found.warnings()[0]


def test_fail_below_fails_an_unknown_context_unless_allowed(trained: Trained) -> None:
    common = ["--tracking-uri", trained.tracking_uri, "deploy", "predict", "--store", trained.url]
    typo = ign(*common, "-e", "prod", *PLAN, "--fail-below", "0.01")
    assert typo.exit_code == 7, typo.stderr
    assert "prod" in typo.stderr and "did you mean 'production'?" in typo.stderr
    assert "--allow-unknown" in typo.stderr
    assert "warning: unknown environment 'prod' (did you mean 'production'?)" in " ".join(
        typo.stdout.split()
    )
    allowed = ign(*common, "-e", "prod", *PLAN, "--fail-below", "0.01", "--allow-unknown", "--json")
    assert allowed.exit_code == 0, allowed.stderr
    gate = json.loads(allowed.stdout)["gate"]
    assert gate["passed"] and gate["unknown"] == 1
    right = ign(*common, "-e", "production", *PLAN, "--fail-below", "0.01")
    assert right.exit_code == 0, right.stderr


def _answer(unknown: dict[str, str | list[str]]) -> PredictionAnswer:
    """A predict answer with one planned deployment at P(success) 0.9 and these unknowns."""
    prediction = Prediction(
        planned={"target_environment": "production"},
        pattern_id=None,
        known_pattern=False,
        success_probability=0.9,
        failure_risk=0.1,
        credible_interval=(0.8, 0.95),
        model_probability=0.9,
        prior_source="champion success model v1",
        evidence_weight=0.0,
        risk_factors=[],
        similar_past_failures=[],
        unknown=unknown,
        did_you_mean={},
    )
    return PredictionAnswer(
        model_provenance=None,
        warnings=[],
        as_of="2026-11-01T00:00:00+00:00",
        model=None,
        blend=BlendSettings(prior_strength=0.0, half_life_days=30.0),
        predictions=[prediction],
    )


def test_risk_gate_counts_unknown_configuration_keys_as_warnings_only() -> None:
    assert risk_gate(_answer({"configuration_keys": ["new_knob"]}), 0.5).passed
    answer = _answer({"configuration_keys": ["new_knob"], "deployment_strategy": "blue_grene"})
    gate = risk_gate(answer, 0.5)
    assert not gate.passed and "deployment_strategy='blue_grene'" in gate.reasons[0]
    assert risk_gate(answer, 0.5, allow_unknown=True).passed


# ------------------------------------------------------------------ store provenance (item 2)
def test_a_champion_serves_only_the_store_it_learned_from(trained: Trained, tmp_path: Path) -> None:
    with DeploymentPatternLearner.open(trained.url, tracking_uri=trained.tracking_uri) as learner:
        own = learner.get_deployment_recommendations("production", ["project"])
        store_id = learner.store.store_id()
    assert own["model"]["version"] == "1" and own["model_provenance"]["status"] == "verified"
    assert own["model_provenance"]["model_store_id"] == store_id == trained.run.store_id

    other = f"duckdb://{tmp_path / 'typo' / 'x.duckdb'}"
    with DeploymentPatternLearner.open(other, tracking_uri=trained.tracking_uri) as learner:
        answer = learner.predict_success(
            {
                "target_environment": "production",
                "deployment_strategy": "blue_green",
                "resources_deployed": ["project"],
            }
        )
    assert answer["model"] is None
    assert answer["model_provenance"]["status"] == "refused"
    assert answer["model_provenance"]["model_store_id"] == store_id
    assert any("learned from store" in w and "not applied" in w for w in answer["warnings"])
    assert "no trained model" in answer["predictions"][0]["prior_source"]

    result = ign(
        *("--tracking-uri", trained.tracking_uri, "deploy", "predict", "--store", other),
        *("-e", "production", *PLAN, "--fail-below", "0.01"),
    )
    assert result.exit_code == 7
    assert "learned from another store" in result.stderr
    assert "not applied" in " ".join(result.stdout.split())


def test_tracking_uri_is_a_global_option_for_commands_that_read_models(trained: Trained) -> None:
    question = ["deploy", "recommendations", "--store", trained.url, "-e", "production"]
    with_option = ign(
        *("--tracking-uri", trained.tracking_uri, "--store", trained.url),  # both global
        *("deploy", "recommendations", "-e", "production", "-r", "project", "--json"),
    )
    assert with_option.exit_code == 0, with_option.stderr
    assert json.loads(with_option.stdout)["model"]["version"] == "1"
    # the test environment's MLFLOW_TRACKING_URI is an empty registry: no champion there
    without = ign(*question, "-r", "project", "--json")
    assert json.loads(without.stdout)["model"] is None


def test_a_champion_without_a_store_id_is_applied_with_a_warning() -> None:
    legacy = ServingModels(success=None, feature_names=[], version="3", run_id=None, blend=None)  # type: ignore[arg-type]
    verdict = check_provenance(legacy, "abc")
    assert verdict.status == "unverified" and "ign train --force" in str(verdict.warning)
    assert check_provenance(None, "abc").status == "none"


# ------------------------------------------------------------------ run provenance (item 12)
def test_runs_and_versions_carry_provenance_names_and_descriptions(trained: Trained) -> None:
    client = MlflowClient(trained.tracking_uri)
    data = client.get_run(str(trained.run.run_id)).data
    with open_store(trained.url) as store:
        store_id = store.store_id()
    assert data.tags["deploylearn.store_id"] == store_id
    assert data.tags["deploylearn.package_version"] == deploylearn.__version__
    package = Path(deploylearn.__file__).parent
    if shutil.which("git"):
        head = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        if head.returncode == 0:
            assert data.tags["deploylearn.git_commit"] == head.stdout.strip()
            assert data.tags["mlflow.source.git.commit"] == head.stdout.strip()
            assert data.tags["deploylearn.git_dirty"] in ("true", "false")
    assert "baseline.seed_ranking.brier" in data.metrics
    assert "baseline.beta_pattern_environment.auc" in data.metrics
    assert not [k for k in data.metrics if "__" in k or k.endswith("_")]
    for kind, name in MODEL_NAMES.items():
        assert client.get_registered_model(name).description, kind
        version = client.get_model_version(name, trained.run.versions[kind])
        assert version.tags["deploylearn.store_id"] == store_id
        assert store_id in version.description and str(trained.run.run_id) in version.description
