"""The typed answers are the contract: the Python methods' JSON is each model's JSON, a client
can validate it back (by the model or by its JSON Schema), unknown fields are refused, and keys
that were always left out when empty stay out.

A real embedded store with a champion trained on it in a registry of its own.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

import deploylearn.domain.answers as answers_package
from deploylearn.domain.answers import Answer
from deploylearn.domain.answers.adaptations import Adaptations
from deploylearn.domain.answers.analytics import DeploymentAnalytics
from deploylearn.domain.answers.ingest import IngestSummary
from deploylearn.domain.answers.prediction import PredictionAnswer
from deploylearn.domain.answers.recommendations import Recommendations
from deploylearn.domain.answers.rollbacks import RollbackScenarios
from deploylearn.ingest.formats import write_records
from deploylearn.learner import DeploymentPatternLearner
from deploylearn.synthetic import SyntheticWorld
from tests.conftest import train_quick_champion

PLAN = {
    "target_environment": "production",
    "deployment_strategy": "blue_green",
    "resources_deployed": ["project", "database"],
}


@pytest.fixture(scope="module")
def learner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeploymentPatternLearner]:
    folder = tmp_path_factory.mktemp("answers")
    url = f"duckdb://{folder / 'store.duckdb'}"
    world = SyntheticWorld(seed=3, start=datetime(2025, 1, 1, tzinfo=UTC), days=120)
    batches = world.generate(n_executions=2500, batch_size=5000)
    records = [record for batch in batches for record in batch.records]
    write_records(folder / "history.jsonl", [records], "jsonl")
    tracking_uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    with DeploymentPatternLearner.open(url, tracking_uri=tracking_uri) as opened:
        report = opened.ingest(folder / "history.jsonl")
        assert report.accepted == len(records), report.as_dict()
    train_quick_champion(url, folder, tracking_uri)
    with DeploymentPatternLearner.open(url, tracking_uri=tracking_uri) as opened:
        yield opened


def _cases(
    learner: DeploymentPatternLearner,
) -> list[tuple[type[Answer], Callable[[], Answer], Callable[[], dict[str, Any]]]]:
    """(model, typed method, the seed-named JSON method) for each answer."""
    return [
        (
            Recommendations,
            lambda: learner.recommend("production", ["project", "database"]),
            lambda: learner.get_deployment_recommendations("production", ["project", "database"]),
        ),
        (
            PredictionAnswer,
            lambda: learner.predict([PLAN, {**PLAN, "target_environment": "prod"}]),
            lambda: learner.predict_success([PLAN, {**PLAN, "target_environment": "prod"}]),
        ),
        (
            Adaptations,
            lambda: learner.adaptations("staging", "production"),
            lambda: learner.get_environment_adaptations("staging", "production"),
        ),
        (
            RollbackScenarios,
            lambda: learner.rollback_scenarios("production"),
            lambda: learner.get_rollback_scenarios("production"),
        ),
        (
            DeploymentAnalytics,
            lambda: learner.analytics("production", days_back=60),
            lambda: learner.get_deployment_analytics("production", days_back=60),
        ),
    ]


def test_the_json_methods_give_the_models_json_and_it_validates_back(
    learner: DeploymentPatternLearner,
) -> None:
    for model, typed, as_json in _cases(learner):
        answer = typed()
        assert isinstance(answer, model)
        given = as_json()
        assert given == answer.model_dump(mode="json"), model.__name__
        text = json.dumps(given, allow_nan=False)  # JSON has no NaN or Infinity
        assert model.model_validate(json.loads(text)) == answer, model.__name__
        assert model.model_validate_json(text) == answer, model.__name__
        schema = model.model_json_schema(mode="serialization")
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(json.loads(text), schema)  # a client with the schema only agrees


def test_the_answers_are_not_empty_on_a_trained_store(learner: DeploymentPatternLearner) -> None:
    """The round trip above is only worth something if the answers have content."""
    advice = learner.recommend("production", ["project", "database"])
    assert advice.model is not None and advice.recommendations
    assert any(r.knob_effects for r in advice.recommendations)
    prediction = learner.predict([PLAN, {**PLAN, "target_environment": "prod"}])
    assert prediction.predictions[1].unknown == {"target_environment": "prod"}
    assert learner.adaptations("staging", "production").adaptations
    assert learner.rollback_scenarios("production").scenarios
    assert learner.analytics("production", days_back=60).deployment_statistics.total_deployments


def test_keys_that_were_always_left_out_stay_out(learner: DeploymentPatternLearner) -> None:
    found = learner.get_deployment_recommendations("production", ["project"])
    assert "notes" not in found
    nothing = learner.get_deployment_recommendations("production", ["project"], "no_such")
    assert nothing["recommendations"] == [] and nothing["notes"]
    [known, _] = learner.predict_success([PLAN, PLAN])["predictions"]
    assert "configuration_assumed" in known  # no configuration given: one was assumed
    planned = {**PLAN, "configuration_used": {"backup_enabled": True}}
    [given] = learner.predict_success(planned)["predictions"]
    assert "configuration_assumed" not in given
    assert "gate" not in learner.predict_success(PLAN)


def test_the_ingest_report_is_typed_too(learner: DeploymentPatternLearner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"deployment_name": "x"}\n', encoding="utf-8")
    report = learner.ingest(bad)
    summary = report.summary()
    assert summary == IngestSummary.model_validate_json(summary.model_dump_json())
    assert report.as_dict() == summary.model_dump(mode="json")
    assert summary.read == summary.rejected == 1
    assert summary.errors and summary.errors[0].line == 1


def test_models_refuse_unknown_fields_and_are_read_only(learner: DeploymentPatternLearner) -> None:
    given = learner.get_rollback_scenarios("production")
    with pytest.raises(ValidationError, match="extra"):
        RollbackScenarios.model_validate({**given, "surprise": 1})
    answer = learner.rollback_scenarios("production")
    with pytest.raises(ValidationError, match="frozen"):
        answer.environment = "elsewhere"  # type: ignore[misc]


def _models() -> list[type[BaseModel]]:
    import importlib
    import pkgutil

    found: list[type[BaseModel]] = []
    for info in pkgutil.iter_modules(answers_package.__path__):
        module = importlib.import_module(f"{answers_package.__name__}.{info.name}")
        found += [
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, Answer)
            and obj.__module__ == module.__name__
            and not obj.__name__.startswith("_")  # field mixins, not models of their own
        ]
    return found


def test_every_answer_model_says_what_it_is() -> None:
    """Their docstrings become the JSON Schema's descriptions (and the HTTP API's)."""
    models = _models()
    assert len(models) >= 20
    for model in models:
        assert model.__doc__ and model.model_json_schema().get("description"), model.__name__
        extra = model.model_config.get("extra")
        # extra keys only where they are typed (analytics' trends are keyed by metric name)
        typed_extra = "__pydantic_extra__" in model.__annotations__
        assert extra == "forbid" or (extra == "allow" and typed_extra), model.__name__
