"""The fast screen accepts a record only when pydantic would accept it with identical values.

Each case runs a record through both paths, as JSON bytes and as a mapping; the screen may
decline anything, but whatever it accepts must equal ``parse_execution``'s result.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploylearn.demo import demo_records
from deploylearn.domain.records import DeploymentExecution, parse_execution
from deploylearn.domain.screen import (
    load_json_object,
    screen_json,
    screen_mapping,
    validate_execution,
)
from deploylearn.errors import InvalidRecordError
from tests.conftest import make_record

FIELDS = [*DeploymentExecution.model_fields, "outcome", "duration_seconds"]


def values(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in FIELDS}


def slow(data: dict[str, Any] | bytes) -> dict[str, Any] | list[tuple[str, str]]:
    """What pydantic makes of it: the values, or the problems it names."""
    try:
        mapping = load_json_object(data) if isinstance(data, bytes) else data
        return values(parse_execution(mapping))
    except InvalidRecordError as exc:
        return [(p.field, p.message) for p in exc.problems]


def dumps(record: dict[str, Any]) -> bytes:
    """stdlib json: it writes integers past 64 bits and ``Infinity``, which must be handled."""
    return json.dumps(record, default=datetime.isoformat).encode()


MUTATIONS: dict[str, list[Any]] = {
    "execution_name": ["", " ", " padded ", "x" * 300, "x" * 301, 5, None, "tab\tinside"],
    "deployment_type": ["Update", "hot-fix", "hot fix", "", "_x", "x" * 64, "x" * 65, 1, None],
    "target_environment": ["Production", " production", "prod.eu", "prod/eu", None],
    "source_environment": [None, "Staging", "", "staging"],
    "gateway_host": [
        "PROD-gw.local",
        " prod-gw ",
        "prod_gw",
        "[::1]",
        "gw-",
        "-gw",
        "a" * 253,
        "a" * 254,
        "",
    ],
    "deployment_strategy": ["Blue-Green", "blue green", "blue_green", "canary"],
    "resources_deployed": [
        "project",
        [],
        ["Project"],
        ["project", "project"],
        ["b", "a"],
        ["p"] * 64,
        ["p"] * 65,
        [1],
        None,
        "project;database",
    ],
    "configuration_used": [
        {},
        None,
        "backup=true",
        [1],
        {"n": 2**64},
        {"n": 2**64 - 1},
        {"n": -(2**63) - 1},
        {"x": 1e308},
        {"nested": {"a": [1, {"b": None}]}},
        {"blob": "x" * 70_000},
        {"api_token": "secret", "Validation-Timeout": "300"},
    ],
    "status": ["Completed", "done", "rolled_back", "in_progress", "cancelled", "COMPLETED", 1],
    "started_at": [
        "2025-03-01T08:00:00",
        "2025-03-01T08:00:00Z",
        "2025-03-01t08:00:00z",
        "2025-03-01 08:00:00+00:00",
        "2025-03-01T08:00:00.1234567+00:00",
        "2025-03-01T08:00:00.9999995Z",
        "2025-03-01T08:00:00.123+01:00",
        "2025-03-01T08:00+00:00",
        "2025-03-01T08:00:00+0100",
        "2025-02-30T08:00:00Z",
        "2025-03-01",
        1740816000,
        "1999-12-31T23:59:59Z",
        "2199-01-01T00:00:00Z",
        None,
    ],
    "completed_at": [
        None,
        "2025-03-01T07:00:00+00:00",
        "2025-04-15T08:00:00+00:00",
        "2025-03-01T09:00:00+01:00",
        "2025-03-01T08:15:00",
        "2025-03-01T08:15:00.0000001Z",
    ],
    "failure_reasons": [[], "timeout", ["x" * 4000], ["x" * 4001], ["r"] * 51, [None], None],
    "rollback_triggered": [True, False, "true", 1, 0, None],
    "rollback_successful": [True, False, None, "yes"],
    "user_id": [None, "", " alice ", "a" * 200, "a" * 201, 7],
    "automation_triggered": [True, "false", 1, None],
    "execution_log": [None, "", "password=hunter2 in log", 5],
    "performance_data": [{}, None, {"cpu": float("inf")}, {"n": 2**70}],
    "lessons_learned": [[], "one lesson", ["a"] * 51],
    "execution_id": [None, "", "bad id", "ok:id-1.2", "x" * 128, "x" * 129, "-x", 12],
}


def cases() -> list[dict[str, Any]]:
    base = make_record(3)
    out = [base]
    for field, options in MUTATIONS.items():
        for option in options:
            out.append({**base, field: option})
        missing = dict(base)
        missing.pop(field)
        out.append(missing)
    out.append({**base, "unknown_field": 1})
    rng = random.Random(7)
    fields = list(MUTATIONS)
    for _ in range(400):  # pairs of mutations, where cross-field rules bite
        record = dict(base)
        for field in rng.sample(fields, 2):
            record[field] = rng.choice(MUTATIONS[field])
        out.append(record)
    return out


@pytest.mark.parametrize("record", cases())
def test_screen_accepts_only_what_pydantic_accepts_identically(record: dict[str, Any]) -> None:
    raw = dumps(record)
    expected_json, expected_mapping = slow(raw), slow(record)
    for screened, expected in (
        (screen_json(raw), expected_json),
        (screen_mapping(record), expected_mapping),
    ):
        if screened is not None:
            assert isinstance(expected, dict), expected
            assert values(screened) == expected
    for data, expected in ((raw, expected_json), (record, expected_mapping)):
        try:
            got: Any = values(validate_execution(data))
        except InvalidRecordError as exc:
            got = [(p.field, p.message) for p in exc.problems]
        assert got == expected


def test_clean_input_takes_the_fast_path() -> None:
    """Demo histories, exports and seed-style calls are canonical: the screen takes them all."""
    records = next(iter(demo_records(2_000, seed=3)))
    lines = [dumps(r) for r in records]
    assert all(screen_json(line) is not None for line in lines)
    assert all(screen_mapping(r) is not None for r in records)
    for line, record in zip(lines[:200], records[:200], strict=True):
        assert values(screen_json(line)) == slow(record)


def test_aware_datetimes_from_python_are_screened() -> None:
    start = datetime(2025, 3, 1, 9, 0, tzinfo=UTC) + timedelta(hours=1)
    record = make_record(started_at=start, completed_at=start + timedelta(minutes=5))
    screened = screen_mapping(record)
    assert screened is not None
    assert values(screened) == slow(record)
    naive = make_record(started_at=start.replace(tzinfo=None), completed_at=None)
    assert screen_mapping(naive) is None


def test_pandas_timestamps_become_plain_datetimes() -> None:
    """Records built from a DataFrame carry ``pandas.Timestamp``; both paths store plain UTC
    datetimes, and the content hash equals that of the same record written as ISO text."""
    import pandas as pd

    from deploylearn.domain.prepared import prepare

    text = make_record(4)
    stamped = {
        **text,
        "started_at": pd.Timestamp(text["started_at"]).tz_convert("Europe/Berlin"),
        "completed_at": pd.Timestamp(text["completed_at"]),
    }
    for record in (screen_mapping(stamped), parse_execution(stamped)):
        assert record is not None
        assert type(record.started_at) is datetime and type(record.completed_at) is datetime
        assert prepare(record).content_hash == prepare(parse_execution(text)).content_hash


def test_csv_rows_take_the_fast_path_and_other_spellings_still_parse(tmp_path: Path) -> None:
    """CSV booleans written as true/false become booleans (so the screen takes the row);
    other spellings pydantic accepts (yes, 1, TRUE) still arrive as text and are parsed."""
    from deploylearn.ingest.formats import read_rows, write_records

    records = [make_record(i) for i in range(3)]
    path = tmp_path / "history.csv"
    write_records(path, [records], "csv")
    text = path.read_text()
    path.write_text(text.replace(",true,", ",yes,", 1))  # one row spelled differently
    rows = [raw for _, raw in read_rows(path)]
    screened = [screen_mapping(dict(raw)) is not None for raw in rows]
    assert screened == [False, True, True]
    parsed = [validate_execution(dict(raw)) for raw in rows]
    assert [r.automation_triggered for r in parsed] == [True, True, True]
    assert [values(r) for r in parsed] == [slow(r) for r in records]


def test_an_upper_case_gateway_host_is_accepted_and_stored_lowered() -> None:
    """Hosts are case-insensitive; the pattern was once checked before lower-casing, which
    refused ``GW1.Plant.local`` (found by the events work of issue 15)."""
    from tests.conftest import make_record

    record = validate_execution(make_record(1, gateway_host="GW1.Plant.local"))
    assert record.gateway_host == "gw1.plant.local"
    with pytest.raises(InvalidRecordError, match="gateway_host"):
        validate_execution(make_record(1, gateway_host="bad host!"))
