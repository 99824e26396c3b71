"""``ign deploy recommendations|predict|adaptations|rollback-scenarios|analytics``.

Each command calls one ``DeploymentPatternLearner`` method and renders its dict: rich tables,
or with ``--json`` the same dict the Python method returns. ``predict --fail-below P`` exits
``EXIT_RISK_GATE`` when a planned deployment's success probability is below P, or when it
names a context the store never saw, or the champion learned from another store (unless
``--allow-unknown``), for CI (``serving.risk_gate``). Unknown values are warned about in tables.
With ``--server URL`` the same question goes to a running ``ign serve`` (``cli/remote.py``) and
its answer, validated into the same model, is rendered by the same code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from deploylearn.cli.common import JsonOption, StoreOption, err, out, parse_config, print_json, show
from deploylearn.cli.remote import ServerOption, TokenOption, asker, server_for
from deploylearn.domain.records import split_resources
from deploylearn.errors import InputFileError

if TYPE_CHECKING:
    from deploylearn.domain.answers.analytics import DeploymentAnalytics
    from deploylearn.domain.answers.prediction import PredictionAnswer
    from deploylearn.domain.answers.recommendations import Recommendations
    from deploylearn.domain.answers.rollbacks import Scenario

EXIT_RISK_GATE = 7

NoModelOption = Annotated[
    bool,
    typer.Option(
        "--no-model",
        help="Answer from the empirical prior even if a champion model is registered "
        "(not with --server: the service decides).",
    ),
]


def _split(value: str | None, option: str, *, required: bool = True) -> list[str]:
    """Comma-separated values; ``--resources`` also takes ``;`` (records.split_resources)."""
    if option == "--resources":
        items = split_resources(value or "")
    else:
        items = [v.strip() for v in (value or "").split(",") if v.strip()]
    if required and not items:
        raise InputFileError(f"{option}: name at least one value (comma-separated)")
    return items


def register(deploy_app: typer.Typer) -> None:
    """Add the question commands to ``ign deploy``."""
    deploy_app.command("recommendations")(recommendations)
    deploy_app.command("predict")(predict)
    deploy_app.command("adaptations")(adaptations)
    deploy_app.command("rollback-scenarios")(rollback_scenarios)
    deploy_app.command("analytics")(analytics)


# -- recommendations -------------------------------------------------------------------------
def recommendations(
    ctx: typer.Context,
    environment: Annotated[str, typer.Option("--environment", "-e", help="Target environment.")],
    resources: Annotated[
        str, typer.Option("--resources", "-r", help="Resource types, comma-separated.")
    ],
    strategy: Annotated[
        str | None, typer.Option("--strategy", "-s", help="Only patterns of this strategy.")
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option("--gateway", "-g", help="Target gateway (default: the environment's mix)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=100)] = 5,
    no_model: NoModelOption = False,
    store: StoreOption = None,
    server: ServerOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Patterns to use for a context, best first, with intervals and reasons.

    Ranked by the champion's success probability blended with each pattern's time-decayed
    Beta posterior (by its 10 % quantile); works before any training from the empirical prior.
    """
    resource_list = _split(resources, "--resources")
    remote = server_for(ctx, server, store, token, no_model=no_model)
    with asker(store, remote, token, use_model=not no_model) as learner:
        answer = learner.recommend(
            target_environment=environment,
            resource_types=resource_list,
            deployment_strategy=strategy,
            gateway_host=gateway,
            limit=limit,
        )
    if as_json:
        print_json(answer.model_dump(mode="json"))
        return
    print_recommendations(answer)


def print_recommendations(answer: Recommendations) -> None:
    context = answer.context
    where = f"{context.target_environment}: {', '.join(context.resource_types)}"
    if not answer.recommendations:
        out.print(f"no recommendation for {where}: {'; '.join(answer.notes or [])}")
        _print_warnings(answer.warnings)
        return
    table = Table(title=f"recommendations for {where}")
    table.add_column("#", justify="right")
    table.add_column("pattern")
    table.add_column("P(success)", justify="right")
    table.add_column("90% interval", justify="right")
    table.add_column("confidence", justify="right")
    table.add_column("in env: ok / failed", justify="right")
    for rank, a in enumerate(answer.recommendations, 1):
        low, high = a.credible_interval
        table.add_row(
            str(rank),
            a.pattern_name,
            f"{a.success_probability:.3f}",
            f"{low:.2f}–{high:.2f}",
            f"{a.confidence_score:.3f}",
            f"{a.success_count} / {a.failure_count}",
        )
    show(table)
    model = answer.model
    source = f"champion v{model.version}" if model else "no trained model (empirical prior)"
    out.print(f"candidates: {answer.candidate_tier}; probabilities from {source}")
    _print_warnings(answer.warnings)
    best = answer.recommendations[0]
    out.print("why #1:", highlight=False)
    for reason in best.applicability_reasons:
        out.print(f"  - {reason}", highlight=False)
    if best.similar_patterns:
        names = ", ".join(s.pattern_name or s.pattern_id for s in best.similar_patterns)
        out.print(f"similar patterns: {names}", highlight=False)


# -- predict ---------------------------------------------------------------------------------
def predict(
    ctx: typer.Context,
    environment: Annotated[
        str | None, typer.Option("--environment", "-e", help="Target environment.")
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option("--gateway", "-g", help="Target gateway (default: the most used one)."),
    ] = None,
    strategy: Annotated[
        str | None, typer.Option("--strategy", "-s", help="blue_green, rolling, canary, …")
    ] = None,
    resources: Annotated[
        str | None, typer.Option("--resources", "-r", help="Resource types, comma-separated.")
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", "-c", help="Configuration: a JSON file or JSON text.")
    ] = None,
    source_environment: Annotated[
        str | None,
        typer.Option("--source-environment", help="Promoted from (default: the usual one)."),
    ] = None,
    deployment_type: Annotated[
        str | None, typer.Option("--type", "-t", help="install, update, hotfix, …")
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Planned deployments, one JSON object per line."),
    ] = None,
    fail_below: Annotated[
        float | None,
        typer.Option(
            "--fail-below",
            min=0.0,
            max=1.0,
            help=f"Exit {EXIT_RISK_GATE} if any success probability is below this, or a planned "
            "deployment names an environment, strategy, gateway or resource type never seen, or "
            "the champion learned from another store (CI gate).",
        ),
    ] = None,
    allow_unknown: Annotated[
        bool,
        typer.Option(
            "--allow-unknown",
            help="With --fail-below: gate on the probability alone, even for unknown contexts "
            "or a champion refused for this store.",
        ),
    ] = False,
    no_model: NoModelOption = False,
    store: StoreOption = None,
    server: ServerOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Risk of planned deployments; --fail-below makes it a CI gate.

    Success probability with an interval, the top risk factors and the most similar past
    failures, for one deployment given by options or many in a JSON Lines file.
    """
    planned = _planned(
        from_file,
        environment,
        gateway,
        strategy,
        resources,
        config,
        source_environment,
        deployment_type,
    )
    remote = server_for(ctx, server, store, token, no_model=no_model)
    answer = _predicted(planned, store, remote, token, not no_model, fail_below, allow_unknown)
    gate = answer.gate
    if as_json:
        print_json(answer.model_dump(mode="json"))
    else:
        _print_predictions(answer)
    if gate is not None and not gate.passed:
        hint = (
            ""
            if allow_unknown or not (gate.unknown or gate.model_refused)
            else (" (--allow-unknown gates on the probability alone)")
        )
        err.print(
            f"risk gate: failed: {'; '.join(gate.reasons)}{hint}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_RISK_GATE)


def _predicted(
    planned: list[dict[str, Any]],
    store: str | None,
    remote: str | None,
    token: str | None,
    use_model: bool,
    fail_below: float | None,
    allow_unknown: bool,
) -> PredictionAnswer:
    """The answer with the gate when ``fail_below`` is given: a service gates by the same
    ``risk_gate`` as here (``POST /v1/predict`` with ``fail_below``)."""
    if remote is not None:
        from deploylearn.client import ServiceClient

        with ServiceClient(remote, token) as client:
            return client.predict(planned, fail_below, allow_unknown=allow_unknown)
    from deploylearn.learner import DeploymentPatternLearner

    with DeploymentPatternLearner.open(store, use_model=use_model, create=False) as learner:
        answer = learner.predict(planned)
    if fail_below is None:
        return answer
    from deploylearn.serving.risk_gate import risk_gate

    gate = risk_gate(answer, fail_below, allow_unknown=allow_unknown)
    return answer.model_copy(update={"gate": gate})


def _planned(
    from_file: Path | None,
    environment: str | None,
    gateway: str | None,
    strategy: str | None,
    resources: str | None,
    config: str | None,
    source_environment: str | None,
    deployment_type: str | None,
) -> list[dict[str, Any]]:
    if from_file is not None:
        if any((environment, gateway, strategy, resources, config)):
            raise InputFileError("--file: give planned deployments in the file or as options")
        try:
            lines = from_file.read_text().splitlines()
        except OSError as exc:
            raise InputFileError(f"{from_file}: {exc.strerror}") from None
        planned = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                planned.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise InputFileError(f"{from_file} line {number}: not valid JSON ({exc})") from None
        if not planned:
            raise InputFileError(f"{from_file}: no planned deployment in the file")
        return planned
    missing = [
        name
        for name, value in (
            ("--environment", environment),
            ("--strategy", strategy),
            ("--resources", resources),
        )
        if not value
    ]
    if missing:
        raise InputFileError(f"predict needs {', '.join(missing)} (or --file)")
    fields: dict[str, Any] = {
        "target_environment": environment,
        "deployment_strategy": strategy,
        "resources_deployed": _split(resources, "--resources"),
        "configuration_used": parse_config(config),
    }
    for key, value in (
        ("gateway_host", gateway),
        ("source_environment", source_environment),
        ("deployment_type", deployment_type),
    ):
        if value:
            fields[key] = value
    return [fields]


def _print_predictions(answer: PredictionAnswer) -> None:
    table = Table(title="planned deployments")
    for column in ("#", "environment", "strategy", "P(success)", "90% interval", "top risk"):
        table.add_column(column, justify="right" if column in ("#", "P(success)") else "left")
    for i, p in enumerate(answer.predictions, 1):
        low, high = p.credible_interval
        risk = p.risk_factors[0].detail if p.risk_factors else "—"
        table.add_row(
            str(i),
            str(p.planned["target_environment"]),
            str(p.planned["deployment_strategy"]),
            f"{p.success_probability:.3f}",
            f"{low:.2f}–{high:.2f}",
            risk,
        )
    show(table)
    _print_warnings(answer.warnings)
    for i, p in enumerate(answer.predictions, 1):
        _print_warnings(p.warnings or [], prefix=f"#{i} ")
        if p.similar_past_failures:
            first = p.similar_past_failures[0]
            issues = "; ".join(first.issues) or first.status
            out.print(
                f"#{i} most similar past failure: {first.execution_id} "
                f"({first.started_at[:10]}, {first.gateway_host}): {issues}",
                highlight=False,
            )


def _print_warnings(warnings: list[str], prefix: str = "") -> None:
    for warning in warnings:
        out.print(f"{prefix}warning: {warning}", style="yellow", highlight=False, markup=False)


# -- adaptations -----------------------------------------------------------------------------
def adaptations(
    ctx: typer.Context,
    source: Annotated[str, typer.Option("--source", "-s", help="Source environment.")],
    target: Annotated[str, typer.Option("--target", "-t", help="Target environment.")],
    resource: Annotated[
        str | None, typer.Option("--resource", "-r", help="Only this resource type.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=50)] = 3,
    store: StoreOption = None,
    server: ServerOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """How configurations change between two environments, mined from successful runs.

    Each rule with its support, confidence and success uplift; recorded adaptations too.
    """
    remote = server_for(ctx, server, store, token)
    with asker(store, remote, token, use_model=False) as learner:
        answer = learner.adaptations(source, target, resource, limit)
    if as_json:
        print_json(answer.model_dump(mode="json"))
        return
    where = f"{answer.source_environment} → {answer.target_environment}"
    if not answer.adaptations:
        out.print(f"no adaptation found for {where} (too few successful runs in both?)")
        return
    for a in answer.adaptations:
        table = Table(title=f"{a.adaptation_name} ({a.source})", show_header=True)
        table.add_column("rule")
        for rule in a.adaptation_rules:
            table.add_row(rule)
        show(table)
        evidence = {
            "support": a.support,
            "confidence": a.confidence,
            "success uplift": a.success_uplift,
        }
        evidence = {k: v for k, v in evidence.items() if v is not None}
        if evidence:
            out.print(
                "  " + ", ".join(f"{k} {v}" for k, v in evidence.items()),
                highlight=False,
            )


# -- rollback scenarios ----------------------------------------------------------------------
def rollback_scenarios(
    ctx: typer.Context,
    environment: Annotated[str, typer.Option("--environment", "-e")],
    resources: Annotated[
        str | None, typer.Option("--resources", "-r", help="Resource types, comma-separated.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=50)] = 3,
    store: StoreOption = None,
    server: ServerOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rollback scenarios learned from past rollbacks.

    Trigger conditions, an ordered procedure, rollback success odds and recovery time.
    """
    resource_list = _split(resources, "--resources", required=False)
    remote = server_for(ctx, server, store, token)
    with asker(store, remote, token, use_model=False) as learner:
        answer = learner.rollback_scenarios(environment, resource_list or None, limit)
    if as_json:
        print_json(answer.model_dump(mode="json"))
        return
    if not answer.scenarios:
        out.print(f"no rollback learned yet for {answer.environment}")
        return
    for s in answer.scenarios:
        out.print(_scenario_table(s))


def _scenario_table(s: Scenario) -> Table:
    table = Table(title=s.scenario_name, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    odds = s.rollback_success
    low, high = odds.credible_interval
    table.add_row(
        "rollback succeeds",
        f"{odds.probability:.0%} ({odds.credible_level:.0%} interval {low:.0%}–{high:.0%}; "
        f"{odds.successes} of {odds.successes + odds.failures})",
    )
    recovery = s.recovery_time
    if recovery.samples and recovery.p50_seconds is not None and recovery.p90_seconds is not None:
        table.add_row(
            "recovery time",
            f"p50 {recovery.p50_seconds / 60:.1f} min, p90 {recovery.p90_seconds / 60:.1f} "
            f"min (n={recovery.samples}, from {recovery.basis})",
        )
    if s.trigger_condition:
        rate = s.rollback_rate_given_trigger
        share = f" (rolled back {rate:.0%} of the time)" if rate is not None else ""
        table.add_row("trigger", f"{s.trigger_condition}{share}")
    table.add_row("procedure", "\n".join(s.procedure))
    for note in s.risk_notes:
        table.add_row("risk", note)
    return table


# -- analytics -------------------------------------------------------------------------------
def analytics(
    ctx: typer.Context,
    environment: Annotated[str | None, typer.Option("--environment", "-e")] = None,
    days: Annotated[int, typer.Option("--days", "-d", min=1, max=3650, help="Window length.")] = 30,
    metrics: Annotated[
        str | None,
        typer.Option("--metrics", "-m", help="e.g. duration,success_rate (default: all)."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Also write a PNG dashboard to this file.")
    ] = None,
    store: StoreOption = None,
    server: ServerOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deployment analytics for a window: rates, durations, DORA, trends, insights.

    Rates with intervals, duration p50/p90, DORA measures, trends against the previous window
    with significance tests, insights in plain words, and with --plot a PNG dashboard.
    """
    metric_list = _split(metrics, "--metrics", required=False) or None
    remote = server_for(ctx, server, store, token)
    with asker(store, remote, token, use_model=False) as learner:
        answer = learner.analytics(environment, days, metric_list)
        if plot is not None:  # drawn here from the answer, served or not: one answer, one plot
            from deploylearn.serving.analytics_plot import analytics_plot

            answer = answer.model_copy(update={"plot": str(analytics_plot(answer, plot))})
    if as_json:
        print_json(answer.model_dump(mode="json"))
        return
    _print_analytics(answer)


def _print_analytics(answer: DeploymentAnalytics) -> None:
    from deploylearn.domain.answers.analytics import MetricTrend, RateTrend

    window = answer.window
    title = (
        f"{window.environment or 'all environments'}: "
        f"{window.start[:10]} – {window.end[:10]} ({window.days} days)"
    )
    table = Table(title=title)
    for column in ("measure", "now", "95% interval", "previous", "p-value"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    trends = answer.trends.by_metric
    for name, rate in answer.rates.items():
        trend = trends.get(name)
        previous = trend.previous.rate if isinstance(trend, RateTrend) else None
        table.add_row(
            name.replace("_", " "),
            f"{rate.rate:.1%} of {rate.n}" if rate.rate is not None else "—",
            f"{rate.low:.1%}–{rate.high:.1%}"
            if rate.low is not None and rate.high is not None
            else "—",
            f"{previous:.1%}" if previous is not None else "—",
            _p(trend.p_value if trend is not None else None),
        )
    durations = answer.durations
    if (
        durations is not None
        and durations.p50_seconds is not None
        and durations.p90_seconds is not None
    ):
        duration = trends.get("duration")
        previous = duration.previous.p50 if isinstance(duration, MetricTrend) else None
        table.add_row(
            "duration p50 / p90",
            f"{durations.p50_seconds / 60:.1f} / {durations.p90_seconds / 60:.1f} min",
            "",
            f"{previous / 60:.1f} min" if previous is not None else "—",
            _p(duration.p_value if duration is not None else None),
        )
    dora = answer.dora
    table.add_row(
        "deployments per day",
        f"{dora.deployment_frequency.successful_per_day:.1f} successful",
        "",
        "",
        "",
    )
    restore = dora.time_to_restore_service
    if restore.p50_hours is not None:
        table.add_row("time to restore p50", f"{restore.p50_hours:.1f} h", "", "", "")
    show(table)
    for insight in answer.insights:
        out.print(f"- {insight}", highlight=False)
    if answer.plot:
        out.print(f"plot: {answer.plot}")


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"
