"""The dashboard's pure parts: SVG charts drawn from typed answers, the answers behind the
pattern pages, and the parsing of the pages' forms."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pandas as pd
from starlette.datastructures import QueryParams

from deploylearn.domain.answers.analytics import DailyRow, Rate
from deploylearn.domain.answers.patterns import PatternPeriod
from deploylearn.domain.records import DeploymentPattern
from deploylearn.service.dashboard import charts, present
from deploylearn.service.dashboard.options import Filters, configuration
from deploylearn.service.dashboard.session import safe_next
from deploylearn.serving.patterns import pattern_report, pattern_usage

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def test_interval_bars_draw_the_answer_numbers_and_escape_labels() -> None:
    rate = Rate(rate=0.8, low=0.7, high=0.9, count=80, n=100)
    empty = Rate(rate=None, low=None, high=None, count=0, n=0)
    svg = charts.interval_bars([("<prod & co>", rate), ("staging", empty)], "Rates")
    root = _parse(svg)
    assert root.find(f"{SVG}title").text == "Rates"
    description = root.find(f"{SVG}desc").text
    assert "<prod & co>: 80.0% (95 % interval 70.0% to 90.0%, n 100)" in description
    assert "staging: no outcome" in description
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 1 and float(bars[0].get("width")) == 0.8 * 420
    assert "&lt;prod &amp; co&gt;" in svg


def test_threshold_line_sits_at_the_gate() -> None:
    svg = charts.probability_bars([("plan", 0.5, (0.4, 0.6))], "P", threshold=0.75)
    assert "threshold 75.0%" in svg and "n=0" not in svg
    _parse(svg)


def test_daily_chart_stacks_successes_and_failures() -> None:
    days = [
        DailyRow(date=f"2025-03-0{i}", deployments=i + 2, successes=i, failures=2,
                 rollbacks=0, success_rate=i / (i + 2), duration_p50_seconds=None,
                 duration_p90_seconds=None)
        for i in range(1, 4)
    ]
    root = _parse(charts.daily_chart(days, "Daily"))
    assert len(root.findall(f"{SVG}rect")) == 6
    assert "6 succeeded and 6 failed" in root.find(f"{SVG}desc").text


def test_weekly_chart_has_one_line_per_environment() -> None:
    weeks = [
        PatternPeriod(week=w, environment=e, successes=s, failures=1, success_rate=s / (s + 1))
        for w, e, s in [
            ("2025-03-03", "production", 3),
            ("2025-03-10", "production", 1),
            ("2025-03-03", "staging", 4),
        ]
    ]
    root = _parse(charts.weekly_chart(weeks, "Weekly"))
    lines = [p for p in root.findall(f"{SVG}path") if p.get("fill") == "none"]
    assert any(p.get("stroke") == charts.PALETTE[0] for p in lines)  # production's line
    assert len(root.findall(f"{SVG}circle")) == 3
    assert "production: 2 weeks, 4 of 6 runs succeeded" in root.find(f"{SVG}desc").text


def _frame() -> pd.DataFrame:
    start = datetime(2025, 3, 3, tzinfo=UTC)
    rows = []
    for i in range(40):
        rows.append(
            {
                "execution_id": f"e{i}",
                "pattern_id": "p1" if i % 4 else "p2",
                "target_environment": "production" if i % 2 else "staging",
                "gateway_host": f"gw{i % 3}",
                "resources_deployed": ["project", "database"] if i % 5 else ["project"],
                "outcome": "success" if i % 3 else "failure",
                "rollback_triggered": i % 6 == 0,
                "started_at": pd.Timestamp(start + timedelta(days=i)),
            }
        )
    return pd.DataFrame(rows)


PATTERNS = [
    DeploymentPattern(pattern_id="p1", pattern_name="one", deployment_strategy="rolling",
                      configuration_template={"backup_enabled": True}),
    DeploymentPattern(pattern_id="p2", pattern_name="two", deployment_strategy="direct",
                      configuration_template={}),
]


def test_pattern_usage_filters_narrow_the_counts() -> None:
    frame = _frame()
    every = pattern_usage(frame, PATTERNS)
    assert every.executions == 40 and [p.pattern_id for p in every.patterns] == ["p1", "p2"]
    assert sum(p.runs for p in every.patterns) == 40
    production = pattern_usage(frame, PATTERNS, environment="production")
    assert production.executions == 20
    both = pattern_usage(frame, PATTERNS, resource_types=["database", "project"])
    assert both.executions == 32
    recent = pattern_usage(frame, PATTERNS, days_back=10)
    assert recent.executions == 10 and recent.filter.end is not None
    one = every.patterns[0]
    assert one.success_rate.n == one.runs and one.success_rate.low < one.success_rate.rate


def test_pattern_report_counts_weeks_per_environment() -> None:
    report = pattern_report(_frame(), PATTERNS[0], [])
    assert sum(e.runs for e in report.by_environment) == 30
    assert sum(w.successes + w.failures for w in report.weekly) == 30
    assert all(datetime.fromisoformat(w.week).weekday() == 0 for w in report.weekly)
    assert report.weekly == sorted(report.weekly, key=lambda w: (w.week, w.environment))


def test_forms_parse_filters_and_refuse_bad_configuration() -> None:
    f = Filters.of(QueryParams("environment=production&resources=project&resources=db,x&days=x"))
    assert f.environment == "production" and f.resources == ("project", "db", "x")
    assert f.days == 30 and f.gateway is None
    assert configuration('{"a": 1}') == ({"a": 1}, None)
    assert "not JSON" in (configuration("{nope")[1] or "")
    assert "JSON object" in (configuration("[1]")[1] or "")


def test_sign_in_goes_back_only_inside_the_dashboard() -> None:
    assert safe_next("/ui/patterns?days=7") == "/ui/patterns?days=7"
    for outside in ("https://elsewhere.example", "//elsewhere.example/ui", "/v1/executions", None):
        assert safe_next(outside) == "/ui"


def test_holdout_table_puts_the_champion_first_then_baselines() -> None:
    table = present.holdout_table(
        {
            "brier_score": 0.12, "roc_auc": 0.8, "time_train_s": 5.0,
            "baseline.global_rate.brier": 0.16, "baseline.global_rate.auc": 0.5,
            "fallback.brier_score": 0.14,
        }
    )
    assert [r.method for r in table] == [
        "champion (this model)", "global rate", "gate reference (fallback)"
    ]
    assert table[0].values == {"brier": 0.12, "auc": 0.8}
    assert table[2].values == {"brier": 0.14}


def test_significance_is_worded_from_the_adjusted_p_value() -> None:
    class T:
        def __init__(self, p: float | None, adjusted: float | None) -> None:
            self.p_value, self.p_adjusted = p, adjusted

    assert present.verdict(T(0.01, 0.03)) == "significant (adjusted p < 0.05)"
    assert present.verdict(T(0.01, 0.2)) == "not significant after adjustment"
    assert present.verdict(T(0.4, 0.8)) == "not significant"
    assert present.verdict(T(None, None)).startswith("not tested")
