"""Environment adaptations mined from history, checked against the synthetic world's truth."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.demo import demo_records
from deploylearn.domain.records import DeploymentPattern, EnvironmentAdaptation
from deploylearn.serving.adaptations import environment_adaptations
from tests.conftest import BASE_TIME

WORLD_EXECUTIONS = 30_000


@dataclass(frozen=True)
class World:
    frame: pd.DataFrame
    patterns: list[DeploymentPattern]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A 30,000-execution synthetic history (seed 0), recorded into an embedded store."""
    url = f"duckdb://{tmp_path_factory.mktemp('adaptations') / 'world.duckdb'}"
    with DeploymentPatternLearner.open(url) as learner:
        for records in demo_records(WORLD_EXECUTIONS, seed=0, batch_size=WORLD_EXECUTIONS):
            report = learner.record_executions(records, batch_size=len(records))
            assert report.accepted == len(records)
        yield World(learner.store.executions_frame(), learner.store.patterns())


def _adaptations(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """``environment_adaptations`` as the JSON the facade gives."""
    return [a.model_dump(mode="json") for a in environment_adaptations(*args, **kwargs)]


def _mine(world: World, frame: pd.DataFrame | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    options: dict[str, Any] = {
        "source_environment": "staging",
        "target_environment": "production",
        "limit": 100,
    }
    options.update(kwargs)
    return _adaptations(
        world.frame if frame is None else frame, world.patterns, [], **options
    )


def _rules(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(rule, family=a["adaptation_name"]) for a in answers for rule in a["rules"]]


def _ground_truth(rules: list[dict[str, Any]], database_rules: list[dict[str, Any]]) -> dict:
    """docs/synthetic-world.md: what successful production runs really share."""

    def found(key: str, ok: Any, pool: list[dict[str, Any]] = rules) -> list[dict[str, Any]]:
        return [r for r in pool if r["key"] == key and ok(r)]

    return {
        "ssl_validation true": found("ssl_validation", lambda r: r["adapted_value"] is True),
        "timeout >= 60": found(
            "timeout", lambda r: r["change"] != "lower" and r["adapted_value"] >= 60
        ),
        "audit_enabled true": found("audit_enabled", lambda r: r["adapted_value"] is True),
        "security_policy strict": found(
            "security_policy", lambda r: r["adapted_value"] == "strict"
        ),
        "backup with a database": found(
            "backup_enabled", lambda r: r["adapted_value"] is True, database_rules
        ),
        "larger validation_timeout": found("validation_timeout", lambda r: r["change"] == "raise"),
    }


def test_staging_to_production_rules_match_the_world(world: World) -> None:
    answers = _mine(world)
    database = _mine(world, resource_type="database")
    truth = _ground_truth(_rules(answers), _rules(database))
    print("\nground truth rule: families (support, confidence, uplift [95% interval])")
    for name, hits in truth.items():
        shown = [
            f"{h['family']}: {h['rule']} ({h['support']}, {h['confidence']}, "
            f"{h['success_uplift']} {h['uplift_interval']})"
            for h in hits
        ]
        print(f"  {name}: {len(hits)} families", *shown[:3], sep="\n    ")
    assert sum(bool(hits) for hits in truth.values()) >= 5, {k: len(v) for k, v in truth.items()}
    # Nothing the world punishes in production is recommended.
    for rule in _rules(answers) + _rules(database):
        assert not (rule["key"] == "ssl_validation" and rule["adapted_value"] is False), rule
        assert not (rule["key"] == "audit_enabled" and rule["adapted_value"] is False), rule
        assert not (rule["key"] == "timeout" and rule["change"] == "lower"), rule
        assert not (rule["key"] == "backup_enabled" and rule["adapted_value"] is False), rule


def test_shuffled_environments_yield_no_rules(world: World) -> None:
    """With environments permuted, staging and production are one population: no rules."""
    real = len(_rules(_mine(world)))
    shuffled_counts = []
    for seed in range(2):
        shuffled = world.frame.copy()
        permuted = np.random.default_rng(seed).permutation(shuffled["target_environment"])
        shuffled["target_environment"] = permuted
        shuffled_counts.append(len(_rules(_mine(world, shuffled))))
    print(f"\nrules: real {real}, shuffled {shuffled_counts}")
    assert real >= 10
    assert max(shuffled_counts) <= max(1, real // 10), shuffled_counts


def test_answer_shape_and_evidence(world: World) -> None:
    answers = _mine(world, limit=3)
    assert 1 <= len(answers) <= 3
    json.dumps(answers)  # plain JSON types only
    keys = {
        "adaptation_name",
        "source_environment",
        "target_environment",
        "adaptation_rules",
        "original_configuration",
        "adapted_configuration",
        "resource_type",
        "source",
    }
    lows = []
    for answer in answers:
        assert keys <= answer.keys()
        assert answer["source"] == "mined"
        assert answer["adaptation_name"].startswith("staging → production: ")
        assert len(answer["adaptation_rules"]) == len(answer["rules"]) >= 1
        adapted = dict(answer["original_configuration"])
        for rule in answer["rules"]:
            adapted[rule["key"]] = rule["adapted_value"]
            assert rule["q_value"] < 0.05 and rule["support"] >= 20
            assert rule["confidence"] >= rule["source_share"] + 0.05
            if rule["uplift_interval"] is not None:
                low, high = rule["uplift_interval"]
                assert low <= rule["success_uplift"] <= high
                assert high > 0  # a value that hurts is never a rule
                assert rule["confidence"] >= 0.5 or low > 0
            assert type(rule["support"]) is int and isinstance(rule["confidence"], float)
        assert adapted == answer["adapted_configuration"]
        interval = answer["uplift_interval"]
        lows.append(interval[0] if interval else 0.0)
    assert lows == sorted(lows, reverse=True)  # best evidence first


def test_resource_type_narrows_families(world: World) -> None:
    answers = _mine(world, resource_type="database")
    assert answers
    assert all(a["resource_type"] == "database" for a in answers)
    assert all(a["adaptation_name"].endswith(" with database") for a in answers)


# ------------------------------------------------------------------ small hand-made cases
def _runs(rows: list[tuple[str, str, str, int, int]]) -> pd.DataFrame:
    """(environment, strategy, pattern, successes, failures) -> an executions frame."""
    out = []
    for env, strategy, pattern, successes, failures in rows:
        for i in range(successes + failures):
            start = BASE_TIME + timedelta(minutes=len(out))
            out.append(
                {
                    "execution_id": f"x-{len(out)}",
                    "pattern_id": pattern,
                    "target_environment": env,
                    "deployment_strategy": strategy,
                    "resources_deployed": ["project", "database"],
                    "outcome": "success" if i < successes else "failure",
                    "started_at": start,
                }
            )
    return pd.DataFrame(out)


PATTERNS = [
    DeploymentPattern(
        pattern_id="loose",
        pattern_name="loose",
        deployment_strategy="blue_green",
        configuration_template={"ssl_validation": False, "validation_timeout": 300},
    ),
    DeploymentPattern(
        pattern_id="hard",
        pattern_name="hard",
        deployment_strategy="blue_green",
        configuration_template={"ssl_validation": True, "validation_timeout": 600},
    ),
]


def test_small_history_rules_and_texts() -> None:
    frame = _runs(
        [
            ("staging", "blue_green", "loose", 90, 10),
            ("production", "blue_green", "loose", 20, 30),
            ("production", "blue_green", "hard", 80, 10),
        ]
    )
    [answer] = _adaptations(
        frame, PATTERNS, [], source_environment="staging", target_environment="production"
    )
    assert answer["original_configuration"] == {"ssl_validation": False, "validation_timeout": 300}
    assert answer["adapted_configuration"] == {"ssl_validation": True, "validation_timeout": 600}
    assert answer["adaptation_rules"] == [
        "set ssl_validation to true (was false)",
        "raise validation_timeout from 300 to 600 (×2)",
    ]
    assert answer["support"] == 90 and answer["confidence"] == 0.8
    assert answer["success_uplift"] == pytest.approx(80 / 90 - 20 / 50, abs=1e-4)
    assert answer["original_pattern_id"] == "loose"


def test_same_population_gives_nothing() -> None:
    frame = _runs(
        [
            ("staging", "blue_green", "loose", 50, 10),
            ("staging", "blue_green", "hard", 50, 10),
            ("production", "blue_green", "loose", 50, 10),
            ("production", "blue_green", "hard", 50, 10),
        ]
    )
    assert (
        _adaptations(
            frame, PATTERNS, [], source_environment="staging", target_environment="production"
        )
        == []
    )


def test_recorded_adaptations_come_back_with_their_evidence() -> None:
    frame = _runs(
        [("staging", "blue_green", "loose", 30, 3), ("production", "blue_green", "hard", 40, 4)]
    )
    recorded = EnvironmentAdaptation(
        adaptation_name="Production Security Hardening",
        source_environment="staging",
        target_environment="production",
        adaptation_rules=["Enable SSL certificate validation"],
        original_configuration={"ssl_validation": False},
        adapted_configuration={"SSL-Validation": "true"},
        adaptation_id="adp-1",
    )
    other_pair = recorded.model_copy(update={"target_environment": "qa", "adaptation_id": "x"})
    answers = _adaptations(
        frame,
        PATTERNS,
        [recorded, other_pair],
        source_environment="staging",
        target_environment="production",
        limit=10,
    )
    [mine] = [a for a in answers if a["source"] == "recorded"]
    assert mine["adaptation_id"] == "adp-1"
    assert mine["adaptation_rules"] == ["Enable SSL certificate validation"]
    assert mine["support"] == 44 and mine["confidence"] == 1.0
    json.dumps(answers)


def test_unknown_environment_and_same_environment() -> None:
    frame = _runs([("staging", "blue_green", "loose", 5, 1)])
    kwargs: dict[str, Any] = {"source_environment": "staging", "target_environment": "mars"}
    assert _adaptations(frame, PATTERNS, [], **kwargs) == []
    assert (
        _adaptations(
            frame.iloc[:0], PATTERNS, [], source_environment="a", target_environment="b"
        )
        == []
    )
    with pytest.raises(ValueError, match="same"):
        _adaptations(
            frame, PATTERNS, [], source_environment="staging", target_environment="staging"
        )


def test_an_unset_knob_is_not_assumed_to_mean_false() -> None:
    """No default is known for any knob: a target that writes ``false`` where the source left
    the knob unset, and succeeds more for it, is an adaptation like any other."""
    patterns = [
        DeploymentPattern(
            pattern_id="bare",
            pattern_name="bare",
            deployment_strategy="wave",
            configuration_template={"retries": 2},
        ),
        DeploymentPattern(
            pattern_id="explicit",
            pattern_name="explicit",
            deployment_strategy="wave",
            configuration_template={"retries": 2, "hot_reload": False},
        ),
    ]
    frame = _runs(
        [
            ("staging", "wave", "bare", 90, 10),
            ("production", "wave", "bare", 20, 30),
            ("production", "wave", "explicit", 80, 10),
        ]
    )
    [answer] = _adaptations(
        frame, patterns, [], source_environment="staging", target_environment="production"
    )
    assert answer["adaptation_rules"] == ["set hot_reload to false (unset in staging)"]
