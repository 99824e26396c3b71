"""Small vectorized helpers shared by the feature modules (times, codes, resource lists)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple, cast

import numpy as np
import pandas as pd

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND
_UNSAFE = re.compile(r"[^0-9A-Za-z_]+")


def micros(values: pd.Series) -> np.ndarray:
    """UTC microseconds since the epoch as int64 (NaT as the int64 minimum).

    Both stores return timezone-aware UTC times, but not in the same unit (DuckDB ``us``, the
    Neo4j driver path may give ``ns``); one integer unit makes every comparison exact.
    """
    series = pd.to_datetime(values, utc=True)
    naive = series.dt.tz_localize(None).dt.as_unit("us")
    return cast(np.ndarray, naive.to_numpy(dtype="datetime64[us]").view("int64").copy())


def codes(*columns: pd.Series) -> np.ndarray:
    """One dense int64 code per distinct combination of values (missing is a value too)."""
    combined = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        code, uniques = pd.factorize(_filled(column), sort=True)
        combined = pd.factorize(combined * max(len(uniques), 1) + code, sort=True)[0]
    return cast(np.ndarray, pd.factorize(combined, sort=True)[0].astype(np.int64))


def _filled(column: pd.Series) -> np.ndarray:
    filled = column.astype(object).where(column.notna(), "\x00none")
    return cast(np.ndarray, filled.to_numpy(dtype=object))


class Exploded(NamedTuple):
    """Resource lists as (row, code) pairs: ``names[code[i]]`` is deployed by row ``row[i]``."""

    rows: np.ndarray
    code: np.ndarray
    names: list[str]


def explode_resources(resources: pd.Series) -> Exploded:
    """One ``(row, code)`` pair per deployed resource, rows in frame order.

    ``row`` indexes the positions of ``resources``, ``code`` indexes the sorted ``names``.
    Duplicates within a list are kept once (a resource is deployed or not).
    """
    lengths = np.fromiter((len(v) for v in resources), dtype=np.int64, count=len(resources))
    rows = np.repeat(np.arange(len(resources), dtype=np.int64), lengths)
    flat = np.fromiter(_chain(resources), dtype=object, count=int(lengths.sum()))
    code, names = pd.factorize(flat, sort=True)
    if len(rows):
        keep = np.ones(len(rows), dtype=bool)
        order = np.lexsort((code, rows))
        dup = (rows[order][1:] == rows[order][:-1]) & (code[order][1:] == code[order][:-1])
        keep[order[1:][dup]] = False
        rows, code = rows[keep], code[keep]
    return Exploded(rows, code.astype(np.int64), [str(n) for n in names])


def _chain(lists: Iterable[Iterable[str]]) -> Iterable[str]:
    for values in lists:
        yield from values


def column_name(*parts: object) -> str:
    """A model-safe column name: ASCII letters, digits and single underscores."""
    text = "__".join(_UNSAFE.sub("_", str(p)).strip("_") or "x" for p in parts)
    return text.lower()
