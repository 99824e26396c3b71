from __future__ import annotations

import pytest

from deploylearn.domain.records import parse_execution
from deploylearn.errors import InvalidRecordError
from tests.conftest import make_record


def problems(**overrides: object) -> list[tuple[str, str]]:
    with pytest.raises(InvalidRecordError) as info:
        parse_execution(make_record(**overrides))
    return [(p.field, p.message) for p in info.value.problems]


def test_valid_record_is_normalized() -> None:
    record = parse_execution(
        make_record(deployment_strategy="Blue-Green", resources_deployed="database")
    )
    assert record.deployment_strategy == "blue_green"
    assert record.resources_deployed == ["database"]
    assert record.started_at.tzinfo is not None
    assert record.outcome == "success"
    assert record.duration_seconds == 900


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"status": "done"}, "status", "completed"),
        ({"started_at": "2025-03-01T08:00:00"}, "started_at", "timezone"),
        ({"completed_at": "2025-02-01T08:00:00+00:00"}, "completed_at", "before started_at"),
        ({"completed_at": "2025-06-01T08:00:00+00:00"}, "completed_at", "30 days"),
        ({"started_at": "2199-01-01T00:00:00+00:00", "completed_at": None}, "started_at", "future"),
        ({"execution_name": "  "}, "execution_name", "at least 1"),
        ({"configuration_used": {"x": {1, 2}}}, "configuration_used", "must be JSON"),
        ({"configuration_used": {"blob": "x" * 70_000}}, "configuration_used", "limit"),
        ({"configuration_used": "backup=true"}, "configuration_used", "dictionary"),
        ({"resources_deployed": []}, "resources_deployed", "at least 1"),
        ({"resources_deployed": ["p"] * 65}, "resources_deployed", "at most 64"),
        ({"rollback_successful": True}, "rollback_successful", "rollback_triggered"),
        ({"gatway_host": "x"}, "gatway_host", "not a field"),
        ({"execution_id": "bad id with spaces"}, "execution_id", "pattern"),
    ],
)
def test_bad_input_names_the_field(overrides: dict, field: str, fragment: str) -> None:
    found = problems(**overrides)
    assert any(f == field and fragment in m for f, m in found), found


def test_missing_required_field_is_named() -> None:
    record = make_record()
    del record["gateway_host"]
    with pytest.raises(InvalidRecordError) as info:
        parse_execution(record)
    assert [(p.field, p.message) for p in info.value.problems] == [("gateway_host", "is required")]


def test_rolled_back_status_implies_rollback() -> None:
    record = parse_execution(make_record(status="rolled_back", rollback_successful=True))
    assert record.rollback_triggered
    assert record.outcome == "failure"


def test_completed_with_rollback_is_a_failure() -> None:
    record = parse_execution(make_record(rollback_triggered=True, rollback_successful=True))
    assert record.outcome == "failure"


def test_unfinished_runs_have_no_outcome() -> None:
    assert parse_execution(make_record(status="in_progress", completed_at=None)).outcome is None


def test_offsets_are_converted_to_utc() -> None:
    record = parse_execution(
        make_record(started_at="2025-03-01T10:00:00+02:00", completed_at="2025-03-01T08:30:00Z")
    )
    assert record.started_at.isoformat() == "2025-03-01T08:00:00+00:00"
