"""Charts as inline SVG strings, drawn from the typed answers and nothing else: pure functions
(answer in, markup out) so a chart shows exactly the numbers of the ``--json`` answer and is
testable without a browser. Every chart has a ``<title>`` and a text description for screen
readers; the pages also show the numbers in a table. Colours: the Okabe–Ito palette (safe for
colour-blind readers), with markers and dashes so that no series is told apart by colour alone.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from html import escape

from deploylearn.domain.answers.analytics import DailyRow, Rate
from deploylearn.domain.answers.patterns import PatternPeriod

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "4 4", "1 2", "10 4")
SUCCESS, FAILURE, AXIS, GRID = "#0072B2", "#D55E00", "#3b3b3b", "#d0d0d0"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _svg(width: int, height: int, title: str, description: str, body: str) -> str:
    ident = f"c{zlib.crc32((title + description + body).encode()):08x}"
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg" {FONT}>'
        f'<title id="{ident}-t">{escape(title)}</title>'
        f'<desc id="{ident}-d">{escape(description)}</desc>{body}</svg>'
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{AXIS}" {extra}>'
        f"{escape(text)}</text>"
    )


def interval_bars(
    items: Sequence[tuple[str, Rate]], title: str, *, threshold: float | None = None
) -> str:
    """One row per labelled rate: a bar to the rate and a whisker over its interval (the
    answer's ``low``/``high``), with n beside it; ``threshold`` draws a dashed line."""
    label_w, bar_w, right, row_h = 190, 420, 150, 28
    width, height = label_w + bar_w + right, 30 + row_h * max(len(items), 1) + 24
    parts = [_axis_0_1(label_w, bar_w, 24, height - 24)]
    described = []
    for i, (label, rate) in enumerate(items):
        y = 30 + i * row_h
        parts.append(_text(label_w - 8, y + 14, _short(label, 28), "end"))
        if rate.rate is None:
            parts.append(_text(label_w + 4, y + 14, "no outcome (n = 0)"))
            described.append(f"{label}: no outcome")
            continue
        parts.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{rate.rate * bar_w:.1f}" height="14" '
            f'fill="{SUCCESS}" fill-opacity="0.75"/>'
        )
        if rate.low is not None and rate.high is not None:
            x0, x1 = label_w + rate.low * bar_w, label_w + rate.high * bar_w
            parts.append(
                f'<path d="M{x0:.1f} {y + 11}H{x1:.1f}M{x0:.1f} {y + 5}V{y + 17}'
                f'M{x1:.1f} {y + 5}V{y + 17}" stroke="{AXIS}" stroke-width="1.5" fill="none"/>'
            )
        parts.append(
            _text(label_w + bar_w + 8, y + 14, f"{_pct(rate.rate)}  n={rate.n:,}", "start")
        )
        described.append(
            f"{label}: {_pct(rate.rate)} (95 % interval {_pct(rate.low)} to "
            f"{_pct(rate.high)}, n {rate.n})"
        )
    if threshold is not None:
        x = label_w + threshold * bar_w
        parts.append(
            f'<path d="M{x:.1f} 22V{height - 24}" stroke="{FAILURE}" stroke-width="2" '
            f'stroke-dasharray="5 3"/>'
        )
        parts.append(_text(x, 16, f"threshold {_pct(threshold)}", "middle"))
    return _svg(width, height, title, "; ".join(described) or "nothing to show", "".join(parts))


def probability_bars(
    items: Sequence[tuple[str, float, tuple[float, float]]],
    title: str,
    *,
    threshold: float | None = None,
) -> str:
    """Probabilities with their credible intervals (recommendations, predictions)."""
    as_rates = [
        (label, Rate(rate=p, low=lo, high=hi, count=0, n=0)) for label, p, (lo, hi) in items
    ]
    svg = interval_bars(as_rates, title, threshold=threshold)
    return svg.replace("  n=0<", "<")


def _axis_0_1(x0: int, width: int, top: int, bottom: int) -> str:
    parts = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = x0 + tick * width
        parts.append(f'<path d="M{x:.1f} {top}V{bottom}" stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(x, bottom + 16, f"{tick:.0%}", "middle"))
    return "".join(parts)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def daily_chart(daily: Sequence[DailyRow], title: str) -> str:
    """Deployments per day of the window, successes and failures stacked."""
    left, plot_w, plot_h, top = 48, 680, 180, 14
    width, height = left + plot_w + 16, top + plot_h + 44
    peak = max((d.successes + d.failures for d in daily), default=0)
    scale = plot_h / peak if peak else 0.0
    step = plot_w / max(len(daily), 1)
    parts = [
        f'<path d="M{left} {top}V{top + plot_h}H{left + plot_w}" stroke="{AXIS}" fill="none"/>',
        _text(left - 6, top + 10, f"{peak:,}", "end"),
        _text(left - 6, top + plot_h, "0", "end"),
    ]
    for i, day in enumerate(daily):
        x = left + i * step + step * 0.1
        w = max(step * 0.8, 1.0)
        ok_h, bad_h = day.successes * scale, day.failures * scale
        base = top + plot_h
        parts.append(
            f'<rect x="{x:.1f}" y="{base - ok_h:.1f}" width="{w:.1f}" height="{ok_h:.1f}" '
            f'fill="{SUCCESS}"><title>{escape(day.date)}: {day.successes} succeeded, '
            f"{day.failures} failed</title></rect>"
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{base - ok_h - bad_h:.1f}" width="{w:.1f}" '
            f'height="{bad_h:.1f}" fill="{FAILURE}" fill-opacity="0.9"/>'
        )
    if daily:
        parts.append(_text(left, top + plot_h + 16, daily[0].date))
        parts.append(_text(left + plot_w, top + plot_h + 16, daily[-1].date, "end"))
    parts.append(_legend(left, height - 8, [("succeeded", SUCCESS, ""), ("failed", FAILURE, "")]))
    total_ok = sum(d.successes for d in daily)
    total_bad = sum(d.failures for d in daily)
    description = (
        f"{len(daily)} days; {total_ok:,} succeeded and {total_bad:,} failed; busiest day "
        f"{peak:,} deployments with an outcome"
    )
    return _svg(width, height, title, description, "".join(parts))


def _legend(x: float, y: float, entries: Sequence[tuple[str, str, str]]) -> str:
    parts, offset = [], 0.0
    for label, colour, dash in entries:
        parts.append(
            f'<path d="M{x + offset:.1f} {y - 4}h18" stroke="{colour}" stroke-width="4" '
            f'stroke-dasharray="{dash}"/>'
        )
        parts.append(_text(x + offset + 22, y, label))
        offset += 30 + 7.5 * len(label)
    return "".join(parts)


def weekly_chart(weekly: Sequence[PatternPeriod], title: str) -> str:
    """A pattern's weekly success rate, one line per environment (markers sized by runs)."""
    left, plot_w, plot_h, top = 48, 680, 200, 14
    weeks = sorted({p.week for p in weekly})
    envs = sorted({p.environment for p in weekly})
    width, height = left + plot_w + 16, top + plot_h + 44 + 18 * ((len(envs) + 3) // 4)
    where = {w: i for i, w in enumerate(weeks)}
    step = plot_w / max(len(weeks) - 1, 1)
    parts = [
        f'<path d="M{left} {top}V{top + plot_h}H{left + plot_w}" stroke="{AXIS}" fill="none"/>'
    ]
    for tick in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - tick)
        parts.append(f'<path d="M{left} {y:.1f}H{left + plot_w}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, f"{tick:.0%}", "end"))
    described, legend = [], []
    for j, env in enumerate(envs):
        colour, dash = PALETTE[j % len(PALETTE)], DASHES[j % len(DASHES)]
        points = sorted((p for p in weekly if p.environment == env), key=lambda p: p.week)
        xy = [
            (left + where[p.week] * step, top + plot_h * (1 - p.success_rate), p) for p in points
        ]
        if len(xy) > 1:
            path = "M" + "L".join(f"{x:.1f} {y:.1f}" for x, y, _ in xy)
            parts.append(
                f'<path d="{path}" stroke="{colour}" stroke-width="2" fill="none" '
                f'stroke-dasharray="{dash}"/>'
            )
        for x, y, p in xy:
            runs = p.successes + p.failures
            r = 2.5 + min(runs, 50) ** 0.5 * 0.6
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{colour}">'
                f"<title>{escape(env)}, week of {escape(p.week)}: {p.successes}/{runs} "
                f"succeeded</title></circle>"
            )
        runs = sum(p.successes + p.failures for p in points)
        ok = sum(p.successes for p in points)
        described.append(f"{env}: {len(points)} weeks, {ok} of {runs} runs succeeded")
        legend.append((env, colour, dash))
    if weeks:
        parts.append(_text(left, top + plot_h + 16, weeks[0]))
        parts.append(_text(left + plot_w, top + plot_h + 16, weeks[-1], "end"))
    for row in range(0, len(legend), 4):
        parts.append(_legend(left, top + plot_h + 38 + 18 * (row // 4), legend[row : row + 4]))
    return _svg(width, height, title, "; ".join(described) or "no runs", "".join(parts))


def metric_bars(items: Sequence[tuple[str, float]], title: str, unit: str = "") -> str:
    """Horizontal bars of one metric across methods (the champion's holdout comparison);
    the scale starts at 0 and ends at the largest value."""
    label_w, bar_w, right, row_h = 210, 400, 90, 26
    width, height = label_w + bar_w + right, 12 + row_h * max(len(items), 1)
    peak = max((v for _, v in items), default=0.0) or 1.0
    parts, described = [], []
    for i, (label, value) in enumerate(items):
        y = 8 + i * row_h
        parts.append(_text(label_w - 8, y + 13, _short(label, 30), "end"))
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{value / peak * bar_w:.1f}" height="14" '
            f'fill="{PALETTE[0] if i == 0 else "#7a7a7a"}"/>'
        )
        parts.append(_text(label_w + value / peak * bar_w + 6, y + 14, f"{value:.4f}{unit}"))
        described.append(f"{label}: {value:.4f}")
    return _svg(width, height, title, "; ".join(described) or "nothing", "".join(parts))
