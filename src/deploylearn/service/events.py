"""Deployment events in over HTTP: ``POST /v1/events/cdevents`` (a bearer token with the
``write`` scope) and ``POST /v1/events/github`` (GitHub's HMAC signature instead of a token).

``ingest/events.py`` maps an event to one execution (or to why it maps to none); the record
goes through ``record_executions`` like ``POST /v1/executions``, so it is validated,
redacted and idempotent by ``execution_id`` the same way. 200: recorded or a duplicate; 202:
not a deployment's final event, nothing recorded; 409: this deployment already ended with
other content; 422: a bad event, naming its field.
(No ``from __future__ import annotations``: FastAPI reads the routes' annotations.)
"""

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from deploylearn.domain.answers.ingest import IngestSummary
from deploylearn.domain.tokens import ApiToken
from deploylearn.ingest.events import (
    EventOutcome,
    cdevent_request,
    github_request,
    github_signature_ok,
)
from deploylearn.learner import DeploymentPatternLearner

T = TypeVar("T")
GITHUB_SECRET_ENV = "DEPLOYLEARN_GITHUB_WEBHOOK_SECRET"

_ANSWERS: dict[int | str, dict[str, Any]] = {
    202: {"description": "Not a deployment's final event: `{recorded: false, reason}`"},
    409: {"description": "This deployment already ended with other content (IngestSummary)"},
    422: {"description": "A bad event: `problems` names each field"},
}
_JSON_BODY = {"schema": {"type": "object"}}
_GITHUB_BODY = {"requestBody": {"required": True, "content": {"application/json": _JSON_BODY}}}


class Calls(Protocol):
    """What the routes need of the service: a call into the learner under its lock."""

    def call(self, work: Callable[[DeploymentPatternLearner], T]) -> T: ...


def event_routes(
    service: Calls, writer: Callable[..., ApiToken], github_secret: str | None
) -> APIRouter:
    """The two routes; ``writer`` is the write-scope token check, ``github_secret`` the
    webhook secret (None: the GitHub route answers 503)."""
    router = APIRouter(tags=["events"])
    token_with_write = Annotated[ApiToken, Depends(writer)]

    @router.post(
        "/events/cdevents",
        response_model=IngestSummary,
        responses=_ANSWERS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/cloudevents+json": _JSON_BODY,  # structured mode
                    "application/json": _JSON_BODY,  # binary mode (ce-* headers)
                },
            }
        },
    )
    async def cdevents(token: token_with_write, request: Request) -> JSONResponse:
        """Record the deployment a CDEvent (v0.4: service deployed / upgraded / rolled back,
        pipeline run finished) ends, sent as a CloudEvent in structured or binary mode."""
        body = await request.body()
        return await run_in_threadpool(
            _answer, service, cdevent_request, request.headers, body, token.actor, "cdevents"
        )

    @router.post(
        "/events/github",
        response_model=IngestSummary,
        responses={
            **_ANSWERS,
            401: {"description": "X-Hub-Signature-256 missing or wrong"},
            503: {"description": f"No webhook secret: {GITHUB_SECRET_ENV} is not set"},
        },
        openapi_extra=_GITHUB_BODY,
    )
    async def github(
        request: Request,
        x_github_event: Annotated[str | None, Header(description="deployment_status")] = None,
        x_hub_signature_256: Annotated[
            str | None, Header(description="sha256=HMAC of the body under the secret")
        ] = None,
    ) -> JSONResponse:
        """Record the deployment a GitHub ``deployment_status`` webhook ends (success,
        failure, error); earlier states are acknowledged. Audited as ``github:<repo>``."""
        if not github_secret:
            raise HTTPException(
                503, f"GitHub webhooks are off: set {GITHUB_SECRET_ENV} to the webhook's secret"
            )
        body = await request.body()
        if not github_signature_ok(github_secret, body, x_hub_signature_256):
            raise HTTPException(401, "X-Hub-Signature-256 is missing or does not match the body")
        return await run_in_threadpool(
            _answer, service, github_request, request.headers, body, None, "github"
        )

    return router


def _answer(
    service: Calls,
    read: Callable[[Mapping[str, str], bytes], EventOutcome],
    headers: Mapping[str, str],
    body: bytes,
    actor: str | None,
    source: str,
) -> JSONResponse:
    """Map the event and record what it means (in a worker thread: the learner blocks)."""
    outcome = read(headers, body)
    record = outcome.record
    if record is None:
        return JSONResponse({"recorded": False, "reason": outcome.reason}, status_code=202)
    who = outcome.actor or actor
    report = service.call(lambda lr: lr.record_executions([record], actor=who))
    report.source = f"<{source}> {outcome.execution_id}"
    summary = report.summary()
    status = 200
    if summary.rejected:
        conflict = all(problem.field == "execution_id" for problem in summary.errors)
        status = 409 if conflict else 422
    return JSONResponse(summary.model_dump(mode="json"), status_code=status)
