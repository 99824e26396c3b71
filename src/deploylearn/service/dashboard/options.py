"""Parsing the pages' GET forms: every filter and input is in the query string, so a page is a
link, works without script, and the same query can be asked of the API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

WINDOWS = (7, 30, 90, 365)  # time window choices, days
DEFAULT_WINDOW = 30


@dataclass(frozen=True)
class Filters:
    """Environment, gateway, resources and time window, as the filter form sends them."""

    environment: str | None
    gateway: str | None
    resources: tuple[str, ...]
    days: int

    @classmethod
    def of(cls, query: QueryParams) -> Filters:
        return cls(
            environment=text(query, "environment"),
            gateway=text(query, "gateway"),
            resources=listed(query, "resources"),
            days=window(query.get("days")),
        )


def text(query: QueryParams, name: str) -> str | None:
    value = (query.get(name) or "").strip()
    return value or None


def listed(query: QueryParams, name: str) -> tuple[str, ...]:
    """Checkbox values (repeated) or a comma-separated field, without blanks or repeats."""
    parts = [p.strip() for v in query.getlist(name) for p in v.split(",")]
    return tuple(dict.fromkeys(p for p in parts if p))


def window(raw: str | None) -> int:
    try:
        days = int(raw or DEFAULT_WINDOW)
    except ValueError:
        return DEFAULT_WINDOW
    return days if 1 <= days <= 3650 else DEFAULT_WINDOW


def probability(raw: str | None, default: float) -> float:
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError:
        return default
    return min(max(value, 0.0), 1.0)


def configuration(raw: str | None) -> tuple[dict[str, Any], str | None]:
    """The predict form's configuration JSON; an error message instead when it is not an
    object (the page says so rather than guessing)."""
    if not raw or not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return {}, f"configuration: not JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(value, dict):
        return {}, "configuration: must be a JSON object, e.g. {\"backup_enabled\": true}"
    return value, None
