"""Import/export formats: JSON Lines (default), a JSON array, and CSV.

Every format carries the seed's ``record_deployment_execution`` keywords plus ``execution_id``.
Readers yield ``(line_number, raw_record)`` or ``(line_number, error)`` so one bad line never
costs the good ones: bytes that are not UTF-8, a broken JSON array element or a truncated file
cost only the records they touch (docs/design.md, "Interchange"). JSON Lines rows and JSON
array elements stay undecoded bytes: the fast screen decodes and validates them in one step
(see ``screen``). CSV keeps ``resources_deployed`` ``;``-separated and JSON in the
``configuration_used`` / ``performance_data`` columns, lists of text as JSON arrays. All JSON
is read by ``strict_json`` (duplicate keys are errors), and a leading UTF-8 BOM is ignored.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

import msgspec
import orjson

from deploylearn.domain import strict_json
from deploylearn.domain.execution_schema import EXPORT_FIELDS, Kind, names
from deploylearn.domain.records import DeploymentExecution, split_resources
from deploylearn.errors import FieldProblem, InputFileError, InvalidRecordError, OutputFileError

Format = Literal["jsonl", "json", "csv"]
# The import/export fields in their order: the CSV header and every exported record's keys.
FIELD_ORDER: tuple[str, ...] = EXPORT_FIELDS
_JSON_COLUMNS = names(kind=Kind.JSON, exported=True)
# lists of text as JSON arrays; resources_deployed (slugs) is ``;``-separated instead
_TEXT_LIST_COLUMNS = tuple(
    name for name in names(kind=Kind.TEXTS, exported=True) if name != "resources_deployed"
)
_BOOL_COLUMNS = names(kind=Kind.FLAG, exported=True)
# a CSV without one of these columns cannot hold a valid row: one error for the file
REQUIRED_COLUMNS = tuple(
    name for name, spec in DeploymentExecution.model_fields.items() if spec.is_required()
)

Row = tuple[int, dict[str, Any] | bytes | InvalidRecordError]
BOM = b"\xef\xbb\xbf"
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def detect_format(path: Path) -> Format:
    """By extension; a ``.json`` file that does not start with ``[`` is read as JSON Lines."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        with path.open("rb") as handle:
            head = handle.read(4096).removeprefix(BOM).lstrip()
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


def _read_jsonl(path: Path) -> Iterator[Row]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(BOM)
            if raw.strip():
                yield number, raw


def _read_json_array(path: Path) -> Iterator[Row]:
    """Each element as bytes with its line. A valid array is split by ``msgspec`` in one
    pass; anything else (invalid JSON or UTF-8 anywhere) is read element by element."""
    data = path.read_bytes().removeprefix(BOM)
    try:
        elements = msgspec.json.decode(data, type=list[msgspec.Raw])
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        yield from _read_json_array_slowly(path, data)
        return
    position, line = 0, 1
    for element in elements:
        raw = bytes(element)
        start = data.find(raw, position)
        line += data.count(b"\n", position, start)
        if raw.startswith(b"{"):
            yield line, raw
        else:
            yield _bad(line, "record", "must be a JSON object")
        line += raw.count(b"\n")
        position = start + len(raw)


def _read_json_array_slowly(path: Path, data: bytes) -> Iterator[Row]:
    """Element by element with Python's ``json``: a broken element is reported at its line
    and reading resumes on a later line (``_next_element``), so the valid elements before and
    after it are kept."""
    text = data.decode("utf-8", errors="surrogateescape")
    start = len(text) - len(text.lstrip())
    if not text.startswith("[", start):
        yield _bad(1, "record", "not a JSON array (expected '[')")
        return
    position = start + 1
    line = 1 + text.count("\n", 0, position)
    while True:
        skipped = _skip_separators(text, position)
        line += text.count("\n", position, skipped)
        position = skipped
        if position >= len(text):
            yield _bad(line, "record", "the JSON array is not closed (a truncated file?)")
            return
        if text[position] == "]":
            if not text[position + 1 :].strip():
                return
            yield _bad(line, "record", "not valid JSON (a ']' before the end of the array)")
            resume = _next_element(text, position)
            line += text.count("\n", position, resume)
            position = resume
            continue
        try:
            value, end = strict_json.raw_decode(text, position)
        except strict_json.JsonTextError as exc:
            yield _bad(line, exc.path or "record", str(exc))
            resume = _next_element(text, position)
            if resume == len(text):  # the array ends inside the broken element
                return
            line += text.count("\n", position, resume)
            position = resume
            continue
        element = text[position:end]
        if not isinstance(value, dict):
            yield _bad(line, "record", "must be a JSON object")
        elif _NOT_UTF8.search(element):
            yield _bad(line, "record", "not UTF-8 text")
        else:
            yield line, value
        line += element.count("\n")
        position = end


def _skip_separators(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n,":
        position += 1
    return position


def _next_element(text: str, position: int) -> int:
    """Where reading resumes after the broken element at ``position``: the next line that is
    not blank, and, when elements are indented (pretty-printed, several lines each), that is
    indented no deeper than the broken one and is not its lone closing brace."""
    line_start = text.rfind("\n", 0, position) + 1
    indent = position - line_start
    start = text.find("\n", position)
    while start != -1:
        start += 1
        end = text.find("\n", start)
        line = text[start:] if end == -1 else text[start:end]
        content = line.lstrip(" \t")
        if content.strip() and (
            indent == 0 or (len(line) - len(content) <= indent and content.rstrip(" \t\r,") != "}")
        ):
            return start + len(line) - len(content)
        start = end
    return len(text)


def _read_csv(path: Path) -> Iterator[Row]:
    # surrogateescape: bytes that are not UTF-8 cost their row, not the file (see _row)
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, [])
        except csv.Error as exc:
            raise InputFileError(f"{path}: line 1: not a CSV header ({exc})") from None
        _check_header(path, header)
        start = 2
        while True:
            number = start
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                start = reader.line_num + 1
                yield _bad(number, "record", f"not a readable CSV row ({exc})")
                continue
            start = reader.line_num + 1
            if cells:
                yield _row(number, header, cells)


def _check_header(path: Path, header: list[str]) -> None:
    if _NOT_UTF8.search(",".join(header)):
        raise InputFileError(f"{path}: line 1: the header is not UTF-8 text")
    unknown = [c for c in header if c not in FIELD_ORDER]
    if unknown:
        raise InputFileError(
            f"{path}: line 1: unknown column(s) {', '.join(unknown)}; "
            f"known: {', '.join(FIELD_ORDER)}"
        )
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise InputFileError(f"{path}: line 1: column(s) {', '.join(repeated)} appear twice")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing and header:
        raise InputFileError(f"{path}: line 1: missing required column(s) {', '.join(missing)}")


def _row(number: int, header: list[str], cells: list[str]) -> Row:
    record: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    if len(cells) > len(header):
        problems.append(FieldProblem("record", "more cells than columns", number))
    for key, cell in zip(header, cells, strict=False):
        if cell == "":
            continue
        if not cell.isascii() and _NOT_UTF8.search(cell):
            problems.append(FieldProblem(key, "not UTF-8 text", number))
            continue
        try:
            record[key] = _cell(key, cell)
        except strict_json.JsonTextError as exc:
            field = f"{key}.{exc.path}" if exc.path else key
            problems.append(FieldProblem(field, str(exc), number))
    return (number, InvalidRecordError(problems)) if problems else (number, record)


def _cell(key: str, cell: str) -> Any:
    if key in _BOOL_COLUMNS and cell in ("true", "false"):
        # as written by write_records; other spellings stay text for pydantic to judge. Real
        # booleans let the fast screen take CSV rows (100k demo rows: 12.9k -> 15.2k/s).
        return cell == "true"
    if key == "resources_deployed":
        return split_resources(cell)
    if key in _JSON_COLUMNS:
        return strict_json.loads(cell)
    if key in _TEXT_LIST_COLUMNS:
        if cell.lstrip().startswith("["):
            return strict_json.loads(cell)
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
    chosen = fmt or known
    if chosen is None:
        raise OutputFileError(
            f"{path}: unknown extension {path.suffix or '(none)'!r}; write "
            f"{', '.join(EXPORT_SUFFIXES)} (or name one with --format)"
        )
    return chosen


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


def write_records_to(
    handle: IO[bytes], batches: Iterable[list[dict[str, Any]]], fmt: Format
) -> int:
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
    "read_rows",
    "write_records",
    "write_records_to",
]
