"""Rollback scenarios learned from history, checked against the synthetic world's model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from deploylearn import DeploymentPatternLearner
from deploylearn.demo import demo_records
from deploylearn.domain.identity import issue_id_for, normalize_issue
from deploylearn.domain.records import DeploymentPattern, RollbackScenario
from deploylearn.serving.rollbacks import (
    _posterior,
    recovery_metric,
    recovery_seconds,
    rollback_scenarios,
)
from deploylearn.serving.trigger_groups import group_reasons
from tests.conftest import BASE_TIME

WORLD_EXECUTIONS = 20_000
ALL = 10_000  # a limit that returns every scenario


def _scenarios(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """``rollback_scenarios`` as the JSON the facade gives."""
    return [s.model_dump(mode="json") for s in rollback_scenarios(*args, **kwargs)]


@dataclass(frozen=True)
class World:
    frame: pd.DataFrame
    patterns: list[DeploymentPattern]
    scenarios: list[RollbackScenario]
    issues: pd.DataFrame
    recovery: pd.Series

    def ask(self, environment: str, **kwargs: Any) -> list[dict[str, Any]]:
        options: dict[str, Any] = {
            "environment": environment,
            "limit": ALL,
            "recovery_seconds": self.recovery,
            "recovery_basis": "rollback_duration_s",
            "patterns": self.patterns,
        }
        options.update(kwargs)
        return _scenarios(self.frame, self.scenarios, self.issues, **options)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A 20,000-execution synthetic history (seed 0) in an embedded store.

    The issues table and the rollback durations are built from the records the way the store
    builds its Issue nodes and ``rollback_duration_s`` metrics.
    """
    url = f"duckdb://{tmp_path_factory.mktemp('rollbacks') / 'world.duckdb'}"
    issues: dict[str, list[Any]] = {}
    recovery: dict[str, float] = {}
    with DeploymentPatternLearner.open(url) as learner:
        for records in demo_records(WORLD_EXECUTIONS, seed=0, batch_size=WORLD_EXECUTIONS):
            report = learner.record_executions(records, batch_size=len(records))
            assert report.accepted == len(records)
            for record in records:
                if "rollback_duration_s" in record["performance_data"]:
                    recovery[record["execution_id"]] = record["performance_data"][
                        "rollback_duration_s"
                    ]
                for reason in dict.fromkeys(normalize_issue(r) for r in record["failure_reasons"]):
                    entry = issues.setdefault(issue_id_for(reason), [reason, reason, 0])
                    entry[2] += 1
        table = pd.DataFrame(
            [(iid, *values) for iid, values in issues.items()],
            columns=["issue_id", "normalized", "example", "executions"],
        )
        yield World(
            learner.store.executions_frame(),
            learner.store.patterns(),
            learner.store.rollback_scenarios(),
            table,
            pd.Series(recovery, dtype=float),
        )


def _pooled(answers: list[dict[str, Any]], strategy: str) -> tuple[int, int]:
    mine = [a["rollback_success"] for a in answers if a["deployment_strategy"] == strategy]
    return sum(p["successes"] for p in mine), sum(p["failures"] for p in mine)


def _separated(better: tuple[int, int], worse: tuple[int, int]) -> bool:
    """The 90 % intervals of Beta(1 + s, 1 + f) do not overlap, ``better`` above."""
    low = beta.ppf(0.05, 1 + better[0], 1 + better[1])
    return bool(low > beta.ppf(0.95, 1 + worse[0], 1 + worse[1]))


def test_blue_green_rollbacks_succeed_more_often_than_direct(world: World) -> None:
    """The world: rollback success σ(0.2 + 1.5·backup − 0.5·db + s′), s′ bg +1, direct −0.8."""
    print()
    everywhere: list[dict[str, Any]] = []
    for environment in ("development", "test", "qa", "staging", "production"):
        answers = world.ask(environment)
        everywhere.extend(answers)
        bg, direct = _pooled(answers, "blue_green"), _pooled(answers, "direct")
        print(f"{environment}: rollbacks (succeeded, failed) blue_green {bg}, direct {direct}")
        if environment == "production":
            assert sum(direct) >= 10
            assert _separated(bg, direct)
    bg, direct = _pooled(everywhere, "blue_green"), _pooled(everywhere, "direct")
    print(f"all environments: blue_green {bg}, direct {direct}")
    assert _separated(bg, direct)
    # Per scenario too: the likeliest blue-green scenarios beat the likeliest direct ones.
    answers = world.ask("production")
    top_bg = [a for a in answers if a["deployment_strategy"] == "blue_green"][:3]
    top_direct = [a for a in answers if a["deployment_strategy"] == "direct"][:3]
    assert min(a["success_rate_prediction"] for a in top_bg) > max(
        a["success_rate_prediction"] for a in top_direct
    )


def test_intervals_hold_the_observed_rate_and_recovery_is_ordered(world: World) -> None:
    checked = 0
    for environment in ("development", "test", "qa", "staging", "production"):
        for answer in world.ask(environment):
            odds = answer["rollback_success"]
            low, high = odds["credible_interval"]
            assert 0.0 <= low <= odds["probability"] <= high <= 1.0
            if odds["observed_rate"] is not None:
                assert low <= odds["observed_rate"] <= high, answer["scenario_name"]
                checked += 1
            recovery = answer["recovery_time"]
            assert recovery["basis"] == "rollback_duration_s"
            assert recovery["samples"] == answer["rollbacks"]
            assert 0 < recovery["p50_seconds"] <= recovery["p90_seconds"]
    assert checked >= 100


def test_counts_agree_with_the_stores_scenarios(world: World) -> None:
    """A learned scenario is a union of the store's (environment, strategy, issue) scenarios."""
    by_id = {s.scenario_id: s for s in world.scenarios}
    for answer in world.ask("production"):
        stored = [by_id[i] for i in answer["scenario_ids"]]
        assert sum(s.success_count for s in stored) == answer["rollback_success"]["successes"]
        assert sum(s.failure_count for s in stored) == answer["rollback_success"]["failures"]


def test_trigger_groups_are_readable_and_merge_variants(world: World) -> None:
    """Groups come from the texts: the world's message templates, each one group, named by
    the words its wordings share (no list of known messages in the code)."""
    answers = world.ask("production")
    groups = {a["trigger_condition"] for a in answers}
    assert "gateway unreachable after retries" in groups
    assert "validation timed out after resources verified" in groups
    assert any(g.startswith("ssl handshake failed") for g in groups)
    # two causes that share "timed out" stay apart
    assert any(g.startswith("connection to timed out") for g in groups)
    # seven tables in "schema lock timeout on <table>": one group, many issues
    lock = [a for a in answers if "schema lock timeout" in a["trigger_condition"]]
    assert len({a["trigger_condition"] for a in lock}) == 1
    assert len({i["issue_id"] for a in lock for i in a["trigger_issues"]}) >= 5
    assert all(len(a["scenario_ids"]) >= 1 for a in answers)
    print("\nproduction trigger groups:", sorted(groups))


def test_answer_shape_ranking_and_procedures(world: World) -> None:
    answers = world.ask("production", limit=3)
    assert len(answers) == 3
    json.dumps(answers)
    everything = world.ask("production")
    scores = [a["risk_score"] for a in everything]
    assert scores == sorted(scores, reverse=True)
    assert [a["scenario_name"] for a in answers] == [a["scenario_name"] for a in everything[:3]]
    first = answers[0]
    assert first["scenario_name"].startswith("production · ")
    assert first["procedure"][-1].split(". ", 1)[1].startswith(("Verify", "Before retrying"))
    starts = {
        "blue_green": "Switch traffic back",
        "rolling": "Stop the rollout",
        "canary": "Route the canary share back to 0",
        "direct": "Tell operators first",
        "staged": "Halt promotion",
    }
    for answer in everything:
        steps = [s.split(". ", 1)[1] for s in answer["procedure"]]
        expected = starts[answer["deployment_strategy"]]
        assert any(s.startswith(expected) for s in steps[:2]), answer["procedure"]
        assert 0 < answer["rollback_rate_given_trigger"] <= 1
        assert answer["first_seen"] <= answer["last_seen"]
    # The world's planted rollback effect (backups help) is found among every knob value
    # tested, within a strategy, with its false discovery rate controlled.
    notes = [n for a in everything for n in a["risk_notes"]]
    assert any(n.startswith("rollbacks with ") and "backup_enabled=false" in n for n in notes)
    assert all("BH q=" in n for n in notes if n.startswith("rollbacks with"))


def test_resource_filter(world: World) -> None:
    answers = world.ask("production", resource_types=["database"])
    assert answers
    for answer in answers:
        assert answer["resources_involved"].get("database", 0) >= 1
        assert any("Database: restore" in step for step in answer["procedure"])
        assert not any("Perspective:" in step for step in answer["procedure"])
    assert world.ask("production", resource_types=["no_such_resource"]) == []


def test_recovery_falls_back_to_run_duration(world: World) -> None:
    with_metric = world.ask("production", limit=5)
    without = world.ask("production", limit=5, recovery_seconds=None)
    for a, b in zip(with_metric, without, strict=True):
        assert a["scenario_name"] == b["scenario_name"]
        assert b["recovery_time"]["basis"].startswith("duration_seconds")
        assert b["recovery_time"]["p50_seconds"] > a["recovery_time"]["p50_seconds"]
        assert any("whole-run durations" in n for n in b["risk_notes"])


def test_unknown_environment_and_empty_history(world: World) -> None:
    assert world.ask("mars") == []
    assert _scenarios(world.frame.iloc[:0], [], pd.DataFrame(), environment="x") == []


# ------------------------------------------------------------------ small hand-made cases
def test_posterior_interval_at_the_boundaries() -> None:
    assert _posterior(7, 0).model_dump(mode="json")["credible_interval"][1] == 1.0
    assert _posterior(0, 4).model_dump(mode="json")["credible_interval"][0] == 0.0
    odds = _posterior(3, 1).model_dump(mode="json")
    assert odds["probability"] == pytest.approx(4 / 6, abs=1e-4)
    assert odds["credible_interval"][0] < 0.75 < odds["credible_interval"][1]


def test_groups_without_an_issues_table_use_scenario_texts() -> None:
    """No issues table: names come from the scenarios' trigger text; unknown ids stay apart."""
    reasons = [
        "Gateway gw-1.plant.local unreachable after 3 retries",
        "Database migration failed: schema lock timeout on work_orders after 30s",
        "Database migration failed: schema lock timeout on oee_events after 45s",
    ]
    rows = []
    for i, reason in enumerate([*reasons, "mystery"]):
        issue = issue_id_for(normalize_issue(reason))
        rows.append(
            {
                "execution_id": f"r-{i}",
                "pattern_id": "p",
                "target_environment": "production",
                "deployment_strategy": "direct",
                "resources_deployed": ["database"],
                "outcome": "failure",
                "started_at": BASE_TIME + timedelta(hours=i),
                "duration_seconds": 600.0,
                "rollback_triggered": True,
                "rollback_successful": i % 2 == 0,
                "issue_ids": [issue],
            }
        )
    scenarios = [
        RollbackScenario(
            scenario_id=f"rbk-{i}",
            environment="production",
            deployment_strategy="direct",
            trigger_issue=normalize_issue(reason),
            resource_types=["database"],
            success_count=int(i % 2 == 0),
            failure_count=int(i % 2 == 1),
        )
        for i, reason in enumerate(reasons)
    ]
    answers = _scenarios(
        pd.DataFrame(rows), scenarios, pd.DataFrame(), environment="production", limit=10
    )
    names = sorted(a["trigger_condition"] for a in answers)
    lock_name = "database migration failed schema lock timeout"
    assert names[:2] == [lock_name, "gateway unreachable after retries"]
    assert names[2].startswith("issue iss-")
    lock = next(a for a in answers if a["trigger_condition"] == lock_name)
    assert lock["rollbacks"] == 2 and lock["scenario_ids"] == ["rbk-1", "rbk-2"]
    assert lock["recovery_time"]["basis"].startswith("duration_seconds")
    assert any("only 2 rollback(s)" in n for n in lock["risk_notes"])


# ------------------------------------------------------------------ learned from the data alone
def _planted_history(effect: float, seed: int = 3, n: int = 600) -> tuple[pd.DataFrame, list]:
    """Rollbacks of two strategies over knobs and resources no generator uses; ``effect``
    raises rollback success when ``snapshot_mode`` is ``full`` (and only then)."""
    rng = np.random.default_rng(seed)
    patterns = [
        DeploymentPattern(
            pattern_id=f"p-{mode}-{retries}",
            pattern_name=f"p {mode} {retries}",
            deployment_strategy="wave",
            configuration_template={"snapshot_mode": mode, "retries": retries},
            success_count=0,
            failure_count=0,
        )
        for mode in ("full", "none")
        for retries in (1, 3)
    ]
    rows = []
    for i in range(n):
        pattern = patterns[int(rng.integers(len(patterns)))]
        full = pattern.configuration_template["snapshot_mode"] == "full"
        resources = [r for r in ("plc_program", "hmi_screen", "recipe") if rng.random() < 0.5]
        p_ok = 0.5 + (effect if full else 0.0)
        rows.append(
            {
                "execution_id": f"x-{i}",
                "pattern_id": pattern.pattern_id,
                "target_environment": "plant",
                "deployment_strategy": "wave",
                "resources_deployed": resources or ["recipe"],
                "outcome": "failure",
                "started_at": BASE_TIME + timedelta(hours=i),
                "duration_seconds": 60.0,
                "rollback_triggered": True,
                "rollback_successful": bool(rng.random() < p_ok),
                "issue_ids": [],
            }
        )
    return pd.DataFrame(rows), patterns


def test_a_planted_rollback_effect_is_found_over_every_knob_and_resource() -> None:
    frame, patterns = _planted_history(effect=0.35)
    answers = _scenarios(
        frame, [], pd.DataFrame(), environment="plant", patterns=patterns, limit=10
    )
    notes = [n for a in answers for n in a["risk_notes"] if "BH q=" in n]
    assert notes and all("snapshot_mode=" in n for n in notes), notes
    assert not any("retries=" in n or "plc_program" in n or "recipe" in n for n in notes)


def test_no_effect_gives_no_factor_notes() -> None:
    """With nothing planted, the false discovery control keeps every factor quiet."""
    for seed in range(5):
        frame, patterns = _planted_history(effect=0.0, seed=seed)
        answers = _scenarios(
            frame, [], pd.DataFrame(), environment="plant", patterns=patterns, limit=10
        )
        assert not [n for a in answers for n in a["risk_notes"] if "BH q=" in n], seed


def test_reasons_are_grouped_from_their_texts() -> None:
    reasons = {
        "a1": "Disk quota exceeded on /var/lib/app/data: 98% used",
        "a2": "Disk quota exceeded on /srv/store: 91% used",
        "a3": "disk quota exceeded on node-17: 99% used",
        "b1": "PLC 0x3f2a9c1 handshake refused by controller 'line-4'",
        "b2": "PLC 0xdeadbeef9 handshake refused by controller 'press-2'",
        "c1": "Screen template Overview failed to compile",
    }
    texts = {iid: (normalize_issue(text), text) for iid, text in reasons.items()}
    frequency = {iid: 10 - i for i, iid in enumerate(reasons)}
    groups = {g.name: set(g.members) for g in group_reasons(frequency, texts)}
    assert sorted(groups.values(), key=sorted) == [{"a1", "a2", "a3"}, {"b1", "b2"}, {"c1"}]
    assert "disk quota exceeded on used" in groups


def test_recovery_metric_is_found_by_name_and_unit() -> None:
    assert recovery_metric(["cpu_percent", "rollback_time_ms", "restore_count"]) == [
        "rollback_time_ms",
        "restore_count",
    ]
    assert recovery_metric(["duration_seconds", "queue_depth"]) == []
    metrics = pd.DataFrame(
        {
            "execution_id": ["a", "b", "c", "a"],
            "metric_type": [
                "rollback_time_ms",
                "rollback_time_ms",
                "restore_count",
                "restore_count",
            ],
            "value": [1500.0, 2500.0, 2.0, 1.0],
        }
    )
    name, seconds = recovery_seconds(metrics, ["a", "b"])
    assert name == "rollback_time_ms"
    assert seconds.to_dict() == {"a": 1.5, "b": 2.5}
