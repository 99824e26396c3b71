from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from deploylearn.domain.records import parse_execution, parse_planned, split_resources
from deploylearn.domain.screen import validate_execution
from deploylearn.errors import InvalidRecordError
from deploylearn.ingest.formats import FIELD_ORDER, read_rows, write_records_to
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


# -- resources_deployed given as one string: records.split_resources, one rule everywhere --
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("database", ["database"]),
        ("project,database", ["database", "project"]),
        ("project, Database ;tags", ["database", "project", "tags"]),
        ("project;;project,", ["project"]),
    ],
)
def test_a_resource_string_is_split_alike_for_executions_and_plans(
    text: str, expected: list[str]
) -> None:
    # executions took only a single name as a string before (a ',' failed the slug pattern)
    assert parse_execution(make_record(resources_deployed=text)).resources_deployed == expected
    planned = parse_planned(
        {
            "target_environment": "production",
            "deployment_strategy": "canary",
            "resources_deployed": text,
        }
    )
    assert planned.resources_deployed == expected
    assert validate_execution(make_record(resources_deployed=text)).resources_deployed == expected


@pytest.mark.parametrize("text", ["", "  ", " , ;"])
def test_a_resource_string_without_names_is_at_least_one_short(text: str) -> None:
    assert problems(resources_deployed=text) == [
        ("resources_deployed", "List should have at least 1 item after validation, not 0")
    ]


def test_split_resources_strips_and_drops_blanks() -> None:
    assert split_resources(" a ,b;; c ,") == ["a", "b", "c"]
    assert split_resources("") == []
    assert split_resources("Blue Green") == ["Blue Green"]  # spelling is the records' job


def test_a_csv_resources_cell_takes_either_separator(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    header = ",".join(FIELD_ORDER)
    record = make_record()
    cells = write_csv_cells(record)
    cells["resources_deployed"] = '"project,database"'
    path.write_text(header + "\n" + ",".join(cells[k] for k in FIELD_ORDER) + "\n")
    [(line, raw)] = list(read_rows(path))
    assert line == 2 and isinstance(raw, dict)
    assert raw["resources_deployed"] == ["project", "database"]
    assert parse_execution(raw).resources_deployed == ["database", "project"]


def write_csv_cells(record: dict[str, object]) -> dict[str, str]:
    buffer = io.BytesIO()
    write_records_to(buffer, [[record]], "csv")
    text = buffer.getvalue().decode()
    [row] = list(csv.DictReader(io.StringIO(text)))
    return {k: '"' + v.replace('"', '""') + '"' for k, v in row.items()}
