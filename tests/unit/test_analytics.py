"""Deployment analytics: statistics, window rules, DORA, insights, and the synthetic world."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from deploylearn import DeploymentPatternLearner
from deploylearn.domain.answers import Answer
from deploylearn.domain.answers import analytics as analytics_answers
from deploylearn.domain.answers.analytics import DeploymentAnalytics, MetricTrend, RateTrend
from deploylearn.serving.analytics import (
    BUILTIN_METRICS,
    deployment_analytics,
)
from deploylearn.serving.analytics_plot import analytics_plot
from deploylearn.serving.stats import two_proportion_test, wilson_interval
from deploylearn.synthetic import SyntheticWorld

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
DRIFT_GATEWAY = "prod-gateway-03.plant-b.local"  # docs/synthetic-world.md, seed 0
WORLD_EXECUTIONS = 20_000


# ------------------------------------------------------------------ frames by hand
def _row(i: int, start: datetime, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "execution_id": f"x-{i:05d}",
        "pattern_id": "pat-a",
        "deployment_type": "update",
        "target_environment": "production",
        "source_environment": "staging",
        "gateway_host": "gw-1",
        "deployment_strategy": "blue_green",
        "resources_deployed": ["project"],
        "status": "completed",
        "outcome": "success",
        "started_at": start,
        "completed_at": start + timedelta(minutes=10),
        "duration_seconds": 600.0,
        "rollback_triggered": False,
        "rollback_successful": None,
        "automation_triggered": True,
        "user_id": "alice",
        "issue_ids": [],
    }
    row.update(overrides)
    if "completed_at" not in overrides and row["duration_seconds"] is not None:
        row["completed_at"] = start + timedelta(seconds=row["duration_seconds"])
    return row


def _failed(i: int, start: datetime, **overrides: Any) -> dict[str, Any]:
    return _row(i, start, status="failed", outcome="failure", **overrides)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in ("started_at", "completed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _rate_dicts(node: Any) -> Iterator[dict[str, Any]]:
    """Every {rate, low, high, count, n} dict anywhere in a result."""
    if isinstance(node, dict):
        if {"rate", "low", "high", "n"} <= node.keys():
            yield node
        for value in node.values():
            yield from _rate_dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _rate_dicts(value)


def _assert_plain_json(node: Any, where: str = "result") -> None:
    """Only dict/list/str/int/float/bool/None, no NaN: what json.dumps writes as is."""
    if isinstance(node, dict):
        for key, value in node.items():
            assert isinstance(key, str), f"{where}: key {key!r}"
            _assert_plain_json(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _assert_plain_json(value, f"{where}[{i}]")
    else:
        assert node is None or type(node) in (str, int, float, bool), f"{where}: {type(node)}"
        if type(node) is float:
            assert np.isfinite(node), where


# ------------------------------------------------------------------ statistics
def test_wilson_interval_textbook_values() -> None:
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == 1.0
    low, high = wilson_interval(81, 263)  # Newcombe (1998), example (a): 0.2553–0.3662
    assert (low, high) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))
    for k, n in ((1, 3), (7, 50), (499, 1000)):
        a_low, a_high = wilson_interval(k, n)
        b_low, b_high = wilson_interval(n - k, n)
        assert a_low < k / n < a_high
        assert (a_low, a_high) == (pytest.approx(1 - b_high), pytest.approx(1 - b_low))


def test_two_proportion_test_picks_z_or_fisher() -> None:
    name, z, p = two_proportion_test(120, 400, 90, 400)
    pooled = 210 / 800
    expected_z = (0.3 - 0.225) / np.sqrt(pooled * (1 - pooled) * (2 / 400))
    assert name == "two-proportion z-test"
    assert z == pytest.approx(expected_z) and p == pytest.approx(2 * stats.norm.sf(expected_z))
    name, _, p = two_proportion_test(3, 10, 0, 12)  # expected cells < 5
    assert name == "Fisher exact test"
    assert p == pytest.approx(stats.fisher_exact([[3, 7], [0, 12]])[1])
    assert two_proportion_test(1, 0, 3, 4) is None


# ------------------------------------------------------------------ arguments
def test_days_back_and_metric_types_are_validated() -> None:
    frame = _frame([_row(0, T0)])
    for bad in (0, -3):
        with pytest.raises(ValueError, match="days_back must be at least 1"):
            deployment_analytics(frame, days_back=bad)
    with pytest.raises(ValueError, match="days_back"):
        deployment_analytics(frame, days_back=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as info:
        deployment_analytics(
            frame, metric_types=["duration", "sucess_rate"], known_metrics=["queue_depth"]
        )
    message = str(info.value)
    assert "'sucess_rate'" in message
    # the allowed names are the built-in ones and the metrics this history has, no others
    assert all(name in message for name in (*BUILTIN_METRICS, "queue_depth"))
    with pytest.raises(ValueError, match="unknown metric type 'cpu_percent'"):
        deployment_analytics(frame, metric_types=["cpu_percent"])
    with pytest.raises(ValueError, match="lacks columns: outcome"):
        deployment_analytics(frame.drop(columns=["outcome"]))


def test_empty_window_and_empty_frame_are_answers_not_errors() -> None:
    frame = _frame([_row(i, T0 + timedelta(hours=i)) for i in range(5)])
    result = deployment_analytics(
        frame, as_of=T0 + timedelta(days=200), days_back=30
    ).model_dump(mode="json")
    stats_ = result["deployment_statistics"]
    assert stats_["total_deployments"] == 0 and stats_["with_outcome"] == 0
    assert result["success_rate"] is None and result["rates"]["success_rate"]["n"] == 0
    assert result["dora"]["deployment_frequency"]["attempts_per_day"] == 0
    assert result["trends"]["daily"][0]["deployments"] == 0
    assert len(result["insights"]) == 1 and result["insights"][0].startswith("No deployments")
    _assert_plain_json(result)

    wrong_env = deployment_analytics(frame, environment="prod").model_dump(mode="json")
    assert "Environments in the data: production" in wrong_env["insights"][0]

    pending = _frame(
        [_row(0, T0, status="in_progress", outcome=None, duration_seconds=None, completed_at=None)]
    )
    unfinished = deployment_analytics(pending).model_dump(mode="json")
    assert unfinished["deployment_statistics"]["without_outcome"] == 1
    assert "none has an outcome yet" in unfinished["insights"][0]
    json.dumps(unfinished, allow_nan=False)

    empty = deployment_analytics(frame.iloc[0:0]).model_dump(mode="json")
    assert empty["window"]["as_of_source"] == "now (no executions)"
    assert empty["deployment_statistics"]["total_deployments"] == 0
    json.dumps(empty, allow_nan=False)


def test_window_defaults_to_the_newest_start_and_says_so() -> None:
    rows = [_row(i, T0 + timedelta(days=i)) for i in range(40)]
    frame = _frame(rows)
    result = deployment_analytics(frame, days_back=10).model_dump(mode="json")
    newest = rows[-1]["started_at"]
    assert result["window"]["end"] == newest.isoformat()
    assert result["window"]["start"] == (newest - timedelta(days=10)).isoformat()
    assert result["window"]["as_of_source"] == "newest execution in the data"
    assert "not today" in result["window"]["note"]
    # (end - 10 days, end]: days 30..39, the start itself excluded
    assert result["deployment_statistics"]["total_deployments"] == 10
    assert result["trends"]["success_rate"]["previous"]["n"] == 10
    given = deployment_analytics(
        frame, days_back=10, as_of="2025-03-11T08:00:00Z"
    ).model_dump(mode="json")
    assert given["window"]["as_of_source"] == "given"
    assert given["deployment_statistics"]["total_deployments"] == 10  # days 1..10


def test_small_samples_give_no_inferential_insights() -> None:
    rows = [_row(i, T0 + timedelta(hours=i)) for i in range(6)]
    rows += [
        _failed(10 + i, T0 + timedelta(hours=i), deployment_strategy="direct") for i in range(6)
    ]
    result = deployment_analytics(_frame(rows)).model_dump(mode="json")
    kinds = [d["kind"] for d in result["insight_details"]]
    assert kinds == ["summary", "small_sample"]
    assert "too few" in result["insights"][1]
    # the numbers are still there, honestly wide
    direct = next(r for r in result["breakdowns"]["by_strategy"] if r["strategy"] == "direct")
    assert direct["failure_rate"]["rate"] == 1.0 and direct["failure_rate"]["low"] < 0.65


def test_counts_rates_and_rollbacks_by_hand() -> None:
    rows = [
        _row(0, T0),
        _row(1, T0 + timedelta(hours=1)),
        _failed(2, T0 + timedelta(hours=2)),
        _row(
            3,
            T0 + timedelta(hours=3),
            status="rolled_back",
            outcome="failure",
            rollback_triggered=True,
            rollback_successful=True,
        ),
        _row(
            4,
            T0 + timedelta(hours=4),
            status="rolled_back",
            outcome="failure",
            rollback_triggered=True,
            rollback_successful=False,
        ),
        _row(
            5,
            T0 + timedelta(hours=5),
            status="in_progress",
            outcome=None,
            duration_seconds=None,
            completed_at=None,
        ),
    ]
    result = deployment_analytics(_frame(rows), days_back=1).model_dump(mode="json")
    counts = result["deployment_statistics"]
    assert counts["total_deployments"] == 6 and counts["with_outcome"] == 5
    assert counts["by_status"] == {"completed": 2, "failed": 1, "in_progress": 1, "rolled_back": 2}
    assert result["success_rate"] == pytest.approx(2 / 5)
    assert result["failure_rate"] == pytest.approx(3 / 5)
    assert result["rollback_rate"] == pytest.approx(2 / 5)
    assert result["rollback_success_rate"] == pytest.approx(1 / 2)
    assert result["durations"]["n"] == 5
    assert result["dora"]["change_failure_rate"]["count"] == 3


def test_time_to_restore_from_rollback_or_next_success_on_the_same_gateway() -> None:
    t = T0
    rows = [
        # gw-1: fails at t (done t+10m), another gateway succeeds in between, gw-1 succeeds
        # at t+1h (done t+1h10m): restored after 1 hour
        _failed(0, t, gateway_host="gw-1", duration_seconds=600.0),
        _row(1, t + timedelta(minutes=20), gateway_host="gw-2"),
        _row(2, t + timedelta(hours=1), gateway_host="gw-1"),
        # gw-2: a successful rollback, its duration is a stored metric: 300 s
        _row(
            3,
            t + timedelta(hours=2),
            gateway_host="gw-2",
            status="rolled_back",
            outcome="failure",
            rollback_triggered=True,
            rollback_successful=True,
        ),
        # gw-3: fails and never sees a success again
        _failed(4, t + timedelta(hours=3), gateway_host="gw-3"),
        # staging failures are not production's problem
        _failed(5, t + timedelta(hours=3), target_environment="staging"),
    ]
    metrics = pd.DataFrame(
        {
            "execution_id": ["x-00003", "x-00003", "x-00000"],
            "metric_type": ["rollback_duration_s", "cpu_percent", "cpu_percent"],
            "value": [300.0, 40.0, 50.0],
        }
    )
    result = deployment_analytics(
        _frame(rows), metrics=metrics, days_back=2
    ).model_dump(mode="json")
    ttr = result["dora"]["time_to_restore_service"]
    assert ttr["failures"] == 3
    assert ttr["by_rollback"] == 1 and ttr["by_next_success"] == 1
    assert ttr["unrestored_at_window_end"] == 1
    assert ttr["by_rollback_p50_hours"] == pytest.approx(300 / 3600)
    assert ttr["by_next_success_p50_hours"] == pytest.approx(1.0)
    assert ttr["p50_hours"] == pytest.approx((1.0 + 300 / 3600) / 2)
    assert result["dora"]["lead_time_for_changes"]["available"] is False
    assert result["metrics"]["cpu_percent"]["n"] == 2  # the staging run has no metrics

    # any rollback-timing metric the data has counts, in its unit (here milliseconds)
    renamed = metrics.assign(
        metric_type=["revert_time_ms", "cpu_percent", "cpu_percent"], value=[300_000.0, 40, 50]
    )
    other = deployment_analytics(
        _frame(rows), metrics=renamed, days_back=2
    ).model_dump(mode="json")["dora"]
    assert other["time_to_restore_service"]["by_rollback_p50_hours"] == pytest.approx(300 / 3600)

    # without the metric the rollback counts as restored by the next success (none: gw-2 idle)
    plain = deployment_analytics(
        _frame(rows), days_back=2
    ).model_dump(mode="json")["dora"]["time_to_restore_service"]
    assert plain["by_rollback"] == 0 and plain["unrestored_at_window_end"] == 2


def _stored(i: int, status: str = "completed", **overrides: Any) -> dict[str, Any]:
    """A record as the recorder takes it (the store's frame has its own dtypes)."""
    from tests.conftest import failed_record, make_record

    record = failed_record(i) if status == "failed" else make_record(i, status=status)
    record.update(overrides)
    return record


EMPTY_GROUPS: dict[str, list[dict[str, Any]]] = {
    "failures, no success": [_stored(i, "failed") for i in range(3)],
    "one failure": [_stored(0, "failed")],
    "one success": [_stored(0)],
    "successes, no failure": [_stored(i) for i in range(3)],
    "failures and successes, no rollback": [_stored(0, "failed"), _stored(1), _stored(2)],
    "rollbacks only": [
        _stored(i, "rolled_back", rollback_triggered=True, rollback_successful=True)
        for i in range(2)
    ],
    "a failure on a gateway that never succeeds": [
        _stored(0, "failed", gateway_host="gw-a"),
        _stored(1, gateway_host="gw-b"),
    ],
    "only unfinished runs": [_stored(i, "in_progress", completed_at=None) for i in range(2)],
}


@pytest.mark.parametrize("case", list(EMPTY_GROUPS))
def test_analytics_of_a_store_with_empty_groups_are_answers(case: str, tmp_path: Path) -> None:
    """Issue 12 item 6: an environment with failures and no success crashed (the merge keys of
    an empty frame had another dtype); every empty group is an answer, read from a real store."""
    records = [
        *EMPTY_GROUPS[case],
        _stored(50, target_environment="staging", gateway_host="stg-1"),
    ]
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'store.duckdb'}") as learner:
        learner.record_executions(records)
        result = learner.get_deployment_analytics(
            "production", days_back=30, metric_types=list(BUILTIN_METRICS)
        )
        everything = learner.get_deployment_analytics(None, days_back=30)
    _assert_plain_json(result)
    _assert_plain_json(everything)
    failures = sum(r["status"] in ("failed", "rolled_back") for r in EMPTY_GROUPS[case])
    ttr = result["dora"]["time_to_restore_service"]
    assert ttr["failures"] == failures
    assert ttr["restored"] + ttr["unrestored_at_window_end"] == failures


def test_metric_types_choose_the_summaries() -> None:
    rows = [_row(i, T0 + timedelta(hours=i)) for i in range(10)]
    metrics = pd.DataFrame(
        {
            "execution_id": [f"x-{i:05d}" for i in range(10)],
            "metric_type": "memory_mb",
            "value": np.arange(10.0) * 100,
            "target_environment": "production",
        }
    )
    result = deployment_analytics(
        _frame(rows), metric_types="duration,success_rate,memory_mb", metrics=metrics
    ).model_dump(mode="json")
    assert result["metric_types"] == ["duration", "success_rate", "memory_mb"]
    assert set(result["rates"]) == {"success_rate"}
    assert result["durations"]["p50_seconds"] == 600.0
    assert set(result["trends"]) == {"duration", "success_rate", "memory_mb", "daily"}
    assert result["metrics"]["memory_mb"]["p50"] == pytest.approx(450.0)
    # the seed's flat keys stay whatever was chosen
    assert result["success_rate"] == 1.0 and result["rollback_rate"] == 0.0
    only_rates = deployment_analytics(
        _frame(rows), metric_types=["rollback_rate"]
    ).model_dump(mode="json")
    assert only_rates["durations"] is None and set(only_rates["rates"]) == {"rollback_rate"}
    # a type the store has but the window's metrics frame lacks is allowed and reported empty
    chosen = deployment_analytics(
        _frame(rows), metric_types=["cpu_percent"], known_metrics=["cpu_percent"]
    ).model_dump(mode="json")
    assert chosen["metrics"] == {
        "cpu_percent": {"n": 0, "mean": None, "p50": None, "p90": None, "min": None, "max": None}
    }


def _small_history() -> list[dict[str, Any]]:
    """200 runs, 30 minutes apart: two strategies on three gateways, failures and rollbacks
    (with their duration) in both of two 2-day windows."""
    records = []
    for i in range(200):
        data = {"cpu_percent": 30.0 + i % 17, "memory_mb": 800 + i}
        strategy = "canary" if i % 2 else "blue_green"
        if i % 7 == 0:
            data["rollback_duration_s"] = 60.0 + i
            record = _stored(
                i,
                "rolled_back",
                rollback_triggered=True,
                rollback_successful=i % 14 == 0,
                performance_data=data,
                deployment_strategy=strategy,
            )
        elif i % 5 == 0:
            record = _stored(i, "failed", performance_data=data, deployment_strategy=strategy)
        else:
            record = _stored(i, performance_data=data, deployment_strategy=strategy)
        records.append(record)
    return records


def test_the_answer_is_a_model_whose_json_validates_back(tmp_path: Path) -> None:
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'store.duckdb'}") as learner:
        learner.record_executions(_small_history())
        answers = [
            learner.analytics(None, days_back=2),
            learner.analytics("production", days_back=1, metric_types=["duration", "cpu_percent"]),
            learner.analytics("production", days_back=2, metric_types=["rollback_rate"]),
            learner.analytics("nowhere"),
        ]
        seed_shape = learner.get_deployment_analytics(None, days_back=2)
    full = answers[0]
    assert isinstance(full, DeploymentAnalytics)
    assert seed_shape == full.model_dump(mode="json")
    # the small store reaches every part of the answer: tests, comparisons, restores, insights
    assert isinstance(full.trends.by_metric["success_rate"], RateTrend)
    assert isinstance(full.trends.by_metric["cpu_percent"], MetricTrend)
    assert full.trends.by_metric["success_rate"].p_value is not None
    assert any(row.p_adjusted is not None for row in full.breakdowns.by_gateway)
    assert full.dora.time_to_restore_service.by_rollback > 0
    assert {"summary", "trend", "time_to_restore"} <= {d.kind for d in full.insight_details}
    assert answers[2].durations is None and answers[3].insight_details[0].kind == "no_data"
    assert list(full.model_dump(mode="json")["trends"])[-1] == "daily"
    assert "plot" not in full.model_dump(mode="json")
    plotted = full.model_copy(update={"plot": str(tmp_path / "dashboard.png")})
    assert plotted.model_dump(mode="json")["plot"] == str(tmp_path / "dashboard.png")
    for answer in (*answers, plotted):
        text = json.dumps(answer.model_dump(mode="json"), allow_nan=False)
        back = DeploymentAnalytics.model_validate(json.loads(text))
        assert back == answer
        assert json.dumps(back.model_dump(mode="json"), allow_nan=False) == text


def test_every_field_of_every_analytics_model_is_described() -> None:
    models = [
        model
        for model in vars(analytics_answers).values()
        if isinstance(model, type)
        and issubclass(model, Answer)
        and model.__module__ == analytics_answers.__name__
    ]
    assert DeploymentAnalytics in models and len(models) > 25
    for model in models:
        schema = model.model_json_schema()
        assert schema["properties"], model.__name__
        for name, field in schema["properties"].items():
            assert field.get("description"), f"{model.__name__}.{name} has no description"
    # the JSON the answer writes is the JSON its schema describes
    assert DeploymentAnalytics.model_json_schema(
        mode="serialization"
    ) == DeploymentAnalytics.model_json_schema(mode="validation")


# ------------------------------------------------------------------ the synthetic world
class World:
    def __init__(self, frame: pd.DataFrame, metrics: pd.DataFrame, truth: dict[str, Any]):
        self.frame, self.metrics, self.truth = frame, metrics, truth


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    synthetic = SyntheticWorld(seed=0, start=datetime(2025, 1, 1, tzinfo=UTC), days=365)
    url = f"duckdb://{tmp_path_factory.mktemp('analytics') / 'world.duckdb'}"
    measured: list[tuple[str, str, float]] = []
    with DeploymentPatternLearner.open(url) as learner:
        for batch in synthetic.generate(n_executions=WORLD_EXECUTIONS, batch_size=10_000):
            report = learner.record_executions(batch.records, batch_size=len(batch.records))
            assert report.accepted == len(batch.records)
            measured += [
                (r["execution_id"], key, float(value))
                for r in batch.records
                for key, value in r["performance_data"].items()
            ]
        frame = learner.store.executions_frame()
    metrics = pd.DataFrame(measured, columns=["execution_id", "metric_type", "value"])
    return World(frame, metrics, synthetic.truth())


AFTER_DRIFT = {"environment": "production", "days_back": 60, "as_of": "2025-09-20T00:00:00Z"}


def test_world_truth_is_what_the_docs_say(world: World) -> None:
    assert world.truth["drift_gateway"] == DRIFT_GATEWAY
    assert world.truth["drift_gateway_at"] == datetime(2025, 7, 21, tzinfo=UTC)


def test_after_the_drift_the_degraded_gateway_is_named(world: World) -> None:
    result = deployment_analytics(
        world.frame, metrics=world.metrics, **AFTER_DRIFT
    ).model_dump(mode="json")
    top = [g["gateway"] for g in result["breakdowns"]["top_failing_gateways"][:3]]
    assert DRIFT_GATEWAY in top
    row = next(g for g in result["breakdowns"]["by_gateway"] if g["gateway"] == DRIFT_GATEWAY)
    assert row["significant"] and row["failure_ratio"] > 1.5
    assert any(i.startswith(f"{DRIFT_GATEWAY} fails") for i in result["insights"])
    # direct is bad in production (log-odds −1.0) and the analytics say so
    assert any(i.startswith("direct deployments to production fail") for i in result["insights"])

    # before the drift the same gateway is unremarkable
    before = deployment_analytics(
        world.frame, environment="production", days_back=60, as_of="2025-07-20T00:00:00Z"
    ).model_dump(mode="json")
    row = next(g for g in before["breakdowns"]["by_gateway"] if g["gateway"] == DRIFT_GATEWAY)
    assert not row["significant"]
    assert not any(DRIFT_GATEWAY in i for i in before["insights"])


def test_rates_equal_hand_computed_ones(world: World) -> None:
    result = deployment_analytics(
        world.frame, metrics=world.metrics, **AFTER_DRIFT
    ).model_dump(mode="json")
    f = world.frame
    end = pd.Timestamp(AFTER_DRIFT["as_of"])
    start = end - pd.Timedelta(days=60)
    win = f[(f.target_environment == "production") & (f.started_at > start) & (f.started_at <= end)]
    known = win[win.outcome.notna()]
    assert result["deployment_statistics"]["total_deployments"] == len(win)
    assert result["success_rate"] == pytest.approx((known.outcome == "success").mean())
    assert result["failure_rate"] == pytest.approx((known.outcome == "failure").mean())
    assert result["rollback_rate"] == pytest.approx(known.rollback_triggered.mean())
    rolled = known[known.rollback_triggered]
    assert result["rollback_success_rate"] == pytest.approx(
        rolled.rollback_successful.astype(bool).mean()
    )
    assert result["durations"]["p50_seconds"] == pytest.approx(known.duration_seconds.median())
    assert result["durations"]["p90_seconds"] == pytest.approx(known.duration_seconds.quantile(0.9))
    blue_green = known[known.deployment_strategy == "blue_green"].duration_seconds
    assert result["durations"]["by_strategy"]["blue_green"]["p50_seconds"] == pytest.approx(
        blue_green.median()
    )
    assert result["dora"]["deployment_frequency"]["successful_per_day"] == pytest.approx(
        (known.outcome == "success").sum() / 60
    )
    gateway = known[known.gateway_host == DRIFT_GATEWAY]
    row = next(g for g in result["breakdowns"]["by_gateway"] if g["gateway"] == DRIFT_GATEWAY)
    assert row["n"] == len(gateway)
    assert row["failure_rate"]["rate"] == pytest.approx((gateway.outcome == "failure").mean())
    daily = result["trends"]["daily"]
    assert sum(d["deployments"] for d in daily) == len(win)
    assert sum(d["failures"] for d in daily) == (known.outcome == "failure").sum()
    cpu = world.metrics[
        (world.metrics.metric_type == "cpu_percent")
        & world.metrics.execution_id.isin(win.execution_id)
    ]
    assert result["metrics"]["cpu_percent"]["p50"] == pytest.approx(cpu.value.median())


def test_intervals_contain_the_point_estimates(world: World) -> None:
    result = deployment_analytics(
        world.frame, metrics=world.metrics, **AFTER_DRIFT
    ).model_dump(mode="json")
    checked = 0
    for rate in _rate_dicts(result):
        if rate["n"]:
            assert 0.0 <= rate["low"] <= rate["rate"] <= rate["high"] <= 1.0
            checked += 1
        else:
            assert rate["rate"] is None and rate["low"] is None
    assert checked > 50
    _assert_plain_json(result)
    json.dumps(result, allow_nan=False)


def test_trend_tests_find_a_real_change_and_not_a_stationary_one(world: World) -> None:
    # the drift gateway alone, 60 days after its drift date against the 60 days before
    gateway = world.frame[world.frame.gateway_host == DRIFT_GATEWAY]
    drifted = deployment_analytics(
        gateway, days_back=60, as_of="2025-09-20T00:00:00Z"
    ).model_dump(mode="json")
    trend = drifted["trends"]["success_rate"]
    assert trend["current"]["rate"] < trend["previous"]["rate"] - 0.15
    assert trend["p_value"] < 0.05 and trend["significant"]
    assert any(i.startswith("Success rate fell from") for i in drifted["insights"])

    # before the upgrade (2025-06-20) nothing moves but the slow database drift
    calm = deployment_analytics(
        world.frame, days_back=60, as_of="2025-06-15T00:00:00Z"
    ).model_dump(mode="json")
    for name in ("success_rate", "rollback_rate", "duration"):
        assert calm["trends"][name]["p_value"] > 0.15, name
    assert not [d for d in calm["insight_details"] if d["kind"] == "trend"]


def test_plot_writes_a_png(world: World, tmp_path: Path) -> None:
    result = deployment_analytics(world.frame, metrics=world.metrics, **AFTER_DRIFT)
    path = analytics_plot(result, tmp_path / "plots" / "analytics.png")
    assert path == tmp_path / "plots" / "analytics.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    # straight from a frame, and for an empty window
    empty = analytics_plot(world.frame, tmp_path / "empty.png", environment="nowhere")
    assert empty.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="apply to a frame"):
        analytics_plot(result, tmp_path / "x.png", days_back=7)
