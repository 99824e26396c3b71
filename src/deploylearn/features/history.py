"""Point-in-time history features: what the store knew about a context when a run started.

For an execution that starts at ``t``, every count and recency here is computed from other
executions only, under two rules that make a training row look exactly like a request at
serving time:

* an outcome counts once it is **known**: at the other execution's ``completed_at`` (its
  ``started_at`` if no completion time was recorded), and only if that is strictly before
  ``t``. A run still in progress at ``t`` has no outcome yet, so it cannot count;
* a run's *existence* (for recency) counts from its ``started_at``, strictly before ``t``.

Strictly before means that executions starting at the same instant never see each other.
Everything is vectorized: per key, events sorted by (key, time), prefix sums, and a binary
search for each query, so a million rows take seconds, not minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deploylearn.features._columns import (
    MICROS_PER_DAY,
    Exploded,
    codes,
    explode_resources,
    micros,
)

# Feature-name prefix -> the frame columns that form the key. ``resource_set`` is derived
# (``resource_sets``): the run's resources as one sorted key, so "the last run of this gateway
# with these resources" (the parrot baseline of CI histories) is a feature.
HISTORY_KEYS: dict[str, tuple[str, ...]] = {
    "pattern": ("pattern_id",),
    "gateway": ("gateway_host",),
    "environment": ("target_environment",),
    "pattern_environment": ("pattern_id", "target_environment"),
    "pattern_gateway": ("pattern_id", "gateway_host"),
    "gateway_resources": ("gateway_host", "resource_set"),
}
RESOURCE_SET = "resource_set"
PATTERN_RESOURCE = "pattern_resource"
DEFAULT_WINDOW_DAYS = 30.0
LAST_RUNS = 5  # the "last n outcomes" rate: faster than any time window on busy keys
_COMPOSITE_LIMIT = 2**62  # (key, time, is_event) packed into one int64 below this


@dataclass(frozen=True)
class _AsOf:
    """Per query: outcome counts known before t and before t - window, last start, last failure."""

    successes: np.ndarray
    failures: np.ndarray
    recent_successes: np.ndarray
    recent_failures: np.ndarray
    since_previous: np.ndarray  # seconds since the key's previous start (NaN: none)
    since_failure: np.ndarray  # seconds since the key's last known failure (NaN: none)
    last_outcome: np.ndarray  # 1/0 of the key's latest known outcome (NaN: none)
    last_successes: np.ndarray  # successes among the key's latest LAST_RUNS known outcomes
    last_runs: np.ndarray  # how many outcomes that is (<= LAST_RUNS)


def resource_sets(resources: pd.Series) -> pd.Series:
    """Each run's resources as one key (sorted, de-duplicated, ``|``-joined)."""
    return pd.Series(
        ["|".join(sorted(set(r))) for r in resources], index=resources.index, dtype=object
    )


def point_in_time_features(
    frame: pd.DataFrame,
    *,
    window_days: float = DEFAULT_WINDOW_DAYS,
    resources: Exploded | None = None,
) -> pd.DataFrame:
    """History features for every row of ``Store.executions_frame()``, aligned with its index.

        Per key (pattern, gateway, environment, pattern × environment, pattern × gateway, gateway ×
        resource set): successes, failures, the
        smoothed success rate (s + 1) / (s + f + 2), log runs, the same rate and run count over the
        last ``window_days`` (drift: a gateway that degrades shows up here first), seconds since the
        key's previous run and since its last known failure, the key's latest known outcome and the
    smoothed rate of its latest ``LAST_RUNS`` outcomes. Per pattern × resource, over the row's
        resources: summed counts, the worst and mean smoothed rate, the fewest runs and the most
        recent failure. Never reads the row's own outcome, nor any outcome not known before it.
        ``resources`` is ``explode_resources(frame["resources_deployed"])`` if already computed.
    """
    n = len(frame)
    start, known, success, failure = _events(frame)
    window = int(window_days * MICROS_PER_DAY)
    derived = {RESOURCE_SET: resource_sets(frame["resources_deployed"])}
    tiebreak = _tiebreak(frame, start)

    columns: dict[str, np.ndarray] = {}
    for prefix, keys in HISTORY_KEYS.items():
        key = codes(*(derived[k] if k in derived else frame[k] for k in keys))
        _add_counts(columns, prefix, _as_of(key, start, known, success, failure, window, tiebreak))

    rows, resource, _ = resources or explode_resources(frame["resources_deployed"])
    pattern = codes(frame["pattern_id"])
    pair_key = codes(pd.Series(pattern[rows]), pd.Series(resource))
    pairs = _as_of(
        pair_key, start[rows], known[rows], success[rows], failure[rows], window, tiebreak[rows]
    )
    columns.update(_aggregate_pairs(rows, pairs, n))
    return pd.DataFrame(columns, index=frame.index)


def outcome_counts_as_of(frame: pd.DataFrame, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``frame``: successes and failures of rows with the same ``key`` (one int code
    per row, e.g. ``_columns.codes``) known before the row started, by this module's rules."""
    start, known, success, failure = _events(frame)
    asof = _as_of(
        np.asarray(key, dtype=np.int64), start, known, success, failure, 0, _tiebreak(frame, start)
    )
    return asof.successes, asof.failures


def _tiebreak(frame: pd.DataFrame, start: np.ndarray) -> np.ndarray:
    """Per row its rank by (start, execution id): outcomes known at the same instant are
    ordered by it, not by row order (the serving snapshot folds them in that order too)."""
    n = len(frame)
    tiebreak = np.empty(n, dtype=np.int64)
    ids = frame["execution_id"].astype(str).to_numpy() if "execution_id" in frame else np.arange(n)
    tiebreak[np.lexsort((ids, start))] = np.arange(n)
    return tiebreak


def _events(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Start and outcome-known times (microseconds), success and failure flags per row."""
    start = micros(frame["started_at"])
    known = micros(frame["completed_at"]) if "completed_at" in frame else start.copy()
    known = np.where((known == np.iinfo(np.int64).min) | (known < start), start, known)
    outcome = frame["outcome"].astype(object)
    success = (outcome == "success").to_numpy(dtype=bool)
    failure = (outcome == "failure").to_numpy(dtype=bool)
    return start, known, success, failure


def _add_counts(columns: dict[str, np.ndarray], prefix: str, asof: _AsOf) -> None:
    add_count_columns(
        columns,
        prefix,
        successes=asof.successes,
        failures=asof.failures,
        recent_successes=asof.recent_successes,
        recent_failures=asof.recent_failures,
        since_previous=asof.since_previous,
        since_failure=asof.since_failure,
        last_outcome=asof.last_outcome,
        last_successes=asof.last_successes,
        last_runs=asof.last_runs,
    )


def add_count_columns(
    columns: dict[str, np.ndarray],
    prefix: str,
    *,
    successes: np.ndarray,
    failures: np.ndarray,
    recent_successes: np.ndarray,
    recent_failures: np.ndarray,
    since_previous: np.ndarray,
    since_failure: np.ndarray,
    last_outcome: np.ndarray,
    last_successes: np.ndarray,
    last_runs: np.ndarray,
) -> None:
    """The per-key history columns from their counts; training and serving (the snapshot)
    both build them here, so the two can never compute a rate differently."""
    s, f, rs, rf = successes, failures, recent_successes, recent_failures
    columns[f"{prefix}_successes"] = s
    columns[f"{prefix}_failures"] = f
    columns[f"{prefix}_rate"] = (s + 1.0) / (s + f + 2.0)
    columns[f"{prefix}_log_runs"] = np.log1p(s + f)
    columns[f"{prefix}_recent_runs"] = rs + rf
    columns[f"{prefix}_recent_rate"] = (rs + 1.0) / (rs + rf + 2.0)
    columns[f"{prefix}_since_previous_s"] = since_previous
    columns[f"{prefix}_since_failure_s"] = since_failure
    columns[f"{prefix}_last_outcome"] = last_outcome
    columns[f"{prefix}_last_rate"] = (last_successes + 1.0) / (last_runs + 2.0)


def _aggregate_pairs(rows: np.ndarray, pairs: _AsOf, n: int) -> dict[str, np.ndarray]:
    """Collapse (execution, resource) pairs back to one value per execution."""
    prefix = PATTERN_RESOURCE
    s, f = pairs.successes, pairs.failures
    rate = (s + 1.0) / (s + f + 2.0)
    count = np.bincount(rows, minlength=n).astype(np.float64)
    has = count > 0

    def total(values: np.ndarray) -> np.ndarray:
        out = np.bincount(rows, weights=values, minlength=n).astype(np.float64)
        out[~has] = np.nan
        return out

    def reduce(ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        if len(rows):  # rows are sorted: reduce each row's contiguous run of pairs
            starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            out[rows[starts]] = ufunc.reduceat(values, starts)
        return out

    since_failure = np.where(np.isnan(pairs.since_failure), np.inf, pairs.since_failure)
    most_recent_failure = reduce(np.minimum, since_failure)
    most_recent_failure[np.isinf(most_recent_failure)] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_rate = total(rate) / count
    return {
        f"{prefix}_successes": total(s),
        f"{prefix}_failures": total(f),
        f"{prefix}_rate_min": reduce(np.minimum, rate),
        f"{prefix}_rate_mean": mean_rate,
        f"{prefix}_log_runs_min": reduce(np.minimum, np.log1p(s + f)),
        f"{prefix}_since_failure_s": most_recent_failure,
    }


def _as_of(
    key: np.ndarray,
    start: np.ndarray,
    known: np.ndarray,
    success: np.ndarray,
    failure: np.ndarray,
    window: int,
    tiebreak: np.ndarray,
) -> _AsOf:
    """As-of aggregates for a query at each item's ``start`` (and ``start - window``).

    Items are executions or exploded (execution, resource) pairs alike. Each event (a start,
    a known outcome) and each query becomes one int64 ``(key, time, is_event)`` so that sorted
    order is by key, then time, with a query before any event at the same instant. Then
    "events of the same key strictly before t" is a ``searchsorted`` and a difference of two
    prefix sums: O(n log n), no Python loop, no per-key groupby.
    """
    n = len(key)
    order_time = np.concatenate([start, start - window, known])
    low = int(order_time.min()) if n else 0
    span = (int(order_time.max()) - low + 1) if n else 1
    if (int(key.max()) + 1 if n else 1) * span * 2 >= _COMPOSITE_LIMIT:
        # Too many keys for microseconds in 62 bits: sort on time ranks (same order, same ties).
        order_time = np.unique(order_time, return_inverse=True)[1].astype(np.int64)
        low, span = 0, 3 * n + 1
    t_start, t_window, t_known = (order_time[i * n : (i + 1) * n] - low for i in range(3))
    # Queries in sorted order: binary searches with sorted needles stay in cache (10x faster).
    base = key * span
    queries = (base + t_start) * 2
    perm = np.argsort(queries)
    queries, key_floor = queries[perm], base[perm] * 2  # key_floor: below all of the key's items
    window_queries = (base[perm] + t_window[perm]) * 2  # same order: t - window is monotone

    has_outcome = np.flatnonzero(success | failure)
    outcome = (base[has_outcome] + t_known[has_outcome]) * 2 + 1
    order = np.lexsort((tiebreak[has_outcome], outcome))  # ties: by (start, id), as serving
    outcome = outcome[order]
    known_sorted = known[has_outcome][order]
    cum_s = np.concatenate([[0.0], np.cumsum(success[has_outcome][order])])
    cum_f = np.concatenate([[0.0], np.cumsum(failure[has_outcome][order])])
    floor = np.searchsorted(outcome, key_floor)
    now = np.searchsorted(outcome, queries)
    then = np.searchsorted(outcome, window_queries)
    s_now, f_now = cum_s[now] - cum_s[floor], cum_f[now] - cum_f[floor]
    s_then, f_then = cum_s[then] - cum_s[floor], cum_f[then] - cum_f[floor]
    count = now - floor
    last = np.maximum(now - LAST_RUNS, floor)
    outcome_success = success[has_outcome][order].astype(np.float64)
    last_outcome = np.full(n, np.nan)
    has_last = count > 0
    last_outcome[has_last] = outcome_success[now[has_last] - 1]
    failed = np.diff(cum_f) > 0
    start_sorted = start[perm]
    since_previous = _seconds_since(queries + 1, start_sorted, queries, key_floor, start_sorted)
    since_failure = _seconds_since(
        outcome[failed], known_sorted[failed], queries, key_floor, start_sorted
    )

    def unsorted(values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[perm] = values
        return out

    return _AsOf(
        successes=unsorted(s_now),
        failures=unsorted(f_now),
        recent_successes=unsorted(s_now - s_then),
        recent_failures=unsorted(f_now - f_then),
        since_previous=unsorted(since_previous),
        since_failure=unsorted(since_failure),
        last_outcome=unsorted(last_outcome),
        last_successes=unsorted(cum_s[now] - cum_s[last]),
        last_runs=unsorted((now - last).astype(np.float64)),
    )


def _seconds_since(
    events: np.ndarray,
    event_micros: np.ndarray,
    queries: np.ndarray,
    key_floor: np.ndarray,
    query_micros: np.ndarray,
) -> np.ndarray:
    """Seconds from the latest same-key event strictly before each query (NaN if none).

    ``events`` are sorted composites with their real times in ``event_micros``.
    """
    at = np.searchsorted(events, queries)
    valid = at > np.searchsorted(events, key_floor)
    out = np.full(len(queries), np.nan)
    out[valid] = (query_micros[valid] - event_micros[at[valid] - 1]) / 1e6
    return out
