"""Static features of a run: its pattern's configuration knobs, resources, context and time.

None of these read an outcome. Knobs come from the pattern's canonical template (what the
pattern *is*), joined by ``pattern_id``; the run's own configuration is not in the frame and its
volatile keys (build numbers, commits) carry no signal anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from deploylearn.domain.records import DeploymentPattern
from deploylearn.features._columns import (
    MICROS_PER_DAY,
    Exploded,
    codes,
    column_name,
    explode_resources,
    micros,
)

MAX_CATEGORIES = 12
CATEGORICAL_COLUMNS = (
    "deployment_strategy",
    "target_environment",
    "source_environment",
    "deployment_type",
)
_NONE = "none"


def knob_table(
    patterns: Sequence[DeploymentPattern], *, max_categories: int = MAX_CATEGORIES
) -> pd.DataFrame:
    """One row per pattern (index ``pattern_id``), one numeric column per knob.

    Booleans become 0/1, numbers stay numbers, a string knob with at most ``max_categories``
    values becomes one 0/1 column per value; a knob the template lacks is NaN (the model, not
    this code, decides what a missing knob means: the store keeps templates as written, and an
    omitted knob usually means the tool's default). Lists, objects and high-cardinality strings
    are left out: they name things rather than set a level.
    """
    templates = {p.pattern_id: p.configuration_template for p in patterns}
    keys = sorted({k for t in templates.values() for k in t})
    columns: dict[str, list[float]] = {}
    for key in keys:
        values = [t.get(key) for t in templates.values()]
        present = [v for v in values if v is not None]
        if all(_is_number(v) for v in present):
            columns[column_name("cfg", key)] = [_number(v) for v in values]
        elif all(_is_scalar(v) for v in present):
            levels = sorted({_level(v) for v in present})
            if len(levels) > max_categories:
                continue
            for level in levels:
                columns[column_name("cfg", key, level)] = [
                    np.nan if v is None else float(_level(v) == level) for v in values
                ]
    table = pd.DataFrame(columns, index=pd.Index(list(templates), name="pattern_id"))
    return table.astype(np.float64)


def knob_groups(columns: Iterable[str]) -> dict[str, list[str]]:
    """``cfg__key`` and its ``cfg__key__level`` columns, by key."""
    groups: dict[str, list[str]] = {}
    for column in columns:
        parts = str(column).split("__")
        groups.setdefault(parts[1] if len(parts) > 1 else str(column), []).append(str(column))
    return groups


def knob_row(template: dict[str, Any], columns: Sequence[str]) -> pd.Series:
    """The ``knob_table`` columns for one template the table may not contain (a planned,
    never-seen configuration), by the same rules: numbers as numbers, a scalar as its level's
    0/1 column, an absent knob NaN."""
    out = pd.Series(np.nan, index=list(columns), dtype=np.float64)
    for key, value in template.items():
        if value is None:
            continue
        numeric = column_name("cfg", key)
        if _is_number(value) and numeric in out.index:
            out[numeric] = _number(value)
        elif _is_scalar(value):
            prefix = numeric + "__"
            levels = [c for c in out.index if c.startswith(prefix)]
            out[levels] = 0.0
            level = column_name("cfg", key, _level(value))
            if level in out.index:
                out[level] = 1.0
    return out


def knob_features(
    frame: pd.DataFrame,
    patterns: Sequence[DeploymentPattern],
    *,
    max_categories: int = MAX_CATEGORIES,
) -> pd.DataFrame:
    """The pattern's knobs for every row of the frame (NaN for an unknown pattern)."""
    table = knob_table(patterns, max_categories=max_categories)
    position = table.index.get_indexer(frame["pattern_id"].astype(object))
    values = table.to_numpy()
    out = np.full((len(frame), table.shape[1]), np.nan)
    found = position >= 0
    out[found] = values[position[found]]
    return pd.DataFrame(out, columns=table.columns, index=frame.index)


def resource_features(frame: pd.DataFrame, resources: Exploded | None = None) -> pd.DataFrame:
    """One 0/1 column per resource type seen, plus the number of distinct resources."""
    rows, code, names = resources or explode_resources(frame["resources_deployed"])
    out = np.zeros((len(frame), len(names)))
    out[rows, code] = 1.0
    result = pd.DataFrame(
        out, columns=[column_name("resource", n) for n in names], index=frame.index
    )
    result["n_resources"] = out.sum(axis=1)
    return result


def context_features(frame: pd.DataFrame) -> pd.DataFrame:
    """One-hot strategy, environments (source ``none`` when the chain was skipped) and type."""
    parts: dict[str, np.ndarray] = {}
    for column in CATEGORICAL_COLUMNS:
        values = frame[column].astype(object).where(frame[column].notna(), _NONE)
        code, levels = pd.factorize(values.to_numpy(dtype=object), sort=True)
        for i, level in enumerate(levels):
            parts[column_name(column, level)] = (code == i).astype(np.float64)
    parts["automation_triggered"] = (
        frame["automation_triggered"].astype("boolean").fillna(False).to_numpy(dtype=np.float64)
    )
    return pd.DataFrame(parts, index=frame.index)


def time_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Hour and weekday (UTC), days since the first record, and the pattern's age in days.

    The first record and a pattern's first run are at or before every row that uses them, so
    both are known at ``t``. They let a model follow drift without reading outcomes.
    """
    started = pd.to_datetime(frame["started_at"], utc=True)
    at = micros(frame["started_at"])
    first = at.min() if len(at) else 0
    pattern = codes(frame["pattern_id"])
    pattern_first = np.full(int(pattern.max()) + 1 if len(pattern) else 0, np.iinfo(np.int64).max)
    np.minimum.at(pattern_first, pattern, at)
    return pd.DataFrame(
        {
            "hour": started.dt.hour.to_numpy(dtype=np.float64),
            "weekday": started.dt.day_of_week.to_numpy(dtype=np.float64),
            "days_since_first_record": (at - first) / MICROS_PER_DAY,
            "pattern_age_days": (at - pattern_first[pattern]) / MICROS_PER_DAY,
        },
        index=frame.index,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, bool | int | float)


def _number(value: Any) -> float:
    return np.nan if value is None else float(value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int | float)


def _level(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()
