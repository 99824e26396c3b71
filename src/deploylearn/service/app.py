"""The HTTP API: the facade's answers under ``/v1``, each response a typed answer model.

Every route but ``/v1/health``, ``/v1/ready`` and the GitHub webhook (signed instead, see
``service/events.py``) needs ``Authorization: Bearer <token>``: ``read`` for the answers,
``write`` for recording (audited as ``token:<name>``). One learner
serves every request; its serving state (history snapshot and champion) is built once and
kept until a write changes the history. Calls into the learner are serialized by one lock:
the embedded store is a single connection, and an answer is CPU-bound Python anyway.
(No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at
run time, and the token dependencies are local to ``create_app``.)
"""

import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from deploylearn.domain.answers.adaptations import Adaptations
from deploylearn.domain.answers.analytics import DeploymentAnalytics
from deploylearn.domain.answers.ingest import IngestSummary
from deploylearn.domain.answers.patterns import PatternReport, PatternUsage
from deploylearn.domain.answers.prediction import PredictionAnswer
from deploylearn.domain.answers.recommendations import Recommendations
from deploylearn.domain.answers.rollbacks import RollbackScenarios
from deploylearn.domain.records import DeploymentPattern
from deploylearn.domain.tokens import ApiToken, Scope
from deploylearn.errors import (
    ConflictError,
    InvalidRecordError,
    StoreError,
    StoreUnavailableError,
    UnknownExecutionError,
    UnknownPatternError,
)
from deploylearn.learner import DeploymentPatternLearner
from deploylearn.service.auth import TokenCheck, allowed, bearer
from deploylearn.service.dashboard.routes import mount_dashboard
from deploylearn.service.events import event_routes
from deploylearn.service.limits import DEFAULT_MAX_BODY_BYTES, BodyLimit
from deploylearn.service.status import ModelStatus, model_status
from deploylearn.version import __version__

T = TypeVar("T")
_log = logging.getLogger(__name__)
API = "/v1"


class PredictRequest(BaseModel):
    """Planned deployments to score; with ``fail_below`` the answer carries the CI gate."""

    model_config = ConfigDict(extra="forbid")

    planned: dict[str, Any] | list[dict[str, Any]] = Field(
        description="One planned deployment or several (the fields of `ign deploy predict`)"
    )
    fail_below: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Fail the gate below this P(success)"
    )
    allow_unknown: bool = Field(
        default=False, description="Gate on the probability alone, even for unknown contexts"
    )


class Service:
    """The learner behind the routes, with the lock that serializes calls into it, and a
    watcher that picks up a newly promoted champion without a restart."""

    def __init__(
        self, learner: DeploymentPatternLearner, token_refresh: float, model_check: float
    ) -> None:
        self.learner = learner
        self.lock = threading.RLock()
        self.tokens = TokenCheck(self._tokens, token_refresh)
        self._stop = threading.Event()
        if model_check > 0:
            threading.Thread(
                target=self._watch_champion, args=(model_check,), daemon=True, name="champion"
            ).start()

    def _watch_champion(self, every: float) -> None:
        """Every ``every`` seconds: a promotion since the last look reloads the serving state
        (the alias check is cheap; the reload holds the lock for as long as a first answer)."""
        while not self._stop.wait(every):
            try:
                with self.lock:
                    if self.learner.serving_state_loaded:  # nothing to refresh before that
                        self.learner.refresh_champion()
            except Exception:  # a registry hiccup must not end the watcher
                _log.warning("champion check failed", exc_info=True)

    def _tokens(self) -> list[ApiToken]:
        with self.lock:
            return self.learner.api_tokens()

    def call(self, work: Callable[[DeploymentPatternLearner], T]) -> T:
        with self.lock:
            return work(self.learner)


def create_app(
    learner: DeploymentPatternLearner,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    token_refresh: float = 2.0,
    github_webhook_secret: str | None = None,
    model_check: float = 30.0,
) -> FastAPI:
    """The API over ``learner`` (which the caller opens and closes). ``github_webhook_secret``
    authenticates ``POST /v1/events/github`` (None: that route answers 503); ``model_check``:
    seconds between looks for a newly promoted champion (0: never)."""
    service = Service(learner, token_refresh, model_check)
    app = FastAPI(
        title="deploylearn",
        version=__version__,
        summary="Which Ignition deployment patterns succeed where, learned from every execution.",
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    _errors(app)

    def need(scope: Scope) -> Callable[..., ApiToken]:
        def check(authorization: Annotated[str | None, Header()] = None) -> ApiToken:
            presented = bearer(authorization)
            if presented is None:
                raise HTTPException(
                    401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
                )
            token = service.tokens.token(presented)
            if token is None:
                raise HTTPException(
                    401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"}
                )
            if not allowed(token, scope):
                raise HTTPException(403, f"token {token.name!r} lacks the {scope!r} scope")
            return token

        return check

    reader = Annotated[ApiToken, Depends(need("read"))]
    writer = Annotated[ApiToken, Depends(need("write"))]
    app.include_router(event_routes(service, need("write"), github_webhook_secret), prefix=API)
    mount_dashboard(app, service)

    # -- health ----------------------------------------------------------------------------
    @app.get(f"{API}/health", tags=["status"])
    def health() -> dict[str, str]:
        """The process answers (no store access)."""
        return {"status": "ok", "version": __version__}

    @app.get(f"{API}/ready", tags=["status"])
    def ready() -> JSONResponse:
        """The store answers; 503 when it does not."""
        try:
            store_id = service.call(lambda lr: lr.store.store_id())
        except (StoreError, StoreUnavailableError) as exc:
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready", "store_id": store_id})

    @app.get(f"{API}/model", tags=["status"])
    def model(_: reader) -> ModelStatus:
        """The champion serving this store and why (provenance)."""

        return service.call(model_status)

    # -- writes ----------------------------------------------------------------------------
    @app.post(f"{API}/executions", tags=["record"], response_model=IngestSummary)
    def record(
        token: writer,
        body: Annotated[
            dict[str, Any] | list[dict[str, Any]],
            Body(description="One execution (the seed's keywords) or a list of them"),
        ],
    ) -> JSONResponse:
        """Record executions, idempotent by ``execution_id``: a retry adds nothing. 200 when
        every one is stored (new or duplicate); 422 when some are rejected (the others are
        stored; ``errors`` names each field, ``line`` its position in the list)."""
        records = [body] if isinstance(body, dict) else body
        report = service.call(lambda lr: lr.record_executions(records, actor=token.actor))
        report.source = "<http>"
        summary = report.summary()
        return JSONResponse(
            summary.model_dump(mode="json"), status_code=422 if summary.rejected else 200
        )

    # -- answers ---------------------------------------------------------------------------
    @app.get(f"{API}/recommendations", tags=["answers"])
    def recommendations(
        _: reader,
        target_environment: str,
        resource_types: Annotated[list[str], Query(description="Repeated or comma-separated")],
        deployment_strategy: str | None = None,
        gateway_host: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 5,
    ) -> Recommendations:
        """Patterns to use for a context, best first (``ign deploy recommendations``)."""
        return service.call(
            lambda lr: lr.recommend(
                target_environment,
                _listed(resource_types),
                deployment_strategy,
                gateway_host,
                limit,
            )
        )

    @app.post(f"{API}/predict", tags=["answers"])
    def predict(_: reader, request: PredictRequest) -> PredictionAnswer:
        """Risk of planned deployments; with ``fail_below``, ``gate.passed`` is the CI gate
        (``ign deploy predict --fail-below``): below the threshold, an unknown context or a
        champion refused for this store fail it."""
        from deploylearn.serving.risk_gate import risk_gate

        answer = service.call(lambda lr: lr.predict(request.planned))
        if request.fail_below is None:
            return answer
        gate = risk_gate(answer, request.fail_below, allow_unknown=request.allow_unknown)
        return answer.model_copy(update={"gate": gate})

    @app.get(f"{API}/adaptations", tags=["answers"])
    def adaptations(
        _: reader,
        source_environment: str,
        target_environment: str,
        resource_type: str | None = None,
        limit: Annotated[int, Query(ge=1, le=50)] = 3,
    ) -> Adaptations:
        """How configurations change between two environments (``ign deploy adaptations``)."""
        return service.call(
            lambda lr: lr.adaptations(source_environment, target_environment, resource_type, limit)
        )

    @app.get(f"{API}/rollback-scenarios", tags=["answers"])
    def rollback_scenarios(
        _: reader,
        environment: str,
        resource_types: Annotated[list[str] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=50)] = 3,
    ) -> RollbackScenarios:
        """Rollback triggers, procedures, odds, recovery (``ign deploy rollback-scenarios``)."""
        return service.call(
            lambda lr: lr.rollback_scenarios(environment, _listed(resource_types) or None, limit)
        )

    @app.get(f"{API}/analytics", tags=["answers"])
    def analytics(
        _: reader,
        environment: str | None = None,
        days_back: Annotated[int, Query(ge=1, le=3650)] = 30,
        metric_types: Annotated[list[str] | None, Query()] = None,
    ) -> DeploymentAnalytics:
        """Rates, durations, DORA measures, trends, insights (``ign deploy analytics``)."""
        return service.call(
            lambda lr: lr.analytics(environment, days_back, _listed(metric_types) or None)
        )

    @app.get(
        f"{API}/analytics/plot",
        tags=["answers"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def analytics_plot(
        _: reader,
        environment: str | None = None,
        days_back: Annotated[int, Query(ge=1, le=3650)] = 30,
        metric_types: Annotated[list[str] | None, Query()] = None,
    ) -> Response:
        """The analytics dashboard as a PNG (``ign deploy analytics --plot``)."""
        from deploylearn.serving.analytics_plot import analytics_plot as draw

        answer = service.call(
            lambda lr: lr.analytics(environment, days_back, _listed(metric_types) or None)
        )
        with tempfile.TemporaryDirectory() as folder:
            path = draw(answer, Path(folder) / "analytics.png")
            return Response(path.read_bytes(), media_type="image/png")

    # -- patterns --------------------------------------------------------------------------
    @app.get(f"{API}/patterns", tags=["patterns"])
    def patterns(_: reader) -> list[DeploymentPattern]:
        """Every pattern with its outcome counts, the most used first."""
        return service.call(lambda lr: lr.patterns())

    @app.get(f"{API}/patterns/usage", tags=["patterns"])
    def pattern_usage(
        _: reader,
        environment: str | None = None,
        gateway_host: str | None = None,
        resource_types: Annotated[list[str] | None, Query()] = None,
        days_back: Annotated[int | None, Query(ge=1, le=3650)] = None,
    ) -> PatternUsage:
        """Each pattern's runs, success rate and rollbacks under a filter (the dashboard's
        patterns page)."""
        return service.call(
            lambda lr: lr.pattern_usage(
                environment, gateway_host, _listed(resource_types) or None, days_back
            )
        )

    @app.get(f"{API}/patterns/{{pattern_id}}/report", tags=["patterns"])
    def pattern_report(_: reader, pattern_id: str) -> PatternReport:
        """One pattern: configuration, runs per environment and per week, similar patterns."""
        return service.call(lambda lr: lr.pattern_report(pattern_id))

    @app.get(f"{API}/patterns/{{pattern_id}}/executions", tags=["patterns"])
    def pattern_history(
        _: reader, pattern_id: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, Any]]:
        """A pattern's latest executions, newest first (secrets as stored: redacted)."""
        return service.call(lambda lr: lr.pattern_history(pattern_id, limit))

    return app


def _listed(values: list[str] | None) -> list[str]:
    """Query values given repeated (``?r=a&r=b``) or comma-separated (``?r=a,b``)."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


# Our errors by status; the most specific class wins (InvalidRecordError is a ValueError).
ERROR_STATUS: dict[type[Exception], int] = {
    ConflictError: 409,
    UnknownPatternError: 404,
    UnknownExecutionError: 404,
    StoreUnavailableError: 503,
    StoreError: 503,
    ValueError: 422,
}


def _errors(app: FastAPI) -> None:
    """Our errors as JSON ``{"error": …}``: 422 naming the field (with ``problems`` for an
    invalid record), 404 unknown ids, 409 conflicts, 503 store."""

    def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidRecordError)
        problems = [{"field": p.field, "message": p.message, "line": p.line} for p in exc.problems]
        return JSONResponse({"error": str(exc), "problems": problems}, status_code=422)

    def answer(status: int) -> Callable[[Request, Exception], JSONResponse]:
        return lambda _, exc: JSONResponse({"error": str(exc)}, status_code=status)

    app.add_exception_handler(InvalidRecordError, invalid)
    for error, status in ERROR_STATUS.items():
        app.add_exception_handler(error, answer(status))

