"""One contract, every store: the same scenarios must give the same answers on each backend."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.errors import ConflictError, InvalidRecordError, UnknownExecutionError
from deploylearn.store.base import EXECUTION_FRAME_DTYPES, ISSUE_FRAME_DTYPES, METRIC_FRAME_DTYPES
from tests.conftest import BASE_TIME, failed_record, make_record

TEMPLATES = [
    {"backup_enabled": True, "validation_timeout": 300},
    {"backup_enabled": False, "validation_timeout": 300},
    {"backup_enabled": True, "validation_timeout": 900, "canary_percent": 10},
]


def shared(url: str) -> str:
    """DuckDB needs shared mode for several writer processes; Neo4j takes them as they come."""
    return url + "?mode=shared" if url.startswith("duckdb") else url


def test_record_and_read_back(store_url: str) -> None:
    with DeploymentPatternLearner.open(store_url) as learner:
        execution_id = learner.record_deployment_execution(**make_record(1))
        stored = learner.store.get_execution(execution_id)
    assert stored is not None
    assert stored["execution_name"] == "Production HMI Update 1"
    assert stored["resources_deployed"] == ["database", "project"]
    assert stored["started_at"].isoformat() == "2025-03-01T08:30:00+00:00"
    assert stored["configuration_used"]["build_number"] == 1001
    assert stored["pattern_id"].startswith("pat-")


def test_store_id_is_stable_and_survives_a_wipe(store_url: str, tmp_path: Path) -> None:
    from deploylearn.store import open_store

    with open_store(store_url) as store:
        first = store.store_id()
        store.init_schema()
        store.wipe()
        assert store.store_id() == first
    with open_store(store_url) as store:
        assert store.store_id() == first
    assert first and len(first) == 32
    with open_store(f"duckdb://{tmp_path / 'other.duckdb'}") as other:
        assert other.store_id() not in (None, first)


def test_failures_count_against_patterns(store_url: str) -> None:
    with DeploymentPatternLearner.open(store_url) as learner:
        for i in range(6):
            learner.record_deployment_execution(**make_record(i))
        for i in range(6, 10):
            learner.record_deployment_execution(**failed_record(i))
        learner.record_deployment_execution(
            **make_record(
                10,
                status="rolled_back",
                rollback_successful=True,
                failure_reasons=["Validation timed out after 300s"],
            )
        )
        learner.record_deployment_execution(
            **make_record(11, status="in_progress", completed_at=None)
        )
        patterns = learner.store.patterns()
        stats = learner.store.stats()
        scenarios = learner.store.rollback_scenarios()
    assert len(patterns) == 1  # build_number differs on every run: still one pattern
    assert (patterns[0].success_count, patterns[0].failure_count) == (6, 5)
    assert stats.executions == 12
    assert stats.issues == 2  # four 'unreachable' messages normalize to one issue
    assert [(s.success_count, s.failure_count) for s in scenarios] == [(1, 0)]
    assert scenarios[0].trigger_issue == "validation timed out after <n>"


def test_retries_never_duplicate(store_url: str) -> None:
    record = make_record(1)
    without_id = {k: v for k, v in make_record(2).items() if k != "execution_id"}
    with DeploymentPatternLearner.open(store_url) as learner:
        first = learner.record_deployment_execution(**record)
        assert learner.record_deployment_execution(**record) == first
        blind = learner.record_deployment_execution(**without_id)
        assert learner.record_deployment_execution(**without_id) == blind
        with pytest.raises(ConflictError, match=first):
            learner.record_deployment_execution(**{**record, "status": "failed"})
        stats = learner.store.stats()
    assert stats.executions == 2
    assert stats.successes == 2 and stats.failures == 0


def test_invalid_record_is_rejected_whole(store_url: str) -> None:
    with DeploymentPatternLearner.open(store_url) as learner:
        with pytest.raises(InvalidRecordError, match="status"):
            learner.record_deployment_execution(**make_record(1, status="exploded"))
        assert learner.store.stats().executions == 0


def test_ingest_keeps_good_lines_and_names_bad_ones(store_url: str, tmp_path: Path) -> None:
    lines = [orjson.dumps(make_record(i)).decode() for i in range(5)]
    lines.insert(2, "{not json")
    lines.insert(4, orjson.dumps(make_record(99, started_at="2025-03-01T08:00:00")).decode())
    lines.append(orjson.dumps(make_record(98, status="weird", gateway_host="")).decode())
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with DeploymentPatternLearner.open(store_url) as learner:
        report = learner.ingest(path, batch_size=2)
        again = learner.ingest(path, batch_size=3)
        stats = learner.store.stats()
    assert (report.accepted, report.rejected, report.duplicates) == (5, 3, 0)
    located = {(e.line, e.field) for e in report.errors}
    assert {(3, "record"), (5, "started_at"), (8, "status"), (8, "gateway_host")} <= located
    assert (again.accepted, again.duplicates, again.rejected) == (0, 5, 3)
    assert stats.executions == 5


def test_secrets_are_not_stored_in_clear(store_url: str) -> None:
    record = make_record(
        1,
        configuration_used={"db_password": "Hunter2-XYZZY", "validation_timeout": 300},
        execution_log="connect user=ops password=Hunter2-XYZZY ok",
        failure_reasons=["auth failed for token=Hunter2-XYZZY"],
        status="failed",
    )
    with DeploymentPatternLearner.open(store_url) as learner:
        execution_id = learner.record_deployment_execution(**record)
        stored = learner.store.get_execution(execution_id)
        exported = [r for batch in learner.store.iter_executions() for r in batch]
    assert "Hunter2-XYZZY" not in orjson.dumps(stored, default=str).decode()
    assert "Hunter2-XYZZY" not in orjson.dumps(exported, default=str).decode()
    assert stored is not None and stored["configuration_used"]["db_password"] == "<redacted>"


def test_every_write_is_audited(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYLEARN_ACTOR", "ci-bot")
    start = datetime.now(UTC)  # the trail of earlier tests survived their wipes
    with DeploymentPatternLearner.open(store_url) as learner:
        ids = [learner.record_deployment_execution(**make_record(i)) for i in range(3)]
        learner.record_deployment_execution(**make_record(0))  # a retry writes nothing
        adaptation = learner.record_environment_adaptation(
            adaptation_name="Production Security Hardening",
            source_environment="staging",
            target_environment="production",
            adaptation_rules=["Enable SSL certificate validation"],
            original_configuration={"ssl_validation": False},
            adapted_configuration={"ssl_validation": True},
        )
        entries = learner.store.audit_log(limit=20)
        log = [e for e in entries if e.at >= start and e.entity_id != "schema"]
        adaptations = learner.store.adaptations()
    assert sorted(e.entity_id for e in log) == sorted([*ids, adaptation])
    assert {e.actor for e in log} == {"ci-bot"}
    assert {e.action for e in log} == {"record_execution", "record_adaptation"}
    assert [a.adaptation_name for a in adaptations] == ["Production Security Hardening"]


def test_wipe_keeps_the_audit_trail_and_records_what_it_erased(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYLEARN_ACTOR", "ci-bot")
    with DeploymentPatternLearner.open(store_url) as learner:
        for i in range(3):
            learner.record_deployment_execution(**make_record(i))
        adaptation = learner.record_environment_adaptation(
            adaptation_name="Hardening",
            source_environment="staging",
            target_environment="production",
            adaptation_rules=["Enable SSL"],
            original_configuration={"ssl": False},
            adapted_configuration={"ssl": True},
        )
        learner.store.wipe(actor="cleaner")
        log = learner.store.audit_log(limit=5)
        assert learner.store.stats().executions == 0
    assert (log[0].action, log[0].actor) == ("wipe", "cleaner")
    assert log[0].detail.startswith("erased 3 executions, 1 patterns, 1 adaptations")
    assert "by ci-bot" in log[0].detail
    assert (log[1].action, log[1].entity_id) == ("record_adaptation", adaptation)


def _store_answer(learner: DeploymentPatternLearner) -> tuple:
    stats = learner.store.stats().as_dict()
    stats.pop("url")
    stats.pop("audit_entries")
    patterns = sorted(
        (p.pattern_id, p.success_count, p.failure_count) for p in learner.store.patterns()
    )
    records = [r for batch in learner.store.iter_executions() for r in batch]
    return stats, patterns, orjson.dumps(records, default=str)


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_export_round_trip(store_url: str, tmp_path: Path, fmt: str) -> None:
    source = f"duckdb://{tmp_path / 'source.duckdb'}"
    with DeploymentPatternLearner.open(source) as learner:
        for i in range(20):
            maker = failed_record if i % 4 == 0 else make_record
            learner.record_deployment_execution(**maker(i, configuration_used=TEMPLATES[i % 3]))
        path = tmp_path / f"export.{fmt}"
        assert learner.export(path) == 20
        expected = _store_answer(learner)
    with DeploymentPatternLearner.open(store_url) as learner:
        report = learner.ingest(path)
        assert (report.accepted, report.rejected) == (20, 0)
        assert _store_answer(learner) == expected


def test_csv_and_jsonl_of_the_same_data_give_the_same_store(tmp_path: Path) -> None:
    records = [
        (failed_record if i % 5 == 0 else make_record)(i, configuration_used=TEMPLATES[i % 3])
        for i in range(30)
    ]
    jsonl = tmp_path / "h.jsonl"
    jsonl.write_text("\n".join(orjson.dumps(r).decode() for r in records))
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'a.duckdb'}") as learner:
        learner.ingest(jsonl)
        learner.export(tmp_path / "h.csv")
        answer_from_jsonl = _store_answer(learner)
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'b.duckdb'}") as learner:
        report = learner.ingest(tmp_path / "h.csv")
        assert report.rejected == 0
        assert _store_answer(learner) == answer_from_jsonl


def _writer(url: str, worker: int, count: int) -> None:
    records = []
    for i in range(worker * count, (worker + 1) * count):
        maker = failed_record if i % 3 == 0 else make_record
        records.append(maker(i, configuration_used=TEMPLATES[i % 3]))
    with DeploymentPatternLearner.open(url) as learner:
        report = learner.record_executions(records, batch_size=250)
    assert report.accepted == count, report.as_dict()


@pytest.mark.slow
def test_concurrent_writers_lose_no_count(store_url: str) -> None:
    workers, per_worker = 4, 5000
    url = shared(store_url)
    with DeploymentPatternLearner.open(url):
        pass  # create the schema before the race
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_writer, args=(url, w, per_worker)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=600)
    assert [p.exitcode for p in processes] == [0] * workers
    expected: Counter[tuple[int, str]] = Counter()
    for i in range(workers * per_worker):
        expected[(i % 3, "failure" if i % 3 == 0 else "success")] += 1
    with DeploymentPatternLearner.open(url) as learner:
        stats = learner.store.stats()
        patterns = learner.store.patterns()
    assert stats.executions == workers * per_worker
    assert len(patterns) == 3
    by_total = sorted((p.success_count, p.failure_count) for p in patterns)
    assert by_total == sorted(
        (expected[(t, "success")], expected[(t, "failure")]) for t in range(3)
    )


def _measured_history() -> list[dict]:
    """Successes, failures sharing an issue, a rollback, a run still in progress, metrics of
    every kind (numbers count, booleans and text do not)."""
    records = []
    for i in range(12):
        maker = failed_record if i % 4 == 1 else make_record
        records.append(
            maker(
                i,
                configuration_used=TEMPLATES[i % 3],
                source_environment=None if i % 5 == 0 else "staging",
                performance_data={"cpu_percent": 30.0 + i, "memory_mb": 800 + i, "warm": True},
            )
        )
    records.append(
        make_record(
            12,
            status="rolled_back",
            rollback_triggered=True,
            rollback_successful=False,
            failure_reasons=["Validation timed out after 300s", "Gateway unreachable"],
            performance_data={"rollback_duration_s": 42.5, "note": "slow"},
        )
    )
    records.append(make_record(13, status="in_progress", completed_at=None, performance_data={}))
    return records


def _read_answers(learner: DeploymentPatternLearner) -> dict[str, pd.DataFrame]:
    store = learner.store
    middle = BASE_TIME + timedelta(hours=2)
    late = BASE_TIME + timedelta(hours=5)
    return {
        "executions": store.executions_frame(),
        "executions_window": store.executions_frame(since=middle, until=late),
        "executions_of": store.executions_frame_of(["t-000007", "t-000002", "no-such-id"]),
        "metrics": store.metrics_frame(),
        "metrics_filtered": store.metrics_frame(
            metric_types=["cpu_percent", "rollback_duration_s"], since=middle
        ),
        "metrics_until": store.metrics_frame(until=middle),
        "issues": store.issues(),
    }


def test_read_frames_are_the_same_on_every_store(store_url: str, tmp_path: Path) -> None:
    records = _measured_history()
    with DeploymentPatternLearner.open(store_url) as learner:
        empty = _read_answers(learner)
        empty_types = learner.store.metric_types()
        learner.record_executions(records)
        answers = _read_answers(learner)
        types = learner.store.metric_types()
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'reference.duckdb'}") as learner:
        learner.record_executions(records)
        reference = _read_answers(learner)
    for name, frame in answers.items():
        pd.testing.assert_frame_equal(frame, reference[name], obj=name)
    dtypes = {
        "executions": EXECUTION_FRAME_DTYPES,
        "metrics": METRIC_FRAME_DTYPES,
        "issues": ISSUE_FRAME_DTYPES,
    }
    for name in answers:
        expected = dtypes[name.split("_")[0]]
        assert list(empty[name].columns) == list(expected) and empty[name].empty
        assert {c: str(t) for c, t in answers[name].dtypes.items()} == {
            c: str(pd.Series(dtype=t).dtype) for c, t in expected.items()
        }, name

    executions, metrics = answers["executions"], answers["metrics"]
    assert list(executions["execution_id"]) == [f"t-{i:06d}" for i in range(14)]
    assert executions["completed_at"].isna().sum() == 1
    assert executions["source_environment"].isna().sum() == 3
    assert list(answers["executions_window"]["execution_id"]) == [
        f"t-{i:06d}" for i in (4, 5, 6, 7, 8, 9)
    ]
    of = answers["executions_of"]  # the frame's rows of those ids, in its order
    pd.testing.assert_frame_equal(
        of.reset_index(drop=True),
        executions[executions["execution_id"].isin(["t-000002", "t-000007"])].reset_index(
            drop=True
        ),
    )
    # 12 runs x (duration, cpu, memory) + the rollback's duration and rollback_duration_s
    assert len(metrics) == 12 * 3 + 2
    assert set(metrics["metric_type"]) == {
        "duration_seconds",
        "cpu_percent",
        "memory_mb",
        "rollback_duration_s",
    }
    assert metrics["recorded_at"].is_monotonic_increasing
    assert empty_types == [] and types == sorted(set(metrics["metric_type"]))
    first = metrics[metrics["execution_id"] == "t-000000"]
    assert list(first["metric_type"]) == ["cpu_percent", "duration_seconds", "memory_mb"]
    assert list(first["value"]) == [30.0, 900.0, 800.0]
    rollback = metrics[metrics["execution_id"] == "t-000012"]
    assert list(rollback["metric_type"]) == ["duration_seconds", "rollback_duration_s"]
    assert (rollback["target_environment"] == "production").all()
    filtered = answers["metrics_filtered"]
    assert set(filtered["metric_type"]) == {"cpu_percent", "rollback_duration_s"}
    assert filtered["execution_id"].min() == "t-000004"
    assert set(answers["metrics_until"]["execution_id"]) == {f"t-{i:06d}" for i in range(4)}

    issues = answers["issues"]
    assert list(issues["issue_id"]) == sorted(issues["issue_id"])
    by_text = dict(zip(issues["normalized"], issues["executions"], strict=True))
    assert by_text["validation timed out after <n>"] == 1
    unreachable = [n for n in by_text if "unreachable" in n]
    assert sorted(by_text[n] for n in unreachable) == [1, 3]


# ------------------------------------------------------------------ delete and amend
def _history() -> list[dict]:
    """Successes, failures with issues, a rolled-back run (a scenario), one lone pattern."""
    records = [
        (failed_record if i % 4 == 0 else make_record)(i, configuration_used=TEMPLATES[i % 2])
        for i in range(12)
    ]
    records.append(
        make_record(
            12,
            status="rolled_back",
            rollback_triggered=True,
            rollback_successful=True,
            failure_reasons=["Validation timed out after 300s"],
        )
    )
    records.append(make_record(13, configuration_used=TEMPLATES[2]))  # its pattern's only run
    return records


def _counted(learner: DeploymentPatternLearner) -> tuple:
    """Everything a count lives in: stats, patterns, issues, scenarios, the frame."""
    stats = learner.store.stats().as_dict()
    for key in ("url", "audit_entries"):
        stats.pop(key)
    patterns = [p.model_dump() for p in learner.store.patterns()]
    scenarios = [s.model_dump() for s in learner.store.rollback_scenarios()]
    issues = learner.store.issues().to_dict(orient="records")
    frame = learner.store.executions_frame().drop(columns=["pattern_id"])
    return stats, patterns, scenarios, issues, frame.to_dict(orient="records")


def _fresh(tmp_path: Path, records: list[dict]) -> tuple:
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'fresh.duckdb'}") as learner:
        learner.record_executions(records)
        return _counted(learner)


def test_delete_is_as_if_never_recorded_and_audited(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYLEARN_ACTOR", "ops-lead")
    records = _history()
    gone = {"t-000004", "t-000012", "t-000013", "t-000001"}  # a failure, the rollback, a lone
    with DeploymentPatternLearner.open(store_url) as learner:  # pattern's run, a success
        learner.record_executions(records)
        before = learner.store.stats()
        for execution_id in sorted(gone):
            deleted = learner.delete_execution(execution_id, reason="test run on the wrong store")
            assert deleted["execution_id"] == execution_id
        answer = _counted(learner)
        log = [e for e in learner.store.audit_log(limit=50) if e.action == "delete_execution"]
        with pytest.raises(UnknownExecutionError, match="t-000004"):
            learner.delete_execution("t-000004", reason="again")
        with pytest.raises(InvalidRecordError, match="reason"):
            learner.delete_execution("t-000002", reason="  ")
        assert learner.store.stats().audit_entries == before.audit_entries
    assert answer == _fresh(tmp_path, [r for r in records if r["execution_id"] not in gone])
    assert answer[0]["rollback_scenarios"] == 0 and answer[0]["patterns"] == 2
    assert sorted(e.entity_id for e in log) == sorted(gone)
    assert {e.actor for e in log} == {"ops-lead"}
    assert all("test run on the wrong store" in e.detail and "pat-" in e.detail for e in log)


def test_amend_is_as_if_recorded_amended(store_url: str, tmp_path: Path) -> None:
    records = _history()
    corrected = {
        # the outcome was wrong: it failed, with a reason and a lesson
        "t-000001": {
            "status": "failed",
            "failure_reasons": ["Gateway down after 3 retries"],
            "lessons_learned": ["check the gateway first"],
        },
        # the failure rolled back after all
        "t-000004": {
            "status": "rolled_back",
            "rollback_triggered": True,
            "rollback_successful": False,
        },
        # another configuration and strategy: another pattern (the lone one's template)
        "t-000002": {"configuration_used": TEMPLATES[2], "deployment_strategy": "canary"},
        # times: it finished an hour later
        "t-000005": {"completed_at": (BASE_TIME + timedelta(minutes=150 + 60)).isoformat()},
    }
    with DeploymentPatternLearner.open(store_url) as learner:
        learner.record_executions(records)
        for execution_id, fields in corrected.items():
            stored = learner.amend_execution(execution_id, reason="ticket OPS-1", **fields)
            assert stored["execution_id"] == execution_id
        same = learner.amend_execution("t-000003", reason="no-op", status="completed")
        answer = _counted(learner)
        amended = learner.store.get_execution("t-000002")
        log = [e for e in learner.store.audit_log(limit=50) if e.action == "amend_execution"]
        with pytest.raises(InvalidRecordError, match="execution_id"):
            learner.amend_execution("t-000003", execution_id="t-999")
        with pytest.raises(InvalidRecordError, match="status"):
            learner.amend_execution("t-000003", status="exploded")
        with pytest.raises(InvalidRecordError, match="no_such_field"):
            learner.amend_execution("t-000003", no_such_field=1)
        with pytest.raises(UnknownExecutionError):
            learner.amend_execution("t-404", status="failed")
        unchanged = learner.store.get_execution("t-000003")
    expected = [{**r, **corrected.get(r["execution_id"], {})} for r in records]
    assert answer == _fresh(tmp_path, expected)
    assert same["status"] == "completed" and unchanged is not None
    assert amended is not None and amended["deployment_strategy"] == "canary"
    assert sorted(e.entity_id for e in log) == sorted(corrected)  # the no-op wrote nothing
    assert all(e.detail.startswith("ticket OPS-1; changed ") for e in log)


def test_api_tokens_are_kept_hashed_revocable_and_audited(store_url: str) -> None:
    from deploylearn.domain.tokens import ApiToken, new_token, token_hash
    from deploylearn.store import open_store

    secret = new_token()
    token = ApiToken(
        name="ci-pipeline",
        scopes=("write",),
        token_sha256=token_hash(secret),
        created_at=BASE_TIME,
        created_by="admin",
    )
    with open_store(store_url) as store:
        store.init_schema()
        assert store.api_tokens() == []
        store.save_api_token(token, actor="admin")
        with pytest.raises(ConflictError, match="ci-pipeline"):
            store.save_api_token(token, actor="admin")  # an active name is taken
        store.wipe()  # tokens are not history: a wipe keeps them
        [kept] = store.api_tokens()
        assert kept == token and kept.allows("read") and kept.allows("write")
        kept_json = orjson.dumps([t.model_dump(mode="json") for t in store.api_tokens()])
        assert secret.encode() not in kept_json
        assert store.revoke_api_token("ci-pipeline", actor="admin")
        assert not store.revoke_api_token("ci-pipeline", actor="admin")  # nothing active left
        assert not store.revoke_api_token("never-made", actor="admin")
        [revoked] = store.api_tokens()
        assert revoked.revoked_at is not None and not revoked.allows("read")
        again = token.model_copy(update={"token_sha256": token_hash(new_token())})
        store.save_api_token(again, actor="admin")  # a revoked name may be taken again
        assert [t.active for t in store.api_tokens()] == [True]
        actions = [e.action for e in store.audit_log(limit=20) if e.entity_id == "ci-pipeline"]
    assert sorted(actions) == [
        "create_api_token",
        "create_api_token",
        "revoke_api_token",
    ]
