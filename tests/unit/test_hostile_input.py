"""Input that must never abort an ingest or lose the good lines (issue 11, items 4 and 5).

Each test writes a real file, ingests it into a real DuckDB store and checks what was kept
and what was reported, with its line and field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.errors import InputFileError, InvalidRecordError
from deploylearn.ingest import workers as ingest_workers
from deploylearn.ingest.formats import write_records

from ..conftest import make_record
from .test_cli import ign, one_line_error

GIANT = 123456789012345678901234567890


def _deep(levels: int) -> str:
    return '{"k": ' * levels + "1" + "}" * levels


def _ids(learner: DeploymentPatternLearner) -> list[str]:
    return sorted(r["execution_id"] for batch in learner.store.iter_executions() for r in batch)


def _errors(report: Any) -> list[tuple[int | None, str]]:
    return sorted((e.line, e.field) for e in report.errors)


def _jsonl(path: Path, lines: list[bytes | str]) -> Path:
    path.write_bytes(b"".join((x.encode() if isinstance(x, str) else x) + b"\n" for x in lines))
    return path


def _with_config(i: int, config_json: str, field: str = "configuration_used") -> str:
    """A valid record's JSON with ``field`` replaced by raw JSON text."""
    record = make_record(i)
    record[field] = "@@"
    return json.dumps(record).replace('"@@"', config_json)


# -- item 4: deep nesting, giant integers ------------------------------------------------------
def test_deep_nesting_is_one_rejected_line_not_a_crash(duckdb_url: str, tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "deep.jsonl",
        [
            json.dumps(make_record(1)),
            _with_config(2, _deep(1000)),
            _with_config(3, _deep(40)),
            _with_config(4, _deep(30)),  # within the limit of 32 levels
        ],
    )
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        report = learner.ingest(path)
        assert _ids(learner) == ["t-000001", "t-000004"]
    (line_2, field_2), (line_3, field_3) = _errors(report)
    assert (line_2, field_2, line_3) == (2, "configuration_used", 3)
    assert field_3.startswith("configuration_used.k.k.k.") and field_3.endswith("…")
    assert all("nested more than 32 levels" in e.message for e in report.errors)


def test_giant_integers_are_rejected_with_the_field_and_floats_kept(
    duckdb_url: str, tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "giant.jsonl",
        [
            _with_config(1, '{"validation_timeout": 1e20, "count": 9223372036854775807}'),
            _with_config(2, f'{{"validation_timeout": {GIANT}}}'),
            _with_config(3, '{"cpu_percent": 18446744073709551615}', "performance_data"),
            _with_config(4, '{"timeout": "1e20"}'),  # a numeric string: a float in the template
        ],
    )
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        report = learner.ingest(path)
        assert _ids(learner) == ["t-000001", "t-000004"]
        stored = {r["execution_id"]: r for b in learner.store.iter_executions() for r in b}
        assert stored["t-000001"]["configuration_used"]["validation_timeout"] == 1e20
        assert stored["t-000001"]["configuration_used"]["count"] == 2**63 - 1
        templates = [p.configuration_template for p in learner.store.patterns()]
        assert {"count": 2**63 - 1, "validation_timeout": 1e20} in templates
    assert _errors(report) == [
        (2, "configuration_used.validation_timeout"),
        (3, "performance_data.cpu_percent"),
    ]
    assert all("does not fit in 64 bits" in e.message for e in report.errors)


def test_giant_integers_through_the_python_api(duckdb_url: str) -> None:
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        learner.record_deployment_execution(**make_record(1, configuration_used={"x": 1e20}))
        with pytest.raises(InvalidRecordError, match=r"configuration_used\.x: integer"):
            learner.record_deployment_execution(**make_record(2, configuration_used={"x": 2**64}))
        with pytest.raises(InvalidRecordError, match=r"performance_data\.x: NaN"):
            learner.record_deployment_execution(
                **make_record(3, performance_data={"x": float("nan")})
            )
        assert _ids(learner) == ["t-000001"]


def test_cli_record_with_a_giant_integer_or_deep_config(duckdb_url: str) -> None:
    base = ["deploy", "record", "-n", "x", "-e", "production", "-g", "gw-1", "-s", "rolling"]
    base += ["-r", "project", "--started-at", "2025-01-01T00:00:00Z"]
    ok = ign(*base, "-c", '{"validation_timeout": 1e20}', store=duckdb_url)
    assert ok.returncode == 0, ok.stderr
    giant = ign(*base, "-c", f'{{"validation_timeout": {GIANT}}}', store=duckdb_url)
    assert giant.returncode == 2
    assert "configuration_used.validation_timeout: integer" in one_line_error(giant)
    deep = ign(*base, "-c", _deep(1000), store=duckdb_url)
    assert deep.returncode == 2
    assert "nested more than 32 levels" in one_line_error(deep)
    twice = ign(*base, "-c", '{"a": 1, "a": 2}', store=duckdb_url)
    assert twice.returncode == 2
    assert "a: appears more than once" in one_line_error(twice)


@pytest.mark.skipif(not ingest_workers.can_fork(), reason="workers are forked")
@pytest.mark.parametrize("workers", [1, 2])
def test_one_giant_integer_in_the_middle_costs_one_line(
    duckdb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Issue 11: a giant integer at line 12,001 of 25,001 kept only 10,000 executions; at a
    tenth of the size, with chunks and batches a tenth as large."""
    monkeypatch.setattr(ingest_workers, "CHUNK_ROWS", 1_000)
    lines = [json.dumps(make_record(i)) for i in range(2_501)]
    lines[1_200] = _with_config(1_200, f'{{"validation_timeout": {GIANT}}}')
    path = _jsonl(tmp_path / "history.jsonl", lines)
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        report = learner.ingest(path, workers=workers, batch_size=1_000)
        assert (report.accepted, report.rejected) == (2_500, 1)
        assert _errors(report) == [(1_201, "configuration_used.validation_timeout")]
        again = learner.ingest(path, workers=workers, batch_size=1_000)
        assert (again.accepted, again.duplicates, again.rejected) == (0, 2_500, 1)
        assert learner.store.stats().executions == 2_500


# -- item 5: encodings, BOMs, broken arrays, NaN, duplicate keys --------------------------------
def _csv_file(path: Path, records: list[dict[str, Any]]) -> Path:
    write_records(path, [records], "csv")
    return path


def test_latin1_csv_costs_only_its_rows(duckdb_url: str, tmp_path: Path) -> None:
    path = _csv_file(tmp_path / "h.csv", [make_record(i) for i in range(6)])
    lines = path.read_bytes().split(b"\n")
    # records 2 and 4 (the log spans two lines: a record is two lines, from line 2)
    assert lines[5].startswith(b"t-000002")
    lines[5] = lines[5].replace(b"Production HMI Update 2", "Caf\u00e9 Update 2".encode("latin-1"))
    lines[9] = lines[9].replace(b"alice.ops", "j\u00f6rg".encode("latin-1"))
    path.write_bytes(b"\n".join(lines))
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        report = learner.ingest(path)
        assert _ids(learner) == ["t-000000", "t-000001", "t-000003", "t-000005"]
    assert _errors(report) == [(6, "execution_name"), (10, "user_id")]
    assert all(e.message == "not UTF-8 text" for e in report.errors)


def test_utf8_bom_is_ignored_in_every_format(duckdb_url: str, tmp_path: Path) -> None:
    records = [make_record(i) for i in range(3)]
    files = []
    for fmt in ("csv", "json", "jsonl"):
        path = tmp_path / f"bom-{fmt}.{'json' if fmt == 'json' else fmt}"
        write_records(path, [records], fmt)  # type: ignore[arg-type]
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        files.append(path)
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        first = learner.ingest(files[0])
        assert (first.accepted, first.rejected) == (3, 0)
        for path in files[1:]:
            report = learner.ingest(path)
            assert (report.duplicates, report.rejected) == (3, 0), report.errors


def test_json_array_with_a_syntax_error_keeps_the_elements_around_it(
    duckdb_url: str, tmp_path: Path
) -> None:
    """Element 11 (line 12) is broken: the 10 before and the 5 after are kept."""
    elements = [json.dumps(make_record(i)) for i in range(16)]
    elements[10] = elements[10].replace('"status": "completed",', '"status": "completed" oops,')
    path = tmp_path / "broken.json"
    path.write_text("[\n" + ",\n".join(elements) + "\n]\n")
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        report = learner.ingest(path)
        assert _ids(learner) == [f"t-{i:06d}" for i in range(16) if i != 10]
    assert _errors(report) == [(12, "record")]
    assert "not valid JSON" in report.errors[0].message


def test_pretty_printed_json_array_recovers_after_an_unclosed_string(
    duckdb_url: str, tmp_path: Path
) -> None:
    text = json.dumps([make_record(i) for i in range(5)], indent=2)
    broken = text.replace('"Production HMI Update 2"', '"Production HMI Update 2', 1)
    path = tmp_path / "pretty.json"
    path.write_text(broken)
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        report = learner.ingest(path)
        assert _ids(learner) == ["t-000000", "t-000001", "t-000003", "t-000004"]
    element_line = 1 + text[: text.index('"t-000002"')].count("\n")  # its execution_id line
    assert report.rejected == 1
    assert report.errors[0].line == element_line - 1  # the line of its opening brace


def test_truncated_json_array_keeps_what_came_before(duckdb_url: str, tmp_path: Path) -> None:
    elements = [json.dumps(make_record(i)) for i in range(5)]
    text = "[\n" + ",\n".join(elements)
    path = tmp_path / "truncated.json"
    path.write_text(text[: len(text) - 40])
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        report = learner.ingest(path)
        assert _ids(learner) == ["t-000000", "t-000001", "t-000002", "t-000003"]
    assert _errors(report) == [(6, "record")]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected_with_the_field_in_every_format(
    duckdb_url: str, tmp_path: Path, literal: str
) -> None:
    bad = _with_config(1, f'{{"cpu_percent": {literal}}}', "performance_data")
    good = json.dumps(make_record(0))
    jsonl = _jsonl(tmp_path / "nan.jsonl", [good, bad])
    array = tmp_path / "nan.json"
    array.write_text(f"[\n{good},\n{bad}\n]\n")
    csv_path = _csv_file(tmp_path / "nan.csv", [make_record(0), make_record(1)])
    text = csv_path.read_text()
    csv_path.write_text(text.replace('""cpu_percent"":35.5', f'""cpu_percent"":{literal}', 2))
    assert csv_path.read_text().count(literal) == 2
    for path in (jsonl, array, csv_path):
        with DeploymentPatternLearner.open(f"duckdb://{tmp_path / path.stem}.duckdb") as learner:
            report = learner.ingest(path)
            assert (report.accepted, report.rejected) == (0, 2) if path is csv_path else (1, 1)
        fields = {e.field for e in report.errors}
        assert fields == {"performance_data.cpu_percent"}, (path, report.errors)
        assert all(literal.lstrip("-") in e.message for e in report.errors)


def test_duplicate_keys_are_rejected_naming_key_and_line_in_every_format(
    duckdb_url: str, tmp_path: Path
) -> None:
    top = json.dumps(make_record(1)).replace(
        '"status": "completed"', '"status": "completed", "status": "failed"'
    )
    nested = _with_config(2, '{"validation_timeout": 300, "validation_timeout": 600}')
    lines = [json.dumps(make_record(0)), top, nested, json.dumps(make_record(3))]
    jsonl = _jsonl(tmp_path / "dup.jsonl", lines)
    array = tmp_path / "dup.json"
    array.write_text("[\n" + ",\n".join(lines) + "\n]\n")
    for path, first in ((jsonl, 1), (array, 2)):  # the array's first element is on line 2
        with DeploymentPatternLearner.open(f"duckdb://{tmp_path / path.stem}.duckdb") as learner:
            report = learner.ingest(path)
            assert _ids(learner) == ["t-000000", "t-000003"]
        expected = [(first + 1, "status"), (first + 2, "configuration_used.validation_timeout")]
        assert _errors(report) == expected, path
        assert all("appears more than once" in e.message for e in report.errors)


def test_duplicate_keys_in_a_csv_cell_and_duplicate_columns(
    duckdb_url: str, tmp_path: Path
) -> None:
    path = _csv_file(tmp_path / "dup.csv", [make_record(0), make_record(1)])
    text = path.read_text()
    path.write_text(text.replace('""backup_enabled"":true', '""a"":1,""a"":2', 1))
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        report = learner.ingest(path)
        assert _ids(learner) == ["t-000001"]
    assert _errors(report) == [(2, "configuration_used.a")]
    header, rest = text.split("\n", 1)
    twice = tmp_path / "twice.csv"
    twice.write_text(header.replace("status", "user_id") + "\n" + rest)
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        with pytest.raises(InputFileError, match=r"line 1: column\(s\) user_id appear twice"):
            learner.ingest(twice)
        assert learner.store.stats().executions == 1


def test_duplicate_key_hidden_behind_colons_is_still_found(duckdb_url: str, tmp_path: Path) -> None:
    """The fast screen counts colons; one spelled ``\\u003a`` must not hide a duplicate."""
    sneaky = _with_config(1, '{"a": "x\\u003ay", "b": 1, "b": 2}')
    path = _jsonl(tmp_path / "sneaky.jsonl", [sneaky, _with_config(2, '{"a": "x\\u003ay"}')])
    with DeploymentPatternLearner.open(duckdb_url) as learner:
        report = learner.ingest(path)
        assert _ids(learner) == ["t-000002"]
        stored = next(iter(learner.store.iter_executions()))[0]
        assert stored["configuration_used"] == {"a": "x:y"}
    assert _errors(report) == [(1, "configuration_used.b")]


def test_records_from_python_keep_their_shape_rules(tmp_path: Path) -> None:
    """The same rules hold for ``record_executions`` (mappings, no JSON text)."""
    records = [
        make_record(0),
        make_record(1, configuration_used={"x": {"y": [1, 2, {"z": 2**70}]}}),
        make_record(2, configuration_used={"x": float("inf")}),
    ]
    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 's.duckdb'}") as learner:
        report = learner.record_executions(records)
    assert _errors(report) == [(2, "configuration_used.x.y[2].z"), (3, "configuration_used.x")]
    assert orjson.loads(orjson.dumps(report.as_dict()))["accepted"] == 1
