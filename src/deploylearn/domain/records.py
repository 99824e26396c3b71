"""Typed records: executions, patterns, adaptations, rollback scenarios and metrics.

``DeploymentExecution`` takes exactly the keywords of the seed's ``record_deployment_execution``
plus an optional ``execution_id`` (the idempotency key), so seed-style calls keep working. All
validation that pydantic can do in its compiled core is declared on the fields; the rest runs
once per record in ``_check_consistency``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from deploylearn.errors import FieldProblem, InvalidRecordError

Status = Literal["pending", "in_progress", "completed", "failed", "rolled_back", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "rolled_back", "cancelled"})

MAX_JSON_BYTES = 64 * 1024
MAX_LOG_CHARS = 1_000_000
MAX_DURATION = timedelta(days=30)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)


_ALREADY_SLUG = re.compile(r"[a-z0-9_.]+")


def slugify(value: str) -> str:
    """Lower-case and underscore names so 'Blue-Green' and 'blue_green' are one strategy."""
    if _ALREADY_SLUG.fullmatch(value):  # the common case, several times cheaper
        return value
    return "_".join(value.strip().lower().replace("-", " ").split())


def _slug(value: object) -> object:
    return slugify(value) if isinstance(value, str) else value


def _listify(value: object) -> object:
    """Accept a bare string where a list of strings is expected (common in hand-written input)."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    return value


_RESOURCE_SEPARATORS = re.compile(r"[;,]")


def split_resources(text: str) -> list[str]:
    """A resource list written as one string: names separated by ``,`` or ``;``, each
    stripped, blank ones dropped ('project, database' → ['project', 'database']).

    The one rule for ``resources_deployed`` given as a string to an execution or a planned
    deployment, in a CSV cell, and for ``--resources`` on the command line.
    """
    return [part.strip() for part in _RESOURCE_SEPARATORS.split(text) if part.strip()]


def _fix_spelling(data: dict[str, Any]) -> dict[str, Any]:
    """Slug fields and resource names in canonical spelling, in place ('Blue-Green' →
    'blue_green', a string of resources split by ``split_resources``); shared by executions
    and planned deployments."""
    for key in _SLUG_FIELDS:
        value = data.get(key)
        if isinstance(value, str):
            data[key] = slugify(value)
    resources = data.get("resources_deployed")
    if isinstance(resources, str):
        resources = split_resources(resources)
    if isinstance(resources, list):
        data["resources_deployed"] = [_slug(r) for r in resources]
    return data


Slug = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.]*$")
]
_SLUG_FIELDS = (
    "deployment_type",
    "target_environment",
    "source_environment",
    "deployment_strategy",
    "status",
)
# a bare string is one item of these (resources_deployed: see split_resources)
_LIST_FIELDS = ("failure_reasons", "lessons_learned")
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Host = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=1,
        max_length=253,
        # checked before to_lower applies: upper case is accepted and stored lowered
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9\-_.:\[\]]*[A-Za-z0-9\]])?$",
    ),
]
Text = Annotated[str, StringConstraints(max_length=4000)]
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
]


def as_utc(value: datetime) -> datetime:
    """An aware datetime as a plain ``datetime`` in UTC. Subclasses such as
    ``pandas.Timestamp`` become plain datetimes, which every encoder downstream accepts."""
    value = value.astimezone(UTC)
    if type(value) is datetime:
        return value
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=UTC,
    )


MAX_JSON_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


# Any integer beyond 64 bits has 19 digits or more; orjson writes NaN and Infinity as null.
# One translation maps every digit to 0 and every bracket to {, so that a run of 19 digits
# and the number of brackets are each one C search (a regex takes ~40x as long).
_PLAIN_TABLE = bytes.maketrans(b"123456789[", b"000000000{")
_LONG_DIGITS = b"0" * 19


def json_problem(value: dict[str, Any]) -> tuple[str, str] | None:
    """The first rule a free-form JSON object (``configuration_used``, ``performance_data``,
    …) breaks, as (dotted path inside it, message); None when both stores can hold it.

    Integers must fit in 64 bits (Neo4j's and DuckDB's integers, ``orjson``), numbers must be
    finite, objects and arrays nest at most ``MAX_JSON_DEPTH`` levels (deeper values overflow
    recursive encoders), and the whole is at most ``MAX_JSON_BYTES`` of JSON. The JSON text
    shows cheaply that most values break none of these; the rest are walked.
    """
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # beyond 64 bits, too deep for orjson, or not JSON at all
        text = None
    if text is not None and plain_json(text) and b"null" not in text:
        return None
    problem = _shape_problem(value)
    if problem:
        return problem
    if text is None:
        try:
            orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            return "", f"must be JSON (objects, arrays, strings, numbers, booleans, null): {exc}"
    elif len(text) > MAX_JSON_BYTES:
        return "", f"is {len(text)} bytes of JSON, more than the limit of {MAX_JSON_BYTES}"
    return None


def plain_json(text: bytes) -> bool:
    """True when compact JSON ``text`` (no NaN) certainly holds no integer beyond 64 bits, no
    nesting deeper than ``MAX_JSON_DEPTH`` and at most ``MAX_JSON_BYTES``: False means "look
    closer", not "bad" (digits or brackets inside strings count too)."""
    if len(text) > MAX_JSON_BYTES:
        return False
    mapped = text.translate(_PLAIN_TABLE)
    return mapped.count(b"{") <= MAX_JSON_DEPTH and _LONG_DIGITS not in mapped


def _shape_problem(value: dict[str, Any]) -> tuple[str, str] | None:
    """The walk behind ``json_problem``: iterative, so any depth is safe to check."""
    pending: list[tuple[Any, int, str]] = [(value, 1, "")]
    while pending:
        node, depth, path = pending.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, item in items:
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if kind is int or (isinstance(item, int) and not isinstance(item, bool)):
                if INT64_MIN <= item <= INT64_MAX:
                    continue
                digits = str(item)
                shown = digits if len(digits) <= 24 else digits[:24] + "…"
                return _at(path, key), (
                    f"integer {shown} does not fit in 64 bits; write it as a string "
                    "(or a float) to keep it"
                )
            if kind is float or isinstance(item, float):
                if item - item == 0:  # finite
                    continue
                name = "NaN" if item != item else "Infinity" if item > 0 else "-Infinity"
                return _at(path, key), f"{name} is not a JSON number (numbers must be finite)"
            if isinstance(item, dict | list):
                if depth >= MAX_JSON_DEPTH:
                    where = _at(path, key)
                    if len(where) > 60:
                        where = where[:60] + "…"
                    return where, f"nested more than {MAX_JSON_DEPTH} levels deep"
                pending.append((item, depth + 1, _at(path, key)))
    return None


def _at(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _check_json(field: str, value: dict[str, Any]) -> dict[str, Any]:
    """A pydantic validator's body: ``value`` unchanged, or an error at the exact path."""
    problem = json_problem(value)
    if problem:
        path, message = problem
        raise _field_error(f"{field}.{path}" if path else field, message)
    return value


class ExecutionOutcome:
    """``outcome`` and ``duration_seconds`` of a validated execution: one definition for the
    pydantic record and the fast screen's struct (a mixin without fields or state)."""

    __slots__ = ()
    if TYPE_CHECKING:  # provided by the classes that mix this in
        status: str
        rollback_triggered: bool
        started_at: datetime
        completed_at: datetime | None

    @property
    def outcome(self) -> Literal["success", "failure"] | None:
        """Success is completed without a rollback; unfinished or cancelled runs teach nothing."""
        status, rolled_back = self.status, self.rollback_triggered
        if status == "completed" and not rolled_back:
            return "success"
        if status in ("failed", "rolled_back") or (status == "completed" and rolled_back):
            return "failure"
        return None

    @property
    def duration_seconds(self) -> float | None:
        if self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds()


class DeploymentExecution(ExecutionOutcome, BaseModel):
    """One deployment execution, exactly as the seed's ``record_deployment_execution`` takes it.

    Times are stored timezone-aware in UTC; naive times are rejected because a wrong offset
    silently reorders history and breaks point-in-time features.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=MAX_LOG_CHARS)

    execution_name: Name
    deployment_type: Slug
    target_environment: Slug
    gateway_host: Host
    deployment_strategy: Slug
    resources_deployed: Annotated[list[Slug], Field(min_length=1, max_length=64)]
    configuration_used: dict[str, Any] = Field(default_factory=dict)
    status: Status
    started_at: AwareDatetime
    completed_at: AwareDatetime | None = None
    source_environment: Slug | None = None
    failure_reasons: Annotated[list[Text], Field(max_length=50)] = Field(default_factory=list)
    rollback_triggered: bool = False
    rollback_successful: bool | None = None
    user_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    automation_triggered: bool = False
    execution_log: str | None = None
    performance_data: dict[str, Any] = Field(default_factory=dict)
    lessons_learned: Annotated[list[Text], Field(max_length=50)] = Field(default_factory=list)
    execution_id: Identifier | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        """One pass of spelling fixes, cheaper than a validator per field."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in _LIST_FIELDS:
            value = data.get(key)
            if isinstance(value, str):
                data[key] = _listify(value)
        return _fix_spelling(data)

    @field_validator("configuration_used", "performance_data")
    @classmethod
    def _json_object(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return _check_json(str(info.field_name), value)

    @model_validator(mode="after")
    def _check_consistency(self) -> DeploymentExecution:
        started = as_utc(self.started_at)
        completed = as_utc(self.completed_at) if self.completed_at is not None else None
        problem = consistency_problem(
            started,
            completed,
            self.rollback_triggered or self.status == "rolled_back",
            self.rollback_successful,
        )
        if problem:
            raise _field_error(*problem)
        object.__setattr__(self, "started_at", started)
        object.__setattr__(self, "completed_at", completed)
        if self.status == "rolled_back":
            object.__setattr__(self, "rollback_triggered", True)
        object.__setattr__(self, "resources_deployed", sorted(set(self.resources_deployed)))
        return self


def consistency_problem(
    started: datetime,
    completed: datetime | None,
    rollback_triggered: bool,
    rollback_successful: bool | None,
) -> tuple[str, str] | None:
    """The first cross-field rule an execution breaks, as (field, message); times in UTC.

    One function for the pydantic model and the fast screen, so both accept the same records.
    """
    if started < EARLIEST:
        return "started_at", f"{started.isoformat()} is before {EARLIEST.year}"
    if started > datetime.now(UTC) + FUTURE_SLACK:
        return "started_at", f"{started.isoformat()} is in the future"
    if completed is not None:
        if completed < started:
            return (
                "completed_at",
                f"{completed.isoformat()} is before started_at {started.isoformat()}",
            )
        if completed - started > MAX_DURATION:
            return "completed_at", f"more than {MAX_DURATION.days} days after start"
    if rollback_successful is not None and not rollback_triggered:
        return "rollback_successful", "is set but rollback_triggered is false"
    return None


class _LocatedError(ValueError):
    """A model-level check that knows which field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _field_error(field: str, message: str) -> ValueError:
    return _LocatedError(field, message)


def parse_execution(data: Any) -> DeploymentExecution:
    """Validate one execution from a mapping, raising ``InvalidRecordError`` that names fields."""
    if isinstance(data, DeploymentExecution):
        return data
    if not isinstance(data, dict):
        raise InvalidRecordError(
            [FieldProblem("record", f"must be a JSON object, got {type(data).__name__}")]
        )
    try:
        return DeploymentExecution.model_validate(data)
    except ValidationError as exc:
        raise InvalidRecordError(_problems(exc)) from None
    except _LocatedError as exc:  # pragma: no cover - pydantic wraps these, kept as a guard
        raise InvalidRecordError([FieldProblem(exc.field, str(exc))]) from None


def _problems(exc: ValidationError) -> list[FieldProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        message = err["msg"]
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _LocatedError):
            loc, message = ctx_error.field, str(ctx_error)
        elif err["type"] == "extra_forbidden":
            message = "is not a field of a deployment execution"
        elif err["type"] == "missing":
            message = "is required"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        problems.append(FieldProblem(loc or "record", message))
    return problems


class DeploymentPattern(BaseModel):
    """A strategy plus a canonical configuration template, with every outcome counted."""

    model_config = ConfigDict(frozen=True)

    pattern_id: str
    pattern_name: str
    deployment_strategy: str
    configuration_template: dict[str, Any]
    success_count: int = 0
    failure_count: int = 0
    first_seen: datetime | None = None
    last_used: datetime | None = None

    @property
    def total_count(self) -> int:
        return self.success_count + self.failure_count


class EnvironmentAdaptation(BaseModel):
    """How a configuration changes from one environment to another (recorded or mined)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    adaptation_name: Name
    source_environment: Slug
    target_environment: Slug
    adaptation_rules: list[Text] = Field(default_factory=list, max_length=100)
    original_configuration: dict[str, Any] = Field(default_factory=dict)
    adapted_configuration: dict[str, Any] = Field(default_factory=dict)
    resource_type: Slug | None = None
    pattern_id: Identifier | None = None
    adaptation_id: Identifier | None = None

    @field_validator("original_configuration", "adapted_configuration")
    @classmethod
    def _json_object(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return _check_json(str(info.field_name), value)


class RollbackScenario(BaseModel):
    """Rollbacks grouped by environment, strategy and the issue that triggered them."""

    model_config = ConfigDict(frozen=True)

    scenario_id: str
    environment: str
    deployment_strategy: str
    trigger_issue: str
    resource_types: list[str]
    success_count: int
    failure_count: int
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class DeploymentMetric(BaseModel):
    """One measured number of one execution: its duration or a numeric performance_data entry."""

    model_config = ConfigDict(frozen=True)

    execution_id: str
    metric_type: str
    value: float
    recorded_at: datetime


def parse_adaptation(data: Any) -> EnvironmentAdaptation:
    """Validate a recorded environment adaptation, naming bad fields."""
    try:
        return EnvironmentAdaptation.model_validate(data)
    except ValidationError as exc:
        raise InvalidRecordError(_problems(exc)) from None


class PlannedDeployment(BaseModel):
    """A deployment about to run, as ``predict`` takes it: the execution's context fields,
    no outcome. ``configuration_used`` may also be given as ``configuration``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_environment: Slug
    gateway_host: Host | None = None
    deployment_strategy: Slug
    resources_deployed: Annotated[list[Slug], Field(min_length=1, max_length=64)]
    configuration_used: dict[str, Any] = Field(default_factory=dict)
    source_environment: Slug | None = None
    deployment_type: Slug | None = None
    automation_triggered: bool | None = None
    started_at: AwareDatetime | None = None
    execution_name: Name | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "configuration" in data and "configuration_used" not in data:
            data["configuration_used"] = data.pop("configuration")
        data = _fix_spelling(data)
        if isinstance(data.get("resources_deployed"), list):
            data["resources_deployed"] = sorted({str(r) for r in data["resources_deployed"]})
        return data

    @field_validator("configuration_used")
    @classmethod
    def _json_object(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return _check_json(str(info.field_name), value)


def parse_planned(data: Any) -> PlannedDeployment:
    """Validate one planned deployment, raising ``InvalidRecordError`` that names fields."""
    if not isinstance(data, dict):
        raise InvalidRecordError(
            [FieldProblem("record", f"must be a JSON object, got {type(data).__name__}")]
        )
    try:
        return PlannedDeployment.model_validate(data)
    except ValidationError as exc:
        raise InvalidRecordError(_problems(exc)) from None
