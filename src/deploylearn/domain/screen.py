"""A fast screen for executions that are already clean, so bulk paths skip pydantic for them.

Most input (exports, demo histories, CI jobs) is already in canonical form: slugs lower-case,
RFC 3339 times with an offset, lists as lists, booleans as booleans. ``msgspec`` decodes such a
record straight from JSON into a struct in a few microseconds; the cross-field rules come from
``records.consistency_problem``. The screen only **accepts** or **declines**; it never reports
errors. A declined record goes through ``records.parse_execution`` (pydantic), which
normalizes spelling and names every bad field. So the screen may decline anything it is unsure
of, but must accept a record only when pydantic would accept it with identical values;
``tests/unit/test_screen.py`` holds the two to that on generated and mutated records.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta

from deploylearn.domain import strict_json
from deploylearn.domain.records import (
    MAX_LOG_CHARS,
    DeploymentExecution,
    ExecutionOutcome,
    Status,
    as_utc,
    consistency_problem,
    json_problem,
    parse_execution,
)
from deploylearn.domain.strict_json import duplicate_free
from deploylearn.errors import FieldProblem, InvalidRecordError

_Name = Annotated[str, Meta(min_length=1, max_length=300)]
_Text = Annotated[str, Meta(max_length=4000)]
_Texts = Annotated[list[_Text], Meta(max_length=50)]

# Exactly the rules of records.Slug / Host / Identifier; only values already in canonical form
# pass (pydantic would leave them unchanged), anything else is declined.
_SLUG = re.compile(r"[a-z0-9][a-z0-9_.]{0,63}")
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9\-_.:\[\]]*[a-z0-9\]])?")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
# RFC 3339 with an offset and at most microseconds: both parsers read these identically
# (pydantic truncates extra digits where msgspec would round, so those are declined).
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_KNOWN_CACHE_LIMIT = 50_000


class ScreenedExecution(msgspec.Struct, ExecutionOutcome, forbid_unknown_fields=True):
    """A clean execution with the attributes of ``records.DeploymentExecution``.

    Times arrive as ``Any`` (RFC 3339 text from JSON, aware datetimes from Python) and leave
    as UTC datetimes; ``screen_*`` returns the struct only after every rule has passed.
    Optional fields decode as ``UNSET`` when absent, so that the screen knows how many keys
    the input had (``strict_json.duplicate_free``); ``_finish`` puts the defaults in.
    """

    execution_name: _Name
    deployment_type: str
    target_environment: str
    gateway_host: Annotated[str, Meta(max_length=253)]
    deployment_strategy: str
    resources_deployed: Annotated[list[str], Meta(min_length=1, max_length=64)]
    status: Status
    started_at: Any
    configuration_used: dict[str, Any] = UNSET  # type: ignore[assignment]  # UNSET until _finish
    completed_at: Any = UNSET
    source_environment: str | None = UNSET  # type: ignore[assignment]  # UNSET until _finish
    failure_reasons: _Texts = UNSET  # type: ignore[assignment]  # UNSET until _finish
    rollback_triggered: bool = UNSET  # type: ignore[assignment]  # UNSET until _finish
    rollback_successful: bool | None = UNSET  # type: ignore[assignment]  # UNSET until _finish
    user_id: Annotated[str, Meta(max_length=200)] | None = UNSET  # type: ignore[assignment]  # UNSET until _finish
    automation_triggered: bool = UNSET  # type: ignore[assignment]  # UNSET until _finish
    execution_log: Annotated[str, Meta(max_length=MAX_LOG_CHARS)] | None = UNSET  # type: ignore[assignment]  # UNSET until _finish
    performance_data: dict[str, Any] = UNSET  # type: ignore[assignment]  # UNSET until _finish
    lessons_learned: _Texts = UNSET  # type: ignore[assignment]  # UNSET until _finish
    execution_id: str | None = UNSET  # type: ignore[assignment]  # UNSET until _finish


# The defaults of ScreenedExecution's optional fields (those of DeploymentExecution); a
# factory where the default is mutable.
_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("configuration_used", dict),
    ("completed_at", None),
    ("source_environment", None),
    ("failure_reasons", list),
    ("rollback_triggered", False),
    ("rollback_successful", None),
    ("user_id", None),
    ("automation_triggered", False),
    ("execution_log", None),
    ("performance_data", dict),
    ("lessons_learned", list),
    ("execution_id", None),
)


_decoder = msgspec.json.Decoder(ScreenedExecution)
_known: dict[re.Pattern[str], set[str]] = {_SLUG: set(), _HOST: set()}


def _canonical(value: str, pattern: re.Pattern[str]) -> bool:
    """True when ``value`` fully matches; repeated values (environments, hosts) hit a set."""
    known = _known[pattern]
    if value in known:
        return True
    if not pattern.fullmatch(value):
        return False
    if len(known) >= _KNOWN_CACHE_LIMIT:
        known.clear()
    known.add(value)
    return True


def _utc(value: Any) -> datetime | None:
    if isinstance(value, str):
        if not _TIMESTAMP.fullmatch(value):
            return None
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    elif not isinstance(value, datetime) or value.utcoffset() is None:
        return None
    return as_utc(value)


def _fill_defaults(record: ScreenedExecution) -> None:
    for name, default in _DEFAULTS:
        if getattr(record, name) is UNSET:
            setattr(record, name, default() if callable(default) else default)


def _finish(record: ScreenedExecution) -> ScreenedExecution | None:
    """Apply the rules msgspec's types cannot express; None declines the record."""
    _fill_defaults(record)
    if record.execution_name != record.execution_name.strip():
        return None
    for value in (record.deployment_type, record.target_environment, record.deployment_strategy):
        if not _canonical(value, _SLUG):
            return None
    if record.source_environment is not None and not _canonical(record.source_environment, _SLUG):
        return None
    if not _canonical(record.gateway_host, _HOST):
        return None
    for resource in record.resources_deployed:
        if not _canonical(resource, _SLUG):
            return None
    if record.user_id is not None and record.user_id != record.user_id.strip():
        return None
    if record.execution_id is not None and not _IDENTIFIER.fullmatch(record.execution_id):
        return None
    started = _utc(record.started_at)
    completed = _utc(record.completed_at) if record.completed_at is not None else None
    if started is None or (record.completed_at is not None and completed is None):
        return None
    if record.status == "rolled_back":
        record.rollback_triggered = True
    if consistency_problem(
        started, completed, record.rollback_triggered, record.rollback_successful
    ):
        return None
    if json_problem(record.configuration_used) or json_problem(record.performance_data):
        return None
    record.started_at = started
    record.completed_at = completed
    record.resources_deployed = sorted(set(record.resources_deployed))
    return record


def screen_json(raw: bytes | str) -> ScreenedExecution | None:
    """One JSON object (a JSON Lines line) as a clean execution, or None to decline it."""
    try:
        record = _decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not duplicate_free(raw, msgspec.json.encode(record)):
        return None  # a duplicate key: let the full path name it
    return _finish(record)


def screen_mapping(data: dict[str, Any]) -> ScreenedExecution | None:
    """A mapping of the seed's keywords as a clean execution, or None to decline it."""
    try:
        record = msgspec.convert(data, ScreenedExecution)
    except (msgspec.ValidationError, RecursionError):
        return None
    return _finish(record)


def validate_execution(
    raw: bytes | str | dict[str, Any],
) -> ScreenedExecution | DeploymentExecution:
    """A JSON Lines line or a mapping as a valid execution: screened when clean, otherwise
    normalized by pydantic. Raises ``InvalidRecordError`` naming each bad field."""
    if isinstance(raw, bytes | str):
        screened = screen_json(raw)
        if screened is not None:
            return screened
        raw = load_json_object(raw if isinstance(raw, bytes) else raw.encode())
    elif isinstance(raw, dict):
        screened = screen_mapping(raw)
        if screened is not None:
            return screened
    return parse_execution(raw)


def load_json_object(raw: bytes) -> dict[str, Any]:
    """One JSON Lines line as a mapping, or ``InvalidRecordError`` saying why it is not one."""
    try:
        value = strict_json.loads(raw)
    except strict_json.JsonTextError as exc:
        raise InvalidRecordError([FieldProblem(exc.path or "record", str(exc))]) from None
    if not isinstance(value, dict):
        raise InvalidRecordError([FieldProblem("record", "must be a JSON object")])
    return value
