"""One PNG of ``deployment_analytics``: volume and success, durations, strategies, gateways.

A 2×2 figure: daily deployments stacked by outcome with the success rate, duration p50/p90 per
day, failure rate by strategy and the top failing gateways, both with their Wilson 95 %
intervals. It is drawn with matplotlib's object API on the Agg canvas: no pyplot and no backend
switch, so it needs no display, leaves a notebook's backend alone and is safe in a server
thread. It reads only the answer, so a result loaded back from JSON
(``DeploymentAnalytics.model_validate(json.loads(text))``) plots the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from deploylearn.domain.answers.analytics import (
    DeploymentAnalytics,
    GatewayRow,
    StrategyRow,
)
from deploylearn.serving.analytics import deployment_analytics

GREEN, RED, GREY, BLUE, ORANGE = "#2e7d32", "#c62828", "#9e9e9e", "#1565c0", "#ef6c00"
MAX_GATEWAYS = 8
ROLLING_DAYS = 7
MAX_DAILY_BARS = 92  # longer windows are drawn as weekly bars


def analytics_plot(
    source: DeploymentAnalytics | pd.DataFrame, path: str | Path, **analytics_options: Any
) -> Path:
    """Draw ``source`` (an analytics answer, or an executions frame) into the PNG ``path``.

    With a frame, ``analytics_options`` (environment, days_back, as_of, metrics …) go to
    ``deployment_analytics`` first. Returns the path written.
    """
    if isinstance(source, pd.DataFrame):
        result = deployment_analytics(source, **analytics_options)
    elif analytics_options:
        raise ValueError("analytics options apply to a frame, not to a computed result")
    else:
        result = source
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)

    if result.deployment_statistics.total_deployments == 0:
        figure = Figure(figsize=(11, 2.5), dpi=110, layout="constrained")
        FigureCanvasAgg(figure)
        figure.suptitle(_title(result), fontsize=14, fontweight="bold")
        axis = figure.add_subplot(1, 1, 1)
        axis.axis("off")
        axis.text(0.5, 0.5, result.insights[0], ha="center", va="center", wrap=True)
        figure.savefig(out, format="png")
        return out
    figure = Figure(figsize=(15, 9.5), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(_title(result), fontsize=14, fontweight="bold")
    grid = figure.subplots(2, 2)
    _daily_volume(grid[0, 0], result)
    _daily_durations(grid[0, 1], result)
    _strategies(grid[1, 0], result)
    _gateways(grid[1, 1], result)
    figure.savefig(out, format="png")
    return out


# ------------------------------------------------------------------ pieces
def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _title(result: DeploymentAnalytics) -> str:
    window = result.window
    env = result.environment or "all environments"
    counts = result.deployment_statistics
    head = f"Deployments to {env}: {window.start[:10]} to {window.end[:10]} ({window.days} days)"
    if not counts.total_deployments:
        return head
    dora = result.dora
    cfr = dora.change_failure_rate
    freq = dora.deployment_frequency.successful_per_day
    return (
        f"{head}\n{counts.total_deployments:,} runs, success {_pct(result.success_rate)}"
        f", rollbacks {_pct(result.rollback_rate)} · {dora.environment}: "
        f"{freq:.1f} successful deployments/day, change failure rate {_pct(cfr.rate)}"
    )


def _date_axis(axis: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _daily_frame(result: DeploymentAnalytics) -> pd.DataFrame:
    daily = pd.DataFrame([row.model_dump() for row in result.trends.daily])
    daily["date"] = pd.to_datetime(daily["date"])
    return daily


def _daily_volume(axis: Axes, result: DeploymentAnalytics) -> None:
    daily = _daily_frame(result)
    period, width, rolling_periods = "day", 0.85, ROLLING_DAYS
    counts = daily.set_index("date")[["deployments", "successes", "failures"]]
    if len(daily) > MAX_DAILY_BARS:  # a year of daily bars is a grey blur: weekly sums
        counts = counts.resample("W-MON", label="left", closed="left").sum()
        period, width, rolling_periods = "week", 6.0, 4
    dates = counts.index
    successes, failures = counts["successes"], counts["failures"]
    other = counts["deployments"] - successes - failures
    axis.bar(dates, successes, width=width, align="edge", color=GREEN, label="succeeded")
    axis.bar(
        dates, failures, width=width, align="edge", bottom=successes, color=RED, label="failed"
    )
    if other.any():
        axis.bar(
            dates,
            other,
            width=width,
            align="edge",
            bottom=successes + failures,
            color=GREY,
            label="no outcome",
        )
    axis.set_ylabel(f"deployments per {period}")
    axis.set_title(f"Deployments per {period} by outcome, with success rate")
    _date_axis(axis)

    rate_axis = axis.twinx()
    known = successes + failures
    window = min(rolling_periods, len(counts))
    rolling = (
        successes.rolling(window, min_periods=1).sum() / known.rolling(window, min_periods=1).sum()
    )
    unit = "day" if period == "day" else "week"
    rate_axis.plot(
        dates + pd.Timedelta(days=width / 2),
        rolling,
        color=BLUE,
        linewidth=2,
        label=f"{window}-{unit} success rate",
    )
    overall = result.success_rate
    if overall is not None:
        rate_axis.axhline(overall, color=BLUE, linestyle=":", linewidth=1, label="window rate")
    rate_axis.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    rate_axis.set_ylabel("success rate", color=BLUE)
    handles, labels = axis.get_legend_handles_labels()
    more_handles, more_labels = rate_axis.get_legend_handles_labels()
    # headroom above the bars for a one-row legend that covers nothing
    axis.set_ylim(0, max(1.0, float(counts["deployments"].max())) * 1.3)
    rate_axis.set_ylim(0, 1.3)
    rate_axis.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    axis.legend(handles + more_handles, labels + more_labels, loc="upper left", ncol=3, fontsize=8)


def _daily_durations(axis: Axes, result: DeploymentAnalytics) -> None:
    daily = _daily_frame(result)
    for column, label, color in (
        ("duration_p50_seconds", "median (p50)", BLUE),
        ("duration_p90_seconds", "p90", ORANGE),
    ):
        minutes = pd.to_numeric(daily[column], errors="coerce") / 60
        marker = "o" if len(daily) <= MAX_DAILY_BARS else None
        axis.plot(
            daily["date"],
            minutes,
            marker=marker,
            markersize=3,
            linewidth=1.2,
            color=color,
            label=label,
        )
    durations = result.durations
    if durations and durations.p50_seconds is not None and durations.p90_seconds is not None:
        axis.axhline(durations.p50_seconds / 60, color=BLUE, linestyle=":", linewidth=1)
        axis.axhline(durations.p90_seconds / 60, color=ORANGE, linestyle=":", linewidth=1)
    axis.set_ylim(bottom=0)
    axis.set_ylabel("minutes")
    axis.set_title("Deployment duration per day (dotted: whole window)")
    axis.legend(loc="upper left", fontsize=8)
    _date_axis(axis)


def _interval_bars(
    axis: Axes, rows: Sequence[StrategyRow | GatewayRow], labels: list[str], colors: list[str]
) -> None:
    rates = np.array([r.failure_rate.rate for r in rows], dtype=float)
    low = np.array([r.failure_rate.low for r in rows], dtype=float)
    high = np.array([r.failure_rate.high for r in rows], dtype=float)
    positions = np.arange(len(rows))
    axis.barh(positions, rates, color=colors, alpha=0.85)
    axis.errorbar(
        rates, positions, xerr=[rates - low, high - rates], fmt="none", ecolor="black", capsize=3
    )
    for y, (row, x) in enumerate(zip(rows, high, strict=True)):
        axis.text(x + 0.01, y, f"{_pct(row.failure_rate.rate)}  n={row.n:,}", va="center")
    axis.set_yticks(positions, labels)
    axis.invert_yaxis()
    axis.set_xlim(0, min(1.0, float(np.nanmax(high)) + 0.22) if len(rows) else 1.0)
    axis.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axis.set_xlabel("failure rate (bars: 95% Wilson interval)")


def _strategies(axis: Axes, result: DeploymentAnalytics) -> None:
    rows = sorted(result.breakdowns.by_strategy, key=lambda r: -(r.failure_rate.rate or 0))
    axis.set_title(f"Failure rate by strategy ({result.environment or 'all environments'})")
    if not rows:
        axis.text(0.5, 0.5, "no outcomes", ha="center", va="center", transform=axis.transAxes)
        return
    _interval_bars(axis, rows, [r.strategy for r in rows], [ORANGE] * len(rows))
    overall = result.failure_rate
    if overall is not None:
        axis.axvline(overall, color="black", linestyle=":", linewidth=1, label="all strategies")
        axis.legend(loc="lower right", fontsize=8)


def _gateways(axis: Axes, result: DeploymentAnalytics) -> None:
    rows = [r for r in result.breakdowns.by_gateway if r.n >= 1]
    rows.sort(key=lambda r: (-(r.failure_rate.low or 0), r.gateway))
    rows = rows[:MAX_GATEWAYS]
    axis.set_title("Top failing gateways")
    if not rows:
        axis.text(0.5, 0.5, "no outcomes", ha="center", va="center", transform=axis.transAxes)
        return
    several_environments = len({r.environment for r in rows}) > 1
    labels = [f"{r.gateway} ({r.environment})" if several_environments else r.gateway for r in rows]
    colors = [RED if r.significant and (r.failure_ratio or 0) > 1 else GREY for r in rows]
    _interval_bars(axis, rows, labels, colors)
    axis.legend(
        handles=[
            Patch(color=RED, label="significantly above the rest of its environment"),
            Patch(color=GREY, label="not significantly different or too few runs"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncol=2,
        fontsize=8,
        frameon=False,
    )
