"""How the pages word and group an answer's numbers (formatting only: nothing is computed
here that the answer does not already carry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from deploylearn.domain.answers.analytics import DeploymentAnalytics, GatewayRow, Rate

if TYPE_CHECKING:
    from deploylearn.serving.unknowns import Vocabulary
    from deploylearn.tracking.champion import ChampionRun

LABELS = {
    "success_rate": "Success rate",
    "failure_rate": "Failure rate",
    "rollback_rate": "Rollback rate",
    "rollback_success_rate": "Rollback success rate",
}
# The holdout metrics as the training run logs them: the candidate's under their own names,
# each baseline's as baseline.<key>.<short name>, and the gate's reference (the previous
# champion, or the serving fallback) as champion.* / fallback.*.
METRICS = {"brier_score": "brier", "roc_auc": "auc", "log_loss": "log_loss", "ece": "ece"}
METRIC_TITLES = {"brier": "Brier ↓", "auc": "ROC AUC ↑", "log_loss": "Log loss ↓", "ece": "ECE ↓"}


def label(metric: str) -> str:
    return LABELS.get(metric, metric.replace("_", " ").capitalize())


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f} %"


def interval(rate: Rate | tuple[float, float] | None) -> str:
    if rate is None:
        return "n/a"
    low, high = (rate.low, rate.high) if isinstance(rate, Rate) else rate
    return "n/a" if low is None or high is None else f"{pct(low)} – {pct(high)}"


def number(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def p_value(value: float | None) -> str:
    if value is None:
        return "not tested"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def hours(value: float | None) -> str:
    return "n/a" if value is None else duration(value * 3600)


def when(iso: str | None) -> str:
    """An ISO time as ``2025-03-01 08:00 UTC``."""
    if not iso:
        return "n/a"
    day, _, rest = iso.partition("T")
    return f"{day} {rest[:5]} UTC" if rest else day


def signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f} pts"


def verdict(test: Any) -> str:
    """A trend's or comparison's significance in words, by the answer's own numbers: the
    adjusted p-value decides; an unadjusted p < 0.05 alone is said to be that."""
    if getattr(test, "p_value", None) is None:
        return "not tested (a side is empty)"
    adjusted = getattr(test, "p_adjusted", None)
    if adjusted is not None and adjusted < 0.05:
        return "significant (adjusted p < 0.05)"
    if test.p_value < 0.05:
        return "not significant after adjustment"
    return "not significant"


FILTERS: dict[str, Any] = {
    "verdict": verdict,
    "pct": pct,
    "interval": interval,
    "number": number,
    "p_value": p_value,
    "duration": duration,
    "hours": hours,
    "when": when,
    "signed": signed,
    "label": label,
    "quote": lambda value: quote(str(value), safe=""),
}


@dataclass(frozen=True)
class Choices:
    """What the forms offer, from the serving state's vocabulary (every value seen)."""

    environments: list[str]
    strategies: list[str]
    gateways: list[str]
    resources: list[str]


def choices(vocabulary: Vocabulary | None) -> Choices:
    if vocabulary is None:
        return Choices([], [], [], [])
    return Choices(
        sorted(vocabulary.environments),
        sorted(vocabulary.strategies),
        sorted(vocabulary.gateways),
        sorted(vocabulary.resources),
    )


def gateway_rows(answer: DeploymentAnalytics, gateway: str | None) -> list[GatewayRow]:
    """The gateway breakdown: the asked gateway's rows, else the top failing ones."""
    if gateway:
        wanted = gateway.strip().lower()
        return [r for r in answer.breakdowns.by_gateway if r.gateway == wanted]
    return list(answer.breakdowns.top_failing_gateways)


@dataclass
class HoldoutRow:
    method: str
    values: dict[str, float] = field(default_factory=dict)


def holdout_table(metrics: dict[str, float]) -> list[HoldoutRow]:
    """The champion's holdout metrics first, then the gate's reference and each baseline."""
    rows: dict[str, HoldoutRow] = {}
    champion = HoldoutRow("champion (this model)")
    for name, short in METRICS.items():
        if name in metrics:
            champion.values[short] = metrics[name]
    if champion.values:
        rows[champion.method] = champion
    for name, value in sorted(metrics.items()):
        head, _, rest = name.partition(".")
        if head == "baseline":
            method, _, short = rest.rpartition(".")
        elif head in ("champion", "fallback"):
            method, short = f"gate reference ({head})", METRICS.get(rest, rest)
        else:
            continue
        if short in METRIC_TITLES and method:
            rows.setdefault(method, HoldoutRow(method.replace("_", " "))).values[short] = value
    return list(rows.values())


def mlflow_link(run: ChampionRun) -> dict[str, str | None]:
    """The run in the MLflow UI when the tracking URI is a server; otherwise how to open it
    (a local SQLite store has no UI until ``mlflow ui`` serves it)."""
    uri = run.tracking_uri
    path = f"#/experiments/{run.experiment_id}/runs/{run.run_id}"
    if uri.startswith(("http://", "https://")):
        return {"href": f"{uri.rstrip('/')}/{path}", "command": None}
    return {"href": None, "command": f"mlflow ui --backend-store-uri {uri}", "path": path}
