"""Pattern usage under a filter and one pattern's record over time: counts over the
executions frame (``Store.executions_frame()``), rates with Wilson intervals."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from deploylearn.domain.answers.analytics import Rate
from deploylearn.domain.answers.patterns import (
    PatternEnvironment,
    PatternFilter,
    PatternPeriod,
    PatternReport,
    PatternUsage,
    PatternUsageRow,
)
from deploylearn.domain.answers.recommendations import SimilarPattern
from deploylearn.domain.records import DeploymentPattern
from deploylearn.serving.stats import wilson_interval

_OUTCOMES = ("success", "failure")


def rate(count: int, n: int) -> Rate:
    interval = wilson_interval(count, n)
    return Rate(
        rate=count / n if n else None,
        low=interval[0] if interval else None,
        high=interval[1] if interval else None,
        count=int(count),
        n=int(n),
    )


def _iso(value: object) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def _with_outcome(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[frame["outcome"].isin(_OUTCOMES)]


def pattern_usage(
    frame: pd.DataFrame,
    patterns: Sequence[DeploymentPattern],
    *,
    environment: str | None = None,
    gateway_host: str | None = None,
    resource_types: Sequence[str] = (),
    days_back: int | None = None,
) -> PatternUsage:
    """Per pattern, its runs with an outcome matching every given field; the window ends at
    the newest execution (as analytics' does), so an old store still shows its last days."""
    runs = _with_outcome(frame)
    end = runs["started_at"].max() if len(runs) else None
    since = None
    if environment:
        runs = runs.loc[runs["target_environment"] == environment]
    if gateway_host:
        runs = runs.loc[runs["gateway_host"] == gateway_host]
    if days_back is not None and end is not None:
        since = end - pd.Timedelta(days=days_back)
        runs = runs.loc[runs["started_at"] > since]
    wanted = set(resource_types)
    if wanted and len(runs):
        runs = runs.loc[runs["resources_deployed"].map(wanted.issubset)]
    by_id = {p.pattern_id: p for p in patterns}
    rows = []
    if len(runs):
        grouped = runs.assign(
            ok=runs["outcome"] == "success", rb=runs["rollback_triggered"].astype(bool)
        ).groupby("pattern_id", sort=False)
        table = grouped.agg(
            runs=("ok", "size"), ok=("ok", "sum"), rb=("rb", "sum"), last=("started_at", "max")
        ).sort_values(["runs", "last"], ascending=False)
        for pattern_id, row in table.iterrows():
            known = by_id.get(str(pattern_id))
            rows.append(
                PatternUsageRow(
                    pattern_id=str(pattern_id),
                    pattern_name=known.pattern_name if known else str(pattern_id),
                    deployment_strategy=known.deployment_strategy if known else "",
                    runs=int(row["runs"]),
                    success_rate=rate(int(row["ok"]), int(row["runs"])),
                    rollbacks=int(row["rb"]),
                    last_used=_iso(row["last"]),
                )
            )
    return PatternUsage(
        filter=PatternFilter(
            environment=environment,
            gateway_host=gateway_host,
            resource_types=sorted(wanted),
            days_back=days_back,
            since=_iso(since),
            end=_iso(end),
        ),
        executions=len(runs),
        patterns=rows,
    )


def pattern_report(
    frame: pd.DataFrame, pattern: DeploymentPattern, similar: list[SimilarPattern]
) -> PatternReport:
    """One pattern's configuration, its runs per environment and per week, and its nearest
    patterns (``similar``, from the serving state)."""
    runs = _with_outcome(frame.loc[frame["pattern_id"] == pattern.pattern_id])
    runs = runs.assign(ok=runs["outcome"] == "success", rb=runs["rollback_triggered"].astype(bool))
    envs = []
    for env, group in runs.groupby("target_environment", sort=False):
        envs.append(
            PatternEnvironment(
                environment=str(env),
                runs=len(group),
                success_rate=rate(int(group["ok"].sum()), len(group)),
                rollbacks=int(group["rb"].sum()),
                first_run=_iso(group["started_at"].min()),
                last_run=_iso(group["started_at"].max()),
            )
        )
    envs.sort(key=lambda e: (-e.runs, e.environment))
    weekly = []
    if len(runs):
        day = runs["started_at"].dt.tz_convert("UTC").dt.normalize()
        week = (day - pd.to_timedelta(day.dt.day_of_week, unit="D")).dt.date
        table = runs.assign(week=week).groupby(["week", "target_environment"], sort=True)
        for (monday, env), group in table:
            ok = int(group["ok"].sum())
            weekly.append(
                PatternPeriod(
                    week=str(monday),
                    environment=str(env),
                    successes=ok,
                    failures=len(group) - ok,
                    success_rate=ok / len(group),
                )
            )
    return PatternReport(
        pattern_id=pattern.pattern_id,
        pattern_name=pattern.pattern_name,
        deployment_strategy=pattern.deployment_strategy,
        configuration_template=pattern.configuration_template,
        success_count=pattern.success_count,
        failure_count=pattern.failure_count,
        first_seen=_iso(pattern.first_seen),
        last_used=_iso(pattern.last_used),
        by_environment=envs,
        weekly=weekly,
        similar_patterns=similar,
    )
