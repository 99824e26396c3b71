"""A seeded fuzz of ingest: thousands of valid records mixed with hostile lines, in every
format, in one process and with worker processes, on the embedded store.

Every valid record must be stored exactly once, every hostile one reported at its own line
(and nothing else reported), no exception may escape, and a second ingest adds nothing.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.demo import demo_records
from deploylearn.ingest import workers as ingest_workers
from deploylearn.ingest.formats import write_records

from ..conftest import make_record

VALID = 3_000
HOSTILE_SHARE = 0.08  # one line in ~12 is hostile
SEED = 20261202


@dataclass
class Corpus:
    """A file's content and what ingesting it must give."""

    data: bytes
    valid_ids: set[str]
    bad_lines: set[int]


def _valid_records(rng: random.Random) -> list[dict[str, Any]]:
    """Demo histories, plus valid records that take the slow path or sit at the limits."""
    records = [r for batch in demo_records(VALID, seed=rng.randrange(1000)) for r in batch]
    start = datetime(2025, 6, 1, tzinfo=UTC)
    for i in range(0, len(records), 7):  # every 7th: valid, but not in canonical spelling
        kind = (i // 7) % 5
        record = records[i]
        when = start + timedelta(minutes=i)
        if kind == 0:
            record["deployment_strategy"] = record["deployment_strategy"].replace("_", "-").title()
        elif kind == 1:
            record["configuration_used"] = {"limit": 2**63 - 1, "ratio": 1e20, "x": -(2**63)}
        elif kind == 2:
            record["execution_name"] = "Caf\u00e9 M\u00fcnster \u2013 Update"  # UTF-8 is fine
        elif kind == 3:
            record["configuration_used"] = {"a": {"b": {"c": [1, {"d": "08:00:00"}]}}}
        else:
            record["started_at"] = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
            record["completed_at"] = None
            record["status"] = "in_progress"
    return records


_GIANTS = ["123456789012345678901234567890", "18446744073709551616", "-9223372036854775809"]


def _json_hostile(rng: random.Random, n: int) -> bytes:
    """One hostile JSON object (or not an object at all), on one line."""
    text = json.dumps(make_record(900_000 + n))
    kind = rng.randrange(10)
    if kind == 0:
        depth = rng.choice([33, 200, 1_000, 5_000])
        return text.replace('"backup_enabled": true', '"n": ' + "[" * depth + "]" * depth).encode()
    if kind == 1:
        return text.replace('"validation_timeout": 300', f'"v": {rng.choice(_GIANTS)}').encode()
    if kind == 2:
        literal = rng.choice(["NaN", "Infinity", "-Infinity"])
        return text.replace('"memory_mb": 812', f'"memory_mb": {literal}').encode()
    if kind == 3:
        return text.replace(
            '"status": "completed"', '"status": "completed", "status": "x"'
        ).encode()
    if kind == 4:
        return text.replace('"rollback_threshold": 0.95', '"a": 1, "a": 2').encode()
    if kind == 5:  # latin-1, not UTF-8
        return text.replace("Production", "Caf\u00e9").encode("latin-1")
    if kind == 6:  # truncated
        data = text.encode()
        return data[: rng.randrange(1, len(data) - 1)]
    if kind == 7:  # random bytes on one line
        return _random_bytes(rng, exclude=b"\n\r")
    if kind == 8:  # a BOM in the middle of the file
        return b"\xef\xbb\xbf" + text.encode()
    return rng.choice([b"[1, 2]", b"null", b'"text"', b"42", b"{}", b"{,}"])


def _random_bytes(rng: random.Random, exclude: bytes) -> bytes:
    alphabet = bytes(b for b in range(256) if b not in exclude)
    while True:
        data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 300)))
        if data.strip() and not data.strip().startswith(b"{"):
            return data


def _interleave(
    rng: random.Random, valid: list[bytes], hostile: Callable[[int], bytes]
) -> list[tuple[bytes, bool]]:
    items = [(line, True) for line in valid]
    n = int(len(valid) * HOSTILE_SHARE)
    for i in range(n):
        items.insert(rng.randrange(len(items) + 1), (hostile(i), False))
    return items


def _jsonl_corpus(rng: random.Random, records: list[dict[str, Any]]) -> Corpus:
    items = _interleave(rng, [orjson.dumps(r) for r in records], lambda i: _json_hostile(rng, i))
    bad = {number for number, (_, ok) in enumerate(items, 1) if not ok}
    data = b"\xef\xbb\xbf" + b"\n".join(line for line, _ in items) + b"\n"
    return Corpus(data, {r["execution_id"] for r in records}, bad)


def _json_array_corpus(rng: random.Random, records: list[dict[str, Any]]) -> Corpus:
    items = _interleave(rng, [orjson.dumps(r) for r in records], lambda i: _json_hostile(rng, i))
    # elements one per line from line 2; the file is truncated after the last element
    bad = {number for number, (_, ok) in enumerate(items, 2) if not ok}
    data = b"\xef\xbb\xbf[\n" + b",\n".join(line for line, _ in items) + b"\n]\n"
    return Corpus(data, {r["execution_id"] for r in records}, bad)


def _csv_rows(records: list[dict[str, Any]], tmp: Path) -> tuple[bytes, list[bytes]]:
    """The header and each record's row as ``write_records`` writes them (a row may span
    lines: logs have line breaks)."""
    path = tmp / "valid.csv"
    write_records(path, [records], "csv")
    lines = path.read_bytes().splitlines(keepends=True)
    reader = csv.reader(line.decode() for line in lines)
    next(reader)
    rows, done = [], 1
    for _ in reader:
        rows.append(b"".join(lines[done : reader.line_num]))
        done = reader.line_num
    return lines[0], rows


def _csv_hostile(rng: random.Random, n: int, template: dict[str, str]) -> bytes:
    cells = dict(template, execution_id=f"bad-{n}")
    kind = rng.randrange(8)
    if kind == 0:
        depth = rng.choice([33, 1_000, 5_000])
        cells["configuration_used"] = '{"n": ' + "[" * depth + "]" * depth + "}"
    elif kind == 1:
        cells["configuration_used"] = f'{{"v": {rng.choice(_GIANTS)}}}'
    elif kind == 2:
        cells["performance_data"] = f'{{"cpu": {rng.choice(["NaN", "Infinity", "-Infinity"])}}}'
    elif kind == 3:
        cells["configuration_used"] = '{"a": 1, "a": 2}'
    elif kind == 4:
        cells["configuration_used"] = cells["configuration_used"][:-3]  # truncated JSON
    elif kind == 6:  # a cut row: the required cells after the first few are missing
        return ",".join(list(cells.values())[: rng.randrange(1, 7)]).encode() + b"\r\n"
    elif kind == 7:  # random bytes without quotes or line breaks: one row, however odd
        return _random_bytes(rng, exclude=b'"\r\n') + b"\r\n"
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells.values())
    text = buffer.getvalue()
    if kind == 5:  # more cells than columns
        text = text.rstrip("\r\n") + ",extra\r\n"
    if rng.random() < 0.3:  # and sometimes latin-1 as well
        return text.replace("Production", "Caf\u00e9").encode("latin-1")
    return text.encode()


def _csv_corpus(rng: random.Random, records: list[dict[str, Any]], tmp: Path) -> Corpus:
    header, valid = _csv_rows(records, tmp)
    hostile = make_record(0, execution_log="one line")
    write_records(tmp / "hostile.csv", [[hostile]], "csv")
    template = next(csv.DictReader(io.StringIO((tmp / "hostile.csv").read_text())))
    items = _interleave(rng, valid, lambda i: _csv_hostile(rng, i, template))
    data, line, bad = b"\xef\xbb\xbf" + header, 2, set()
    for row, ok in items:
        if not ok:
            bad.add(line)
        data += row
        line += row.count(b"\n")
    return Corpus(data, {r["execution_id"] for r in records}, bad)


def _ids(learner: DeploymentPatternLearner) -> list[str]:
    return [r["execution_id"] for batch in learner.store.iter_executions() for r in batch]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_valid_records_survive_hostile_ones(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    fmt: str,
    workers: int,
) -> None:
    if workers > 1 and not ingest_workers.can_fork():
        pytest.skip("workers are forked")
    monkeypatch.setattr(ingest_workers, "CHUNK_ROWS", 700)  # several chunks in flight
    rng = random.Random(f"{SEED}-{fmt}")
    records = _valid_records(rng)
    if fmt == "jsonl":
        corpus = _jsonl_corpus(rng, records)
    elif fmt == "json":
        corpus = _json_array_corpus(rng, records)
    else:
        corpus = _csv_corpus(rng, records, tmp_path)
    path = tmp_path / f"history.{fmt}"
    path.write_bytes(corpus.data)
    assert len(corpus.bad_lines) > 200

    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'store.duckdb'}") as learner:
        report = learner.ingest(path, workers=workers, batch_size=1_000)
        stored = _ids(learner)
        again = learner.ingest(path, workers=workers, batch_size=1_000)
        assert learner.store.stats().executions == len(corpus.valid_ids)

    assert len(stored) == len(set(stored)) == len(corpus.valid_ids)
    assert set(stored) == corpus.valid_ids
    assert report.accepted == len(corpus.valid_ids)
    error_lines = {e.line for e in report.errors}
    assert error_lines == corpus.bad_lines, (
        sorted(error_lines - corpus.bad_lines)[:5],
        sorted(corpus.bad_lines - error_lines)[:5],
    )
    assert all(e.field and e.message for e in report.errors)
    assert (again.accepted, again.duplicates) == (0, len(corpus.valid_ids))
    assert {e.line for e in again.errors} == corpus.bad_lines
    assert "Traceback" not in capfd.readouterr().err
