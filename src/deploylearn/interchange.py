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
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

from deploylearn.errors import FieldProblem, InputFileError, InvalidRecordError, OutputFileError

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
        raise InputFileError(f"{path}: no such file")
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


# What ``export`` writes, by file extension (``-`` is standard output, JSON Lines).
EXPORT_SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
}


def export_format(path: Path, fmt: Format | None) -> Format:
    """The format to write ``path`` in: ``fmt``, or its extension's; an unknown extension
    without ``fmt``, or one that names another format, is ``OutputFileError``."""
    known = EXPORT_SUFFIXES.get(path.suffix.lower())
    if fmt is not None and known is not None and known != fmt:
        raise OutputFileError(f"{path}: the extension says {known}, --format says {fmt}")
    if fmt is None and known is None:
        raise OutputFileError(
            f"{path}: unknown extension {path.suffix or '(none)'!r}; write "
            f"{', '.join(EXPORT_SUFFIXES)} (or name one with --format)"
        )
    return fmt or known  # type: ignore[return-value]


def write_records(
    path: Path,
    batches: Iterable[list[dict[str, Any]]],
    fmt: Format,
    *,
    overwrite: bool = True,
) -> int:
    """Write records in the import shape; returns how many were written.

    Atomic: the records go to a temporary file in the same directory, synced, then renamed
    over ``path``, so an interrupted write leaves no partial file under that name. With
    ``overwrite=False`` an existing ``path`` is ``OutputFileError`` (checked again at the
    rename, so a file created meanwhile is not replaced either).
    """
    if not overwrite and path.exists():
        raise OutputFileError(f"{path} exists; use --force to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, renamed)
            dir=path.parent, prefix=f".{path.name}.", suffix=".partial", delete=False
        )
    except OSError as exc:
        raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    temporary = Path(handle.name)
    try:
        with handle:
            count = write_records_to(handle, batches, fmt)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        if overwrite:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if path appeared meanwhile
    except FileExistsError:
        raise OutputFileError(f"{path} exists; use --force to replace it") from None
    except OSError as exc:
        raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)
    return count


def write_records_to(handle: BinaryIO, batches: Iterable[list[dict[str, Any]]], fmt: Format) -> int:
    """Write records to an open binary stream (a file, or standard output)."""
    count = 0
    if fmt == "csv":
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=True)
        writer = csv.DictWriter(text, fieldnames=list(FIELD_ORDER))
        writer.writeheader()
        for batch in batches:
            for record in batch:
                writer.writerow(_csv_row(record))
                count += 1
        text.flush()
        text.detach()  # leave ``handle`` open for the caller
        return count
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


def _umask() -> int:
    """The process umask (temporary files are created 0600; an export should not be)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    "EXPORT_SUFFIXES",
    "FIELD_ORDER",
    "Format",
    "detect_format",
    "export_format",
    "load_json_object",
    "read_rows",
    "write_records",
    "write_records_to",
]
