"""Import/export formats: JSON Lines (default), a JSON array, and CSV.

Every format carries the seed's ``record_deployment_execution`` keywords plus ``execution_id``.
Readers yield ``(line_number, raw_record)`` or ``(line_number, error)`` so one bad line never
costs the good ones. JSON Lines rows stay undecoded bytes: the fast screen decodes and
validates them in one step (see ``screen``). CSV keeps ``resources_deployed`` ``;``-separated
and JSON in the ``configuration_used`` / ``performance_data`` columns, lists of text as JSON
arrays.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from deploylearn.errors import FieldProblem, InputFileError, InvalidRecordError
from deploylearn.records import DeploymentExecution

Format = Literal["jsonl", "json", "csv"]
FIELD_ORDER: tuple[str, ...] = (
    "execution_id",
    "execution_name",
    "deployment_type",
    "target_environment",
    "source_environment",
    "gateway_host",
    "deployment_strategy",
    "resources_deployed",
    "configuration_used",
    "status",
    "started_at",
    "completed_at",
    "failure_reasons",
    "rollback_triggered",
    "rollback_successful",
    "user_id",
    "automation_triggered",
    "execution_log",
    "performance_data",
    "lessons_learned",
)
_JSON_COLUMNS = ("configuration_used", "performance_data")
_TEXT_LIST_COLUMNS = ("failure_reasons", "lessons_learned")
_BOOL_COLUMNS = ("rollback_triggered", "rollback_successful", "automation_triggered")
# a CSV without one of these columns cannot hold a valid row: one error for the file
REQUIRED_COLUMNS = tuple(
    name for name, spec in DeploymentExecution.model_fields.items() if spec.is_required()
)

Row = tuple[int, dict[str, Any] | bytes | InvalidRecordError]


def detect_format(path: Path) -> Format:
    """By extension; a ``.json`` file that does not start with ``[`` is read as JSON Lines."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        with path.open("rb") as handle:
            head = handle.read(4096).lstrip()
        return "json" if head.startswith(b"[") else "jsonl"
    raise InputFileError(f"{path}: unknown file type {suffix!r} (use .jsonl, .json or .csv)")


def read_rows(path: Path, fmt: Format | None = None) -> Iterator[Row]:
    """Raw records of a file with their line numbers, or the reason a line is unreadable."""
    if not path.is_file():
        raise InputFileError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}")
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        return _read_jsonl(path)
    if fmt == "json":
        return _read_json_array(path)
    return _read_csv(path)


def _bad(line: int, field: str, message: str) -> Row:
    return line, InvalidRecordError([FieldProblem(field, message, line)])


def load_json_object(raw: bytes) -> dict[str, Any]:
    """One JSON Lines line as a mapping, or ``InvalidRecordError`` saying why it is not one."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecordError([FieldProblem("record", f"not valid JSON ({exc})")]) from None
    if not isinstance(value, dict):
        raise InvalidRecordError([FieldProblem("record", "must be a JSON object")])
    return value


def _read_jsonl(path: Path) -> Iterator[Row]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield number, raw


def _read_json_array(path: Path) -> Iterator[Row]:
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    position = text.index("[") + 1
    line = 1 + text.count("\n", 0, position)
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            if text[position] == "\n":
                line += 1
            position += 1
        if position >= len(text):
            raise InputFileError(f"{path}: JSON array is not closed")
        if text[position] == "]":
            return
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise InputFileError(
                f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}); nothing after it read"
            ) from exc
        yield (
            (line, value) if isinstance(value, dict) else _bad(line, "record", "must be an object")
        )
        line += text.count("\n", position, end)
        position = end


def _read_csv(path: Path) -> Iterator[Row]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        unknown = [c for c in reader.fieldnames or [] if c not in FIELD_ORDER]
        if unknown:
            raise InputFileError(
                f"{path}: line 1: unknown column(s) {', '.join(unknown)}; "
                f"known: {', '.join(FIELD_ORDER)}"
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing and reader.fieldnames:
            raise InputFileError(f"{path}: line 1: missing required column(s) {', '.join(missing)}")
        start = 2
        for row in reader:
            number = start
            start = reader.line_num + 1
            record: dict[str, Any] = {}
            problems: list[FieldProblem] = []
            for key, cell in row.items():
                if key is None:
                    problems.append(FieldProblem("record", "more cells than columns", number))
                    continue
                if cell is None or cell == "":
                    continue
                try:
                    record[key] = _cell(key, cell)
                except ValueError as exc:
                    problems.append(FieldProblem(key, str(exc), number))
            yield (number, InvalidRecordError(problems)) if problems else (number, record)


def _cell(key: str, cell: str) -> Any:
    if key in _BOOL_COLUMNS and cell in ("true", "false"):
        # as written by write_records; other spellings stay text for pydantic to judge. Real
        # booleans let the fast screen take CSV rows (100k demo rows: 12.9k -> 15.2k/s).
        return cell == "true"
    if key == "resources_deployed":
        return [part.strip() for part in cell.split(";") if part.strip()]
    if key in _JSON_COLUMNS:
        try:
            return orjson.loads(cell)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
    if key in _TEXT_LIST_COLUMNS:
        if cell.lstrip().startswith("["):
            try:
                return orjson.loads(cell)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"not a valid JSON array ({exc})") from None
        return [part.strip() for part in cell.split(";") if part.strip()]
    return cell


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def write_records(path: Path, batches: Iterable[list[dict[str, Any]]], fmt: Format) -> int:
    """Write records in the import shape; returns how many were written."""
    count = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(FIELD_ORDER))
            writer.writeheader()
            for batch in batches:
                for record in batch:
                    writer.writerow(_csv_row(record))
                    count += 1
        return count
    with path.open("wb") as handle:
        if fmt == "json":
            handle.write(b"[\n")
        for batch in batches:
            for record in batch:
                ordered = {k: record.get(k) for k in FIELD_ORDER}
                data = orjson.dumps(ordered, default=_default)
                if fmt == "json":
                    handle.write(b",\n" if count else b"")
                handle.write(data)
                if fmt == "jsonl":
                    handle.write(b"\n")
                count += 1
        if fmt == "json":
            handle.write(b"\n]\n")
    return count


def _csv_row(record: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in FIELD_ORDER:
        value = record.get(key)
        if value is None:
            out[key] = ""
        elif key == "resources_deployed":
            out[key] = ";".join(value)
        elif key in _JSON_COLUMNS or key in _TEXT_LIST_COLUMNS:
            out[key] = orjson.dumps(value, default=_default).decode()
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = str(value)
    return out


__all__ = [
    "FIELD_ORDER",
    "Format",
    "detect_format",
    "load_json_object",
    "read_rows",
    "write_records",
]
