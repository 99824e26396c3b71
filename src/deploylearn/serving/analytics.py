"""Deployment analytics: rates with intervals, DORA measures, trends, breakdowns, insights.

``deployment_analytics(frame, ...)`` is a pure function over ``Store.executions_frame()`` (and,
optionally, the per-execution metrics frame): no database, no MLflow. It answers the seed's
``get_deployment_analytics(environment, days_back, metric_types)`` with numbers a person can
trust: every rate carries a Wilson 95 % interval, every "went up / went down" a test and a
p-value, and an insight is written only when the numbers behind it are big enough to mean
something. ``docs/analytics.md`` defines every number in the result.

The window is ``(as_of - days_back, as_of]`` by ``started_at``; the comparison window is the
``days_back`` days before it. ``as_of`` defaults to the newest ``started_at`` in the frame, so
an imported or synthetic history still has a window (the result says which it used).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from deploylearn.domain.answers.analytics import (
    AsOfSource,
    Breakdowns,
    Comparison,
    CountedInsight,
    DailyRow,
    DeploymentAnalytics,
    DeploymentFrequency,
    DeploymentStatistics,
    Dora,
    Durations,
    DurationSummary,
    EnvironmentRow,
    GatewayInsight,
    GatewayRow,
    GroupStats,
    Insight,
    LeadTime,
    MetricSummary,
    MetricTrend,
    NoteInsight,
    Others,
    PreviousWindow,
    Rate,
    RateTrend,
    StrategyEnvironmentRow,
    StrategyInsight,
    StrategyRow,
    TimeToRestore,
    Trend,
    TrendInsight,
    Trends,
    Window,
)
from deploylearn.serving.rollbacks import recovery_metric, recovery_seconds
from deploylearn.serving.stats import finite_or_none, two_proportion_test, wilson_interval

ALPHA = 0.05  # a trend or a comparison is "significant" below this p-value
MIN_INSIGHT_N = 30  # outcomes needed on each side before a number becomes an insight
MIN_GROUP_N = 20  # breakdown rows with fewer outcomes are listed but never ranked
MIN_RATIO = 1.5  # "fails k× as often" needs k ≥ this ...
MIN_DIFFERENCE = 0.05  # ... and at least 5 points of absolute difference
TOP_GATEWAYS = 5
DORA_DEFAULT_ENVIRONMENT = "production"

RATE_METRICS = ("success_rate", "failure_rate", "rollback_rate", "rollback_success_rate")
BUILTIN_METRICS = ("duration", *RATE_METRICS)
# Stored metrics are whatever numeric performance_data keys the history has (plus
# duration_seconds): the store lists them (``Store.metric_types``), the metrics frame adds any.
REQUIRED_COLUMNS = (
    "execution_id",
    "target_environment",
    "gateway_host",
    "deployment_strategy",
    "status",
    "outcome",
    "started_at",
    "completed_at",
    "duration_seconds",
    "rollback_triggered",
    "rollback_successful",
)
LEAD_TIME_REASON = (
    "Lead time for changes runs from a change's commit (or request) to its deployment in "
    "production. Execution records carry when a deployment started and completed, not when "
    "the change it ships was committed or requested, so it cannot be computed from them."
)


# ------------------------------------------------------------------ statistics
def _rate(count: int, n: int) -> Rate:
    interval = wilson_interval(count, n)
    return Rate(
        rate=count / n if n else None,
        low=interval[0] if interval else None,
        high=interval[1] if interval else None,
        count=int(count),
        n=int(n),
    )


def _quantiles(values: pd.Series) -> MetricSummary:
    clean = values.dropna().to_numpy(dtype=float)
    if clean.size == 0:
        return MetricSummary(n=0, mean=None, p50=None, p90=None, min=None, max=None)
    p50, p90 = np.quantile(clean, (0.5, 0.9))
    return MetricSummary(
        n=int(clean.size),
        mean=float(clean.mean()),
        p50=float(p50),
        p90=float(p90),
        min=float(clean.min()),
        max=float(clean.max()),
    )


def _known(value: float | None) -> float:
    """A number the rule using it has already established (its test ran, its n is > 0)."""
    assert value is not None, "the rules that use a number gate on it being known"
    return value


# ------------------------------------------------------------------ input handling
def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def _utc_series(series: pd.Series) -> pd.Series:
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        series = pd.to_datetime(series, utc=True)
    return series.dt.tz_convert(UTC)


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"executions frame lacks columns: {', '.join(missing)}")
    keep = [
        *REQUIRED_COLUMNS,
        *(c for c in ("pattern_id", "deployment_type") if c in frame.columns),
    ]
    out = frame.loc[:, keep].copy()
    out["started_at"] = _utc_series(out["started_at"])
    out["completed_at"] = _utc_series(out["completed_at"])
    out["duration_seconds"] = pd.to_numeric(out["duration_seconds"], errors="coerce")
    out["rollback_triggered"] = out["rollback_triggered"].fillna(False).astype(bool)
    return out


def _selected_metrics(
    metric_types: str | Iterable[str] | None,
    metrics: pd.DataFrame | None,
    known: Sequence[str] = (),
) -> list[str]:
    present = (
        sorted(str(m) for m in metrics["metric_type"].dropna().unique())
        if metrics is not None and "metric_type" in metrics.columns
        else []
    )
    if metric_types is None:
        return [*BUILTIN_METRICS, *(m for m in present if m not in BUILTIN_METRICS)]
    if isinstance(metric_types, str):
        metric_types = [m for m in metric_types.split(",") if m.strip()]
    allowed = list(dict.fromkeys([*BUILTIN_METRICS, "duration_seconds", *known, *present]))
    chosen: list[str] = []
    for raw in metric_types:
        name = str(raw).strip()
        if name not in allowed:
            raise ValueError(f"unknown metric type {name!r}; allowed: {', '.join(allowed)}")
        if name not in chosen:
            chosen.append(name)
    return chosen


# ------------------------------------------------------------------ building blocks
def _counts(win: pd.DataFrame) -> DeploymentStatistics:
    outcome = win["outcome"]
    rollback = win["rollback_triggered"]
    rolled_ok = win["rollback_successful"]
    by_status = win["status"].value_counts().sort_index()
    return DeploymentStatistics(
        total_deployments=len(win),
        with_outcome=int(outcome.notna().sum()),
        successful_deployments=int((outcome == "success").sum()),
        failed_deployments=int((outcome == "failure").sum()),
        without_outcome=int(outcome.isna().sum()),
        rollbacks_triggered=int(rollback.sum()),
        rollbacks_successful=int((rollback & (rolled_ok == True)).sum()),  # noqa: E712
        rollbacks_failed=int((rollback & (rolled_ok == False)).sum()),  # noqa: E712
        by_status={str(k): int(v) for k, v in by_status.items()},
    )


def _rate_counts(win: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """(count, n) behind each rate metric."""
    known = win["outcome"].notna()
    n = int(known.sum())
    successes = int((win["outcome"] == "success").sum())
    rollbacks = win["rollback_triggered"] & known
    rollback_known = rollbacks & win["rollback_successful"].notna()
    return {
        "success_rate": (successes, n),
        "failure_rate": (n - successes, n),
        "rollback_rate": (int(rollbacks.sum()), n),
        "rollback_success_rate": (
            int((rollback_known & (win["rollback_successful"] == True)).sum()),  # noqa: E712
            int(rollback_known.sum()),
        ),
    }


def _durations(win: pd.DataFrame) -> pd.Series:
    """Durations of finished executions with an outcome, in seconds."""
    return win.loc[win["outcome"].notna(), "duration_seconds"].dropna()


def _duration_summary(q: MetricSummary) -> DurationSummary:
    return DurationSummary(n=q.n, mean_seconds=q.mean, p50_seconds=q.p50, p90_seconds=q.p90)


def _duration_block(win: pd.DataFrame) -> Durations:
    finished = win[win["outcome"].notna()]
    overall = _quantiles(finished["duration_seconds"])
    by_strategy = {
        str(strategy): _quantiles(group["duration_seconds"])
        for strategy, group in finished.groupby("deployment_strategy", sort=True)
    }
    successes = _quantiles(finished.loc[finished["outcome"] == "success", "duration_seconds"])
    return Durations(
        n=overall.n,
        mean_seconds=overall.mean,
        p50_seconds=overall.p50,
        p90_seconds=overall.p90,
        success_p50_seconds=successes.p50,
        success_p90_seconds=successes.p90,
        by_strategy={s: _duration_summary(q) for s, q in by_strategy.items()},
    )


def _rate_trend(current: tuple[int, int], previous: tuple[int, int]) -> RateTrend:
    """The trend without its Holm adjustment (``_holm`` sets ``p_adjusted``)."""
    cur, prev = _rate(*current), _rate(*previous)
    test = two_proportion_test(*current, *previous)
    change = cur.rate - prev.rate if cur.rate is not None and prev.rate is not None else None
    return RateTrend(
        current=cur,
        previous=prev,
        change=change,
        test=test[0] if test else None,
        statistic=test[1] if test else None,
        p_value=test[2] if test else None,
        significant=bool(test is not None and test[2] < ALPHA),
        p_adjusted=None,
    )


def _continuous_trend(current: pd.Series, previous: pd.Series) -> MetricTrend:
    """The trend without its Holm adjustment (``_holm`` sets ``p_adjusted``)."""
    cur, prev = _quantiles(current), _quantiles(previous)
    change_p50 = cur.p50 - prev.p50 if cur.p50 is not None and prev.p50 is not None else None
    test: str | None = None
    statistic = p_value = None
    significant = False
    if cur.n and prev.n:
        u, p = stats.mannwhitneyu(
            current.dropna().to_numpy(float),
            previous.dropna().to_numpy(float),
            alternative="two-sided",
        )
        p_value = finite_or_none(p)
        test = "Mann–Whitney U test"
        statistic = finite_or_none(u)
        significant = bool(p_value is not None and p_value < ALPHA)
    return MetricTrend(
        current=cur,
        previous=prev,
        change_p50=change_p50,
        test=test,
        statistic=statistic,
        p_value=p_value,
        significant=significant,
        p_adjusted=None,
    )


def _daily(win: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> list[DailyRow]:
    days = pd.date_range(start.floor("D"), end.floor("D"), freq="D", tz=UTC)
    day = win["started_at"].dt.floor("D")
    outcome = win["outcome"]
    table = pd.DataFrame(
        {
            "day": day,
            "deployments": 1,
            "successes": (outcome == "success").astype(int),
            "failures": (outcome == "failure").astype(int),
            "rollbacks": (win["rollback_triggered"] & outcome.notna()).astype(int),
        }
    )
    sums = table.groupby("day").sum().reindex(days, fill_value=0)
    finished = win["outcome"].notna() & win["duration_seconds"].notna()
    durations = win.loc[finished, "duration_seconds"].groupby(day[finished])
    p50 = durations.quantile(0.5).reindex(days)
    p90 = durations.quantile(0.9).reindex(days)
    rows = []
    for stamp, row in sums.iterrows():
        known = int(row["successes"] + row["failures"])
        rows.append(
            DailyRow(
                date=stamp.date().isoformat(),
                deployments=int(row["deployments"]),
                successes=int(row["successes"]),
                failures=int(row["failures"]),
                rollbacks=int(row["rollbacks"]),
                success_rate=int(row["successes"]) / known if known else None,
                duration_p50_seconds=finite_or_none(p50.loc[stamp]),
                duration_p90_seconds=finite_or_none(p90.loc[stamp]),
            )
        )
    return rows


Group = tuple[tuple[str, ...], GroupStats]  # a group's key values (in ``keys`` order), its numbers


def _group_rows(win: pd.DataFrame, keys: Sequence[str]) -> list[Group]:
    """One row per group: counts, success / failure / rollback rates with intervals, durations."""
    known = win[win["outcome"].notna()]
    if known.empty:
        return []
    table = pd.DataFrame(
        {
            **{k: known[k].astype(str) for k in keys},
            "n": 1,
            "failures": (known["outcome"] == "failure").astype(int),
            "rollbacks": known["rollback_triggered"].astype(int),
        }
    )
    sums = table.groupby(list(keys), sort=True)[["n", "failures", "rollbacks"]].sum()
    p50 = known.groupby([known[k].astype(str) for k in keys])["duration_seconds"].median()
    rows: list[Group] = []
    for index, row in sums.iterrows():
        index_tuple = index if isinstance(index, tuple) else (index,)
        n, failures, rollbacks = int(row["n"]), int(row["failures"]), int(row["rollbacks"])
        stats_row = GroupStats(
            n=n,
            failures=failures,
            success_rate=_rate(n - failures, n),
            failure_rate=_rate(failures, n),
            rollback_rate=_rate(rollbacks, n),
            duration_p50_seconds=finite_or_none(p50.get(index)),
        )
        rows.append((tuple(str(i) for i in index_tuple), stats_row))
    return rows


def _compare_within(
    rows: Sequence[tuple[str, GroupStats]], group_key: str, within_key: str
) -> list[Comparison]:
    """For each (``within_key`` value, row): the failure rate of the other rows with the same
    value, and the test against it.

    ``others`` pools every other row of the same environment; the test is the two-proportion
    test above, Bonferroni-adjusted over the rows that have enough data to be tested.
    """
    totals: dict[str, list[int]] = {}
    for within, row in rows:
        acc = totals.setdefault(within, [0, 0])
        acc[0] += row.failures
        acc[1] += row.n
    testable = {
        i
        for i, (within, row) in enumerate(rows)
        if row.n >= MIN_GROUP_N and totals[within][1] - row.n >= MIN_GROUP_N
    }
    comparisons = []
    for i, (within, row) in enumerate(rows):
        total_f, total_n = totals[within]
        other_f, other_n = total_f - row.failures, total_n - row.n
        others = _rate(other_f, other_n)
        ratio = (
            row.failure_rate.rate / others.rate
            if others.rate and row.failure_rate.rate is not None
            else None
        )
        test = two_proportion_test(row.failures, row.n, other_f, other_n)
        p_adjusted = (
            min(1.0, test[2] * len(testable)) if test is not None and i in testable else None
        )
        comparisons.append(
            Comparison(
                others=Others(
                    failure_rate=others, scope=f"other {group_key} in the same {within_key}"
                ),
                failure_ratio=ratio,
                test=test[0] if test else None,
                p_value=test[2] if test else None,
                p_adjusted=p_adjusted,
                significant=bool(p_adjusted is not None and p_adjusted < ALPHA),
            )
        )
    return comparisons


def _top_failing(rows: list[GatewayRow], limit: int = TOP_GATEWAYS) -> list[GatewayRow]:
    """Gateways ranked by the lower end of their failure-rate interval (evidence, not luck)."""
    ranked = [r for r in rows if r.n >= MIN_GROUP_N]
    ranked.sort(
        key=lambda r: (-_known(r.failure_rate.low), -_known(r.failure_rate.rate), r.gateway)
    )
    return ranked[:limit]


def _breakdowns(win: pd.DataFrame) -> Breakdowns:
    gateways = _group_rows(win, ["gateway_host", "target_environment"])
    gateway_rows = [
        GatewayRow(gateway=gateway, environment=environment, **dict(row), **dict(comparison))
        for ((gateway, environment), row), comparison in zip(
            gateways,
            _compare_within([(k[1], row) for k, row in gateways], "gateways", "environment"),
            strict=True,
        )
    ]
    cells = _group_rows(win, ["deployment_strategy", "target_environment"])
    cell_rows = [
        StrategyEnvironmentRow(
            strategy=strategy, environment=environment, **dict(row), **dict(comparison)
        )
        for ((strategy, environment), row), comparison in zip(
            cells,
            _compare_within([(k[1], row) for k, row in cells], "strategies", "environment"),
            strict=True,
        )
    ]
    return Breakdowns(
        by_strategy=[
            StrategyRow(strategy=k[0], **dict(row))
            for k, row in _group_rows(win, ["deployment_strategy"])
        ],
        by_environment=[
            EnvironmentRow(environment=k[0], **dict(row))
            for k, row in _group_rows(win, ["target_environment"])
        ],
        by_gateway=gateway_rows,
        by_strategy_environment=cell_rows,
        top_failing_gateways=_top_failing(gateway_rows),
    )


def _naive_ns(series: pd.Series) -> pd.Series:
    """UTC times as naive nanosecond datetimes (merge_asof needs one dtype on both sides)."""
    return series.dt.tz_convert(UTC).dt.tz_localize(None).astype("datetime64[ns]")


def _time_to_restore(
    env_frame: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    rollback_seconds: pd.Series | None,
) -> TimeToRestore:
    """Failures in the window, and how long until the gateway was serving a good deployment.

    A failure whose rollback succeeded is restored after the rollback's duration (the stored
    rollback-duration metric, ``serving.rollbacks.recovery_metric``) when it is known; every
    other failure is restored when the next successful deployment to the same gateway
    completes, looked for up to ``end`` only.
    """
    in_window = (env_frame["started_at"] > start) & (env_frame["started_at"] <= end)
    failures = env_frame[in_window & (env_frame["outcome"] == "failure")]
    failed_at = failures["completed_at"].fillna(failures["started_at"])
    if failures.empty:
        return TimeToRestore(
            failures=0,
            restored=0,
            unrestored_at_window_end=0,
            by_rollback=0,
            by_next_success=0,
            p50_hours=None,
            p90_hours=None,
            mean_hours=None,
            by_rollback_p50_hours=None,
            by_next_success_p50_hours=None,
        )
    seconds = pd.Series(np.nan, index=failures.index, dtype=float)
    by_rollback = pd.Series(False, index=failures.index)
    if rollback_seconds is not None and not rollback_seconds.empty:
        rolled = failures["rollback_successful"] == True  # noqa: E712
        known = failures.loc[rolled, "execution_id"].map(rollback_seconds)
        known = known[known.notna()]
        seconds.loc[known.index] = known.astype(float)
        by_rollback.loc[known.index] = True
    need = failures.index[~by_rollback.to_numpy()]
    if len(need):
        done = env_frame["completed_at"].notna() & (env_frame["completed_at"] <= end)
        good = env_frame.loc[done & (env_frame["outcome"] == "success")]
        # ``.array`` keeps the frame's string dtype: a round trip through numpy gives object,
        # which pandas re-infers as str for a non-empty column only, so an environment without
        # a success had mismatched merge keys (issue 12 item 6)
        restores = pd.DataFrame(
            {
                "gateway_host": good["gateway_host"].array,
                "key": _naive_ns(good["completed_at"]).to_numpy(),
            }
        )
        restores["restored_at"] = restores["key"]
        query = pd.DataFrame(
            {
                "row": need,
                "gateway_host": failures.loc[need, "gateway_host"].array,
                "key": _naive_ns(failed_at.loc[need]).to_numpy(),
            }
        )
        # the next success on the same gateway that completed strictly after the failure
        matched = pd.merge_asof(
            query.sort_values("key"),
            restores.sort_values("key"),
            on="key",
            by="gateway_host",
            direction="forward",
            allow_exact_matches=False,
        ).set_index("row")
        delta = (matched["restored_at"] - matched["key"]).dt.total_seconds()
        seconds.loc[delta.index] = delta.to_numpy()
    restored = seconds.dropna() / 3600.0
    p50 = p90 = mean = rollback_p50 = next_success_p50 = None
    if len(restored):
        p50 = float(restored.median())
        p90 = float(restored.quantile(0.9))
        mean = float(restored.mean())
        rb = restored[by_rollback.loc[restored.index]]
        ns = restored[~by_rollback.loc[restored.index]]
        rollback_p50 = float(rb.median()) if len(rb) else None
        next_success_p50 = float(ns.median()) if len(ns) else None
    return TimeToRestore(
        failures=len(failures),
        restored=len(restored),
        unrestored_at_window_end=int(seconds.isna().sum()),
        by_rollback=int(by_rollback.sum()),
        by_next_success=int((~by_rollback & seconds.notna()).sum()),
        p50_hours=p50,
        p90_hours=p90,
        mean_hours=mean,
        by_rollback_p50_hours=rollback_p50,
        by_next_success_p50_hours=next_success_p50,
    )


def _dora(
    prepared: pd.DataFrame,
    environment: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    days: int,
    rollback_seconds: pd.Series | None,
) -> Dora:
    env_frame = prepared[prepared["target_environment"] == environment]
    win = env_frame[(env_frame["started_at"] > start) & (env_frame["started_at"] <= end)]
    known = win["outcome"].notna()
    n = int(known.sum())
    failures = int((win["outcome"] == "failure").sum())
    return Dora(
        environment=environment,
        deployment_frequency=DeploymentFrequency(
            successful_per_day=(n - failures) / days,
            attempts_per_day=n / days,
            successful_deployments=n - failures,
            attempts=n,
            days=days,
        ),
        change_failure_rate=_rate(failures, n),
        time_to_restore_service=_time_to_restore(env_frame, start, end, rollback_seconds),
        lead_time_for_changes=LeadTime(available=False, reason=LEAD_TIME_REASON),
    )


def _isin(values: pd.Series, members: pd.Series) -> np.ndarray:
    """``values.isin(members)`` through Arrow's hash set.

    pandas' own isin on Arrow-backed strings walks the members in Python (2.5 s for 3 M
    metric rows against 0.5 M executions); Arrow's is_in does the same in 0.2 s.
    """
    try:
        value_array = pa.array(values, from_pandas=True)  # Array or ChunkedArray
        member_array = pa.array(members, from_pandas=True)
        if isinstance(member_array, pa.ChunkedArray):
            member_array = member_array.combine_chunks()
        member_array = member_array.cast(value_array.type)
        found = pc.is_in(value_array, value_set=member_array)
        return np.asarray(found.fill_null(False).to_numpy(), dtype=bool)
    except (pa.ArrowException, TypeError):
        return cast(np.ndarray, values.isin(members).to_numpy(dtype=bool))


def _metric_values(metrics: pd.DataFrame, metric_type: str) -> pd.Series:
    rows = metrics[metrics["metric_type"] == metric_type]
    return pd.to_numeric(rows["value"], errors="coerce").dropna()


def _holm(trends: dict[str, Trend]) -> dict[str, Trend]:
    """The trends with ``p_adjusted``: Holm over the trend tests as one family (failure_rate
    shares success_rate's test)."""
    p_values = {
        name: t.p_value
        for name, t in trends.items()
        if t.p_value is not None and not (name == "failure_rate" and "success_rate" in trends)
    }
    order = sorted(p_values, key=lambda name: p_values[name])
    adjusted: dict[str, float | None] = {}
    running = 0.0
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[name]))
        adjusted[name] = running
    if "failure_rate" in trends and "success_rate" in trends:
        adjusted["failure_rate"] = adjusted.get("success_rate")
    return {
        name: t.model_copy(update={"p_adjusted": adjusted.get(name)}) for name, t in trends.items()
    }


# ------------------------------------------------------------------ insights
def _pct(x: float | None) -> str:
    return f"{100 * _known(x):.0f}%"


def _p(p: float | None) -> str:
    value = _known(p)
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


def _minutes(seconds: float | None) -> str:
    return f"{_known(seconds) / 60:.1f} min"


def _env_label(environment: str | None) -> str:
    return f"to {environment}" if environment else "(all environments)"


_RATE_WORDS = {
    "success_rate": "Success rate",
    "failure_rate": "Failure rate",
    "rollback_rate": "Rollback rate",
    "rollback_success_rate": "Rollback success rate",
}


def _insights(
    *,
    environment: str | None,
    counts: DeploymentStatistics,
    rates: dict[str, tuple[int, int]],
    window: Window,
    trends: dict[str, Trend],
    breakdowns: Breakdowns,
    dora: Dora,
    selected: list[str],
) -> list[Insight]:
    out: list[Insight] = []
    env = _env_label(environment)
    n = counts.with_outcome
    success = _rate(*rates["success_rate"])
    rollback = _rate(*rates["rollback_rate"])
    head = (
        f"{counts.total_deployments:,} deployments {env} from "
        f"{window.start[:10]} to {window.end[:10]}: "
    )
    if n:
        tail = (
            f"{_pct(success.rate)} succeeded (95% CI {_pct(success.low)}–"
            f"{_pct(success.high)}), {_pct(rollback.rate)} rolled back."
        )
    else:
        tail = "none has an outcome yet (pending, in progress or cancelled)."
    out.append(CountedInsight(kind="summary", text=head + tail, n=n))
    if n < MIN_INSIGHT_N:
        out.append(
            CountedInsight(
                kind="small_sample",
                text=(
                    f"Only {n} deployments with an outcome in the window: too few (< "
                    f"{MIN_INSIGHT_N}) for trend or breakdown insights."
                ),
                n=n,
            )
        )
        return out

    for name in ("success_rate", "failure_rate", "rollback_rate", "rollback_success_rate"):
        if name not in selected or name not in trends:
            continue
        if name == "failure_rate" and "success_rate" in selected:
            continue  # the same test, said once
        rate_trend = trends[name]
        if not isinstance(rate_trend, RateTrend):
            continue
        cur, prev = rate_trend.current, rate_trend.previous
        if min(cur.n, prev.n) < MIN_INSIGHT_N or not _adjusted_significant(rate_trend):
            continue
        verb = "rose" if _known(rate_trend.change) > 0 else "fell"
        out.append(
            TrendInsight(
                kind="trend",
                metric=name,
                text=(
                    f"{_RATE_WORDS[name]} {verb} from {_pct(prev.rate)} to "
                    f"{_pct(cur.rate)} ({_p(rate_trend.p_value)}, n={prev.n:,} vs {cur.n:,})."
                ),
                p_value=_known(rate_trend.p_value),
            )
        )
    for name in selected:
        if name in RATE_METRICS or name not in trends:
            continue
        metric_trend = trends[name]
        if not isinstance(metric_trend, MetricTrend):
            continue
        current, previous = metric_trend.current, metric_trend.previous
        if min(current.n, previous.n) < MIN_INSIGHT_N or not _adjusted_significant(metric_trend):
            continue
        verb = "rose" if _known(metric_trend.change_p50) > 0 else "fell"
        if name in ("duration", "duration_seconds"):
            label = "Median duration"
            before, after = _minutes(previous.p50), _minutes(current.p50)
        else:
            label = f"Median {name}"
            before, after = f"{_known(previous.p50):.4g}", f"{_known(current.p50):.4g}"
        out.append(
            TrendInsight(
                kind="trend",
                metric=name,
                text=(
                    f"{label} {verb} from {before} to {after} "
                    f"(Mann–Whitney {_p(metric_trend.p_value)})."
                ),
                p_value=_known(metric_trend.p_value),
            )
        )

    flagged = [r for r in breakdowns.by_gateway if _noteworthy(r)]
    flagged.sort(key=lambda r: -_known(r.failure_ratio))
    for gateway in flagged[:3]:
        out.append(
            GatewayInsight(
                kind="gateway",
                gateway=gateway.gateway,
                text=(
                    f"{gateway.gateway} fails {_known(gateway.failure_ratio):.1f}× as often as "
                    f"other {gateway.environment} gateways ({_pct(gateway.failure_rate.rate)} vs "
                    f"{_pct(gateway.others.failure_rate.rate)}, n={gateway.n:,}, "
                    f"Bonferroni-adjusted {_p(gateway.p_adjusted)})."
                ),
                p_adjusted=_known(gateway.p_adjusted),
            )
        )
    cells = [r for r in breakdowns.by_strategy_environment if _noteworthy(r)]
    cells.sort(key=lambda r: -_known(r.failure_ratio))
    for cell in cells[:3]:
        failure = cell.failure_rate
        out.append(
            StrategyInsight(
                kind="strategy",
                strategy=cell.strategy,
                environment_name=cell.environment,
                text=(
                    f"{cell.strategy} deployments to {cell.environment} fail "
                    f"{_pct(failure.rate)} of the time (95% CI "
                    f"{_pct(failure.low)}–{_pct(failure.high)}, "
                    f"n={cell.n:,}) vs {_pct(cell.others.failure_rate.rate)} for other "
                    f"strategies (Bonferroni-adjusted {_p(cell.p_adjusted)})."
                ),
                p_adjusted=_known(cell.p_adjusted),
            )
        )

    ttr = dora.time_to_restore_service
    if ttr.restored >= MIN_INSIGHT_N:
        out.append(
            NoteInsight(
                kind="time_to_restore",
                text=(
                    f"After a failed {dora.environment} deployment, service was "
                    f"restored in a median {_known(ttr.p50_hours):.1f} h (90th percentile "
                    f"{_known(ttr.p90_hours):.1f} h, n={ttr.restored:,}; "
                    f"{ttr.unrestored_at_window_end} not restored by the window's end)."
                ),
            )
        )
    rb = _rate(*rates["rollback_success_rate"])
    if rb.n >= MIN_INSIGHT_N and rb.rate is not None:
        out.append(
            NoteInsight(
                kind="rollback",
                text=(
                    f"{_pct(rb.rate)} of {rb.n:,} rollbacks succeeded (95% CI "
                    f"{_pct(rb.low)}–{_pct(rb.high)})."
                ),
            )
        )
    return out


def _adjusted_significant(trend: Trend) -> bool:
    return trend.p_adjusted is not None and trend.p_adjusted < ALPHA


def _noteworthy(row: GatewayRow | StrategyEnvironmentRow) -> bool:
    others = row.others.failure_rate
    return bool(
        row.significant
        and row.n >= MIN_INSIGHT_N
        and others.n >= MIN_INSIGHT_N
        and row.failure_ratio is not None
        and row.failure_ratio >= MIN_RATIO
        and _known(row.failure_rate.rate) - _known(others.rate) >= MIN_DIFFERENCE
    )


# ------------------------------------------------------------------ the entry point
def deployment_analytics(
    frame: pd.DataFrame,
    *,
    environment: str | None = None,
    days_back: int = 30,
    metric_types: str | Iterable[str] | None = None,
    as_of: datetime | str | pd.Timestamp | None = None,
    metrics: pd.DataFrame | None = None,
    known_metrics: Sequence[str] = (),
) -> DeploymentAnalytics:
    """Analytics for ``environment`` (None: all) over the ``days_back`` days ending ``as_of``.

    ``frame`` is ``Store.executions_frame()``; ``metrics`` optionally the per-execution
    metrics (execution_id, metric_type, value, ...). ``metric_types`` selects which metric
    summaries and trends appear: 'duration', 'success_rate', 'failure_rate', 'rollback_rate',
    'rollback_success_rate' and the stored metric types: those in ``metrics`` and
    ``known_metrics`` (the store's ``metric_types()``); an unknown one raises ValueError, as
    does ``days_back`` < 1. The result is a ``DeploymentAnalytics`` model; its
    ``model_dump(mode="json")`` is plain JSON (ISO strings, floats, ints, None);
    ``docs/analytics.md`` defines every field.
    """
    if isinstance(days_back, bool) or not isinstance(days_back, int | np.integer):
        raise ValueError(f"days_back must be a whole number of days, got {days_back!r}")
    days = int(days_back)
    if days < 1:
        raise ValueError(f"days_back must be at least 1, got {days_back}")
    selected = _selected_metrics(metric_types, metrics, known_metrics)
    prepared = _prepare(frame)

    as_of_source: AsOfSource
    if as_of is not None:
        end, as_of_source = _utc(as_of), "given"
    elif len(prepared):
        end, as_of_source = prepared["started_at"].max(), "newest execution in the data"
    else:
        end, as_of_source = pd.Timestamp.now(tz=UTC).floor("s"), "now (no executions)"
    span = pd.Timedelta(days=days)
    start, prev_start = end - span, end - 2 * span

    scoped = (
        prepared if environment is None else prepared[prepared["target_environment"] == environment]
    )
    started = scoped["started_at"]
    win = scoped[(started > start) & (started <= end)]
    prev = scoped[(started > prev_start) & (started <= start)]

    window = Window(
        start=start.isoformat(),
        end=end.isoformat(),
        days=days,
        environment=environment,
        as_of_source=as_of_source,
        note=(
            "executions with start time in (start, end]; "
            + (
                "end is the newest start time in the data, not today"
                if as_of_source.startswith("newest")
                else "end as requested"
            )
        ),
    )
    counts = _counts(win)
    current_counts, previous_counts = _rate_counts(win), _rate_counts(prev)
    rate_values = {name: _rate(*current_counts[name]) for name in RATE_METRICS}
    durations = _duration_block(win)

    rollback_seconds: pd.Series | None = None
    metric_cur = metric_prev = None
    if metrics is not None:
        missing = [c for c in ("execution_id", "metric_type", "value") if c not in metrics]
        if missing:
            raise ValueError(f"metrics frame lacks columns: {', '.join(missing)}")
        # the window's executions define the window's metrics (one membership test each)
        metric_cur = metrics[_isin(metrics["execution_id"], win["execution_id"])]
        metric_prev = metrics[_isin(metrics["execution_id"], prev["execution_id"])]
        candidates = recovery_metric(metric_cur["metric_type"].dropna().unique())
        rolled = win.loc[win["rollback_triggered"].fillna(False).astype(bool), "execution_id"]
        _, seconds = recovery_seconds(
            metric_cur[metric_cur["metric_type"].isin(candidates)], rolled
        )
        rollback_seconds = seconds.groupby(level=0).first()

    trends: dict[str, Trend] = {}
    metric_summaries: dict[str, MetricSummary] = {}
    for name in selected:
        if name in RATE_METRICS:
            trends[name] = _rate_trend(current_counts[name], previous_counts[name])
        elif name == "duration":
            trends[name] = _continuous_trend(_durations(win), _durations(prev))
        else:
            if metric_cur is not None and metric_prev is not None:
                cur_values = _metric_values(metric_cur, name)
                prev_values = _metric_values(metric_prev, name)
            elif name == "duration_seconds":
                cur_values, prev_values = _durations(win), _durations(prev)
            else:
                cur_values = prev_values = pd.Series(dtype=float)
            metric_summaries[name] = _quantiles(cur_values)
            trends[name] = _continuous_trend(cur_values, prev_values)
    trends = _holm(trends)

    breakdowns = _breakdowns(win)
    dora = _dora(
        prepared, environment or DORA_DEFAULT_ENVIRONMENT, start, end, days, rollback_seconds
    )

    details: list[Insight]
    if counts.total_deployments == 0:
        seen = sorted(str(e) for e in prepared["target_environment"].dropna().unique())
        where = f"to {environment} " if environment else ""
        text = (
            f"No deployments {where}started between {start:%Y-%m-%d %H:%M} and "
            f"{end:%Y-%m-%d %H:%M} UTC."
        )
        if environment and environment not in seen:
            text += f" Environments in the data: {', '.join(seen) or 'none'}."
        details = [NoteInsight(kind="no_data", text=text)]
    else:
        details = _insights(
            environment=environment,
            counts=counts,
            rates=current_counts,
            window=window,
            trends=trends,
            breakdowns=breakdowns,
            dora=dora,
            selected=selected,
        )
    return DeploymentAnalytics(
        environment=environment,
        days_back=days,
        metric_types=selected,
        window=window,
        previous_window=PreviousWindow(start=prev_start.isoformat(), end=start.isoformat()),
        deployment_statistics=counts,
        # the seed's flat keys
        success_rate=rate_values["success_rate"].rate,
        failure_rate=rate_values["failure_rate"].rate,
        rollback_rate=rate_values["rollback_rate"].rate,
        rollback_success_rate=rate_values["rollback_success_rate"].rate,
        average_duration_seconds=durations.mean_seconds,
        rates={name: rate_values[name] for name in RATE_METRICS if name in selected},
        durations=durations if "duration" in selected else None,
        metrics=metric_summaries,
        dora=dora,
        trends=Trends.of(trends, _daily(win, start, end)),
        breakdowns=breakdowns,
        insights=[d.text for d in details],
        insight_details=details,
    )
