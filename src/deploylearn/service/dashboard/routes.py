"""The dashboard's pages under ``/ui``, each one facade call (the one its API route makes)
rendered with Jinja2; see ``docs/dashboard.md`` for what each page answers and how.

(No ``from __future__ import annotations``: FastAPI reads the routes' annotations at run time.)
"""

import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.staticfiles import StaticFiles

from deploylearn.domain.answers.analytics import DeploymentAnalytics
from deploylearn.domain.tokens import ApiToken
from deploylearn.errors import InvalidRecordError, UnknownPatternError
from deploylearn.learner import DeploymentPatternLearner
from deploylearn.service.auth import allowed
from deploylearn.service.dashboard import charts, present
from deploylearn.service.dashboard.cache import AnswerCache
from deploylearn.service.dashboard.options import (
    WINDOWS,
    Filters,
    configuration,
    listed,
    probability,
    text,
)
from deploylearn.service.dashboard.session import (
    COOKIE,
    COOKIE_PATH,
    form_fields,
    safe_next,
)
from deploylearn.service.status import model_status
from deploylearn.version import __version__

if TYPE_CHECKING:
    from deploylearn.service.app import Service

T = TypeVar("T")
UI = "/ui"
# Pages may use only what this origin serves: no CDN, no inline script, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
CACHE_SECONDS = 60.0  # answers and the executions frame are reused this long (no write between)
CALIBRATION_ARTIFACT = "evaluation/calibration.png"
FORM_PAGES = ("recommendations.html", "predict.html")  # refused input: the form again

_templates = Environment(
    loader=PackageLoader("deploylearn.service.dashboard", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters.update(present.FILTERS)


def mount_dashboard(app: FastAPI, service: "Service") -> None:
    """The pages and their stylesheet on ``app``; the learner reuses its executions frame
    for ``CACHE_SECONDS`` (writes through the service invalidate it at once)."""
    service.learner.frame_max_age = CACHE_SECONDS
    app.include_router(dashboard_routes(service))
    app.mount(
        f"{UI}/static",
        StaticFiles(packages=[("deploylearn.service.dashboard", "static")]),
        name="dashboard-static",
    )


def dashboard_routes(service: "Service") -> APIRouter:
    router = APIRouter(prefix=UI, include_in_schema=False)
    cache = AnswerCache(CACHE_SECONDS)

    def version(lr: DeploymentPatternLearner) -> Hashable:
        models = lr.advisor().models
        return lr.history_version, models.version if models else None

    def cached(key: Hashable, work: Callable[[DeploymentPatternLearner], T]) -> T:
        """A facade answer, reused while the history and the champion are unchanged."""
        with service.lock:
            current = version(service.learner)
            return cache.get(key, current, lambda: work(service.learner))

    def signed_in(request: Request) -> ApiToken | None:
        presented = request.cookies.get(COOKIE)
        if not presented:
            return None
        token = service.tokens.token(presented)
        return token if allowed(token, "read") else None

    def render(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
        started = time.perf_counter()
        html = _templates.get_template(template).render(
            request=request,
            path=request.url.path,
            version=__version__,
            windows=WINDOWS,
            **context,
        )
        headers = {**SECURITY_HEADERS, "Server-Timing": f"render;dur={_ms(started)}"}
        return HTMLResponse(html, status_code=code, headers=headers)

    def page(
        request: Request, template: str, build: Callable[[], dict[str, Any]]
    ) -> HTMLResponse:
        """The page for a signed-in reader, else the sign-in form (401); bad input is shown
        on the page naming the field (422), an unknown pattern is a 404 page."""
        token = signed_in(request)
        if token is None:
            return sign_in_page(request, None, 401)
        vocabulary = service.call(lambda lr: lr.advisor().vocabulary)
        common: dict[str, Any] = {
            "token_name": token.name,
            "vocabulary": present.choices(vocabulary),
        }
        try:
            context = build()
        except UnknownPatternError as exc:
            return render(request, "error.html", 404, **common, title="Not found", error=exc)
        except (InvalidRecordError, ValueError) as exc:
            shown = template if template in FORM_PAGES else "error.html"
            return render(request, shown, 422, **common, **failed(request), error=exc)
        return render(request, template, **common, **context)

    def failed(request: Request) -> dict[str, Any]:
        return {"title": "Input refused", "query": request.query_params, "answer": None}

    def sign_in_page(
        request: Request, error: str | None, code: int, target: str | None = None
    ) -> HTMLResponse:
        """The sign-in form; afterwards back to ``target`` (default: the page asked for)."""
        if target is None and request.url.path != f"{UI}/sign-in":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return render(
            request,
            "signin.html",
            code,
            title="Sign in",
            next=safe_next(target),
            error=error,
            token_name=None,
        )

    # -- session ---------------------------------------------------------------------------
    @router.get("/sign-in")
    def sign_in(request: Request) -> HTMLResponse:
        return sign_in_page(request, None, 200)

    @router.post("/session")
    async def session(request: Request) -> Response:
        fields = form_fields(await request.body())
        presented = fields.get("token", "").strip()
        token = service.tokens.token(presented) if presented else None
        if not allowed(token, "read"):
            refused = "That token is unknown, revoked or cannot read."
            return sign_in_page(request, refused, 401, fields.get("next") or UI)
        target = safe_next(fields.get("next"))
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(
            COOKIE,
            presented,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=COOKIE_PATH,
        )
        return response

    @router.post("/session/end")
    def sign_out() -> Response:
        response = RedirectResponse(f"{UI}/sign-in", status_code=303, headers=SECURITY_HEADERS)
        response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    # -- overview --------------------------------------------------------------------------
    @router.get("")
    def overview(request: Request) -> HTMLResponse:
        def build() -> dict[str, Any]:
            f = Filters.of(request.query_params)
            answer = cached(
                ("analytics", f.environment, f.days),
                lambda lr: lr.analytics(f.environment, f.days),
            )
            per_env = []
            if f.environment is None:
                rates = ["success_rate", "failure_rate", "rollback_rate"]
                for row in answer.breakdowns.by_environment:

                    def rates_of(
                        lr: DeploymentPatternLearner, env: str = row.environment
                    ) -> DeploymentAnalytics:
                        return lr.analytics(env, f.days, rates)

                    per_env.append(cached(("analytics-rates", row.environment, f.days), rates_of))
            usage = cached(
                ("usage", f.environment, f.gateway, f.resources, f.days),
                lambda lr: lr.pattern_usage(f.environment, f.gateway, list(f.resources), f.days),
            )
            return {
                "title": "Overview",
                "filters": f,
                "answer": answer,
                "per_environment": per_env,
                "usage": usage,
                "gateways": present.gateway_rows(answer, f.gateway),
                "charts": {
                    "rates": charts.interval_bars(
                        [(present.label(k), r) for k, r in answer.rates.items()],
                        "Rates in the window with 95 % Wilson intervals",
                    ),
                    "daily": charts.daily_chart(
                        answer.trends.daily, "Deployments per day, succeeded and failed"
                    ),
                    "environments": charts.interval_bars(
                        [(r.environment, r.success_rate) for r in answer.breakdowns.by_environment],
                        "Success rate per environment with 95 % Wilson intervals",
                    ),
                },
            }

        return page(request, "overview.html", build)

    # -- recommendations -------------------------------------------------------------------
    @router.get("/recommendations")
    def recommendations(request: Request) -> HTMLResponse:
        def build() -> dict[str, Any]:
            q = request.query_params
            environment, resources = text(q, "environment"), listed(q, "resources")
            context = {"title": "Recommendations", "query": q, "answer": None}
            if environment is None or not resources:
                return context
            answer = service.call(
                lambda lr: lr.recommend(
                    environment,
                    list(resources),
                    text(q, "strategy"),
                    text(q, "gateway"),
                    _limit(q.get("limit"), 5, 20),
                )
            )
            chart = charts.probability_bars(
                [
                    (r.pattern_name, r.success_probability, r.credible_interval)
                    for r in answer.recommendations
                ],
                "P(success) of each recommended pattern with its 90 % credible interval",
            )
            return {**context, "answer": answer, "chart": chart}

        return page(request, "recommendations.html", build)

    # -- predict ---------------------------------------------------------------------------
    @router.get("/predict")
    def predict(request: Request) -> HTMLResponse:
        def build() -> dict[str, Any]:
            from deploylearn.serving.risk_gate import risk_gate

            q = request.query_params
            fail_below = probability(q.get("fail_below"), 0.8)
            context = {"title": "Predict", "query": q, "answer": None, "fail_below": fail_below}
            environment, resources = text(q, "environment"), listed(q, "resources")
            if environment is None:
                return context
            config, problem = configuration(q.get("configuration"))
            if problem:
                raise ValueError(problem)
            planned: dict[str, Any] = {
                "target_environment": environment,
                "deployment_strategy": text(q, "strategy") or "",
                "resources_deployed": list(resources),
                "configuration_used": config,
            }
            if text(q, "gateway"):
                planned["gateway_host"] = text(q, "gateway")
            answer = service.call(lambda lr: lr.predict(planned))
            allow_unknown = q.get("allow_unknown") == "on"
            gate = risk_gate(answer, fail_below, allow_unknown=allow_unknown)
            prediction = answer.predictions[0]
            chart = charts.probability_bars(
                [
                    (
                        "planned deployment",
                        prediction.success_probability,
                        prediction.credible_interval,
                    )
                ],
                "P(success) with its 90 % credible interval against the gate's threshold",
                threshold=fail_below,
            )
            return {
                **context,
                "answer": answer,
                "prediction": prediction,
                "gate": gate,
                "chart": chart,
            }

        return page(request, "predict.html", build)

    # -- patterns --------------------------------------------------------------------------
    @router.get("/patterns")
    def patterns(request: Request) -> HTMLResponse:
        def build() -> dict[str, Any]:
            f = Filters.of(request.query_params)
            usage = cached(
                ("usage", f.environment, f.gateway, f.resources, f.days),
                lambda lr: lr.pattern_usage(f.environment, f.gateway, list(f.resources), f.days),
            )
            top = usage.patterns[:12]
            chart = charts.interval_bars(
                [(p.pattern_name, p.success_rate) for p in top],
                "Success rate of the most used patterns with 95 % Wilson intervals",
            )
            return {"title": "Patterns", "filters": f, "usage": usage, "chart": chart}

        return page(request, "patterns.html", build)

    @router.get("/patterns/{pattern_id}")
    def pattern(request: Request, pattern_id: str) -> HTMLResponse:
        def build() -> dict[str, Any]:
            report = cached(("pattern", pattern_id), lambda lr: lr.pattern_report(pattern_id))
            return {
                "title": report.pattern_name,
                "report": report,
                "charts": {
                    "weekly": charts.weekly_chart(
                        report.weekly, "Weekly success rate per environment"
                    ),
                    "environments": charts.interval_bars(
                        [(e.environment, e.success_rate) for e in report.by_environment],
                        "Success rate per environment with 95 % Wilson intervals",
                    ),
                },
            }

        return page(request, "pattern.html", build)

    # -- rollbacks and adaptations ---------------------------------------------------------
    @router.get("/rollbacks")
    def rollbacks(request: Request) -> HTMLResponse:
        def build() -> dict[str, Any]:
            q = request.query_params
            environment = text(q, "environment") or "production"
            resources = listed(q, "resources")
            answer = cached(
                ("rollbacks", environment, resources),
                lambda lr: lr.rollback_scenarios(environment, list(resources) or None, 5),
            )
            return {
                "title": "Rollback scenarios",
                "query": q,
                "environment": environment,
                "answer": answer,
            }

        return page(request, "rollbacks.html", build)

    @router.get("/adaptations")
    def adaptations(request: Request) -> HTMLResponse:
        def build() -> dict[str, Any]:
            q = request.query_params
            source = text(q, "source") or "staging"
            target = text(q, "target") or "production"
            resource = text(q, "resource")
            answer = cached(
                ("adaptations", source, target, resource),
                lambda lr: lr.adaptations(source, target, resource, 5),
            )
            return {
                "title": "Adaptations",
                "query": q,
                "source": source,
                "target": target,
                "answer": answer,
            }

        return page(request, "adaptations.html", build)

    # -- model -----------------------------------------------------------------------------
    @router.get("/model")
    def model(request: Request) -> HTMLResponse:
        def build() -> dict[str, Any]:
            status = service.call(model_status)
            run = cached(("run", status.run_id), lambda lr: lr.champion_run())
            table = present.holdout_table(run.metrics if run else {})
            chart = (
                charts.metric_bars(
                    [(row.method, row.values["brier"]) for row in table if "brier" in row.values],
                    "Holdout Brier score (lower is better): the champion and its baselines",
                )
                if table
                else None
            )
            has_plot = bool(
                run and cached(("calibration", run.run_id), _has_calibration)
            )
            return {
                "title": "Model",
                "status": status,
                "run": run,
                "holdout": table,
                "chart": chart,
                "calibration": has_plot,
                "mlflow": present.mlflow_link(run) if run else None,
            }

        return page(request, "model.html", build)

    @router.get("/model/calibration.png")
    def calibration(request: Request) -> Response:
        if signed_in(request) is None:
            return Response(status_code=401, headers=SECURITY_HEADERS)
        png = service.call(lambda lr: lr.champion_artifact(CALIBRATION_ARTIFACT))
        if png is None:
            return Response(status_code=404, headers=SECURITY_HEADERS)
        return Response(png, media_type="image/png", headers=SECURITY_HEADERS)

    return router


def _has_calibration(lr: DeploymentPatternLearner) -> bool:
    return lr.champion_artifact(CALIBRATION_ARTIFACT) is not None


def _limit(raw: str | None, default: int, highest: int) -> int:
    try:
        return min(max(int(raw or default), 1), highest)
    except ValueError:
        return default


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f}"
