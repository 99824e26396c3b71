"""Rollback scenarios learned from history, checked against the synthetic world's model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from scipy.stats import beta

from deploylearn import DeploymentPatternLearner
from deploylearn.demo import demo_records
from deploylearn.identity import issue_id_for, normalize_issue
from deploylearn.records import DeploymentPattern, RollbackScenario
from deploylearn.serving.rollbacks import _posterior, rollback_scenarios
from tests.conftest import BASE_TIME

WORLD_EXECUTIONS = 20_000
ALL = 10_000  # a limit that returns every scenario


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
            "patterns": self.patterns,
        }
        options.update(kwargs)
        return rollback_scenarios(self.frame, self.scenarios, self.issues, **options)


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
    answers = world.ask("production")
    groups = {a["trigger_condition"] for a in answers}
    assert {"gateway unreachable", "database schema lock timeout", "validation timeout"} <= groups
    assert "SSL handshake failed" in groups
    # seven tables in "schema lock timeout on <table>": one group, many issues
    lock = [a for a in answers if a["trigger_condition"] == "database schema lock timeout"]
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
    # A failing rollback scenario without backups says so.
    notes = [n for a in everything for n in a["risk_notes"]]
    assert any("without backup_enabled" in n for n in notes)


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
    assert rollback_scenarios(world.frame.iloc[:0], [], pd.DataFrame(), environment="x") == []


# ------------------------------------------------------------------ small hand-made cases
def test_posterior_interval_at_the_boundaries() -> None:
    assert _posterior(7, 0)["credible_interval"][1] == 1.0
    assert _posterior(0, 4)["credible_interval"][0] == 0.0
    odds = _posterior(3, 1)
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
    answers = rollback_scenarios(
        pd.DataFrame(rows), scenarios, pd.DataFrame(), environment="production", limit=10
    )
    names = sorted(a["trigger_condition"] for a in answers)
    assert names[:2] == ["database schema lock timeout", "gateway unreachable"]
    assert names[2].startswith("issue iss-")
    lock = next(a for a in answers if a["trigger_condition"] == "database schema lock timeout")
    assert lock["rollbacks"] == 2 and lock["scenario_ids"] == ["rbk-1", "rbk-2"]
    assert lock["recovery_time"]["basis"].startswith("duration_seconds")
    assert any("only 2 rollback(s)" in n for n in lock["risk_notes"])
