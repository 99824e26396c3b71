"""``ign serve`` through real HTTP: the service is the ``ign`` command, started as a process on
a free local port over a trained embedded store; every request goes over a socket (httpx).

Covers every route, token scopes (401/403, revocation), bad input naming the field, a body
over the limit, idempotent retries, audit by token name, deployment events (CDEvents in both
CloudEvents modes, signed GitHub webhooks), and a restart while writes are in flight (nothing
lost, nothing doubled).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploylearn.domain.answers.adaptations import Adaptations
from deploylearn.domain.answers.analytics import DeploymentAnalytics
from deploylearn.domain.answers.ingest import IngestSummary
from deploylearn.domain.answers.prediction import PredictionAnswer
from deploylearn.domain.answers.recommendations import Recommendations
from deploylearn.domain.answers.rollbacks import RollbackScenarios
from deploylearn.learner import DeploymentPatternLearner
from deploylearn.service.app import create_app
from deploylearn.service.events import GITHUB_SECRET_ENV
from tests.conftest import make_record
from tests.integration.service_process import Server, demo_server

PLAN = {
    "target_environment": "production",
    "deployment_strategy": "blue_green",
    "resources_deployed": ["project", "database"],
}
GITHUB_SECRET = "webhook secret of the tests"


# Generous: the first answer after a write folds the history again, slow on a loaded CI box.
TIMEOUT = 120.0


def _get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, timeout=kwargs.pop("timeout", TIMEOUT), **kwargs)


def _post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, timeout=kwargs.pop("timeout", TIMEOUT), **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    scopes = {"reader": ["read"], "ci": ["write"], "to-revoke": ["read"]}
    running = demo_server(tmp_path_factory.mktemp("serve"), scopes)
    running.env = {GITHUB_SECRET_ENV: GITHUB_SECRET}
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _execution(i: int, **overrides: Any) -> dict[str, Any]:
    record = make_record(i, execution_id=f"http-{i}", **overrides)
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in record.items()}


def test_health_ready_and_openapi_need_no_token(server: Server) -> None:
    assert _get(f"{server.url}/v1/health").json()["status"] == "ok"
    ready = _get(f"{server.url}/v1/ready")
    assert ready.status_code == 200 and len(ready.json()["store_id"]) == 32
    paths = _get(f"{server.url}/v1/openapi.json").json()["paths"]
    for path in (
        "/v1/executions",
        "/v1/recommendations",
        "/v1/predict",
        "/v1/adaptations",
        "/v1/rollback-scenarios",
        "/v1/analytics",
        "/v1/analytics/plot",
        "/v1/patterns",
        "/v1/patterns/{pattern_id}/executions",
        "/v1/model",
    ):
        assert path in paths, path
    schema = paths["/v1/recommendations"]["get"]["responses"]["200"]["content"]
    assert schema["application/json"]["schema"]["$ref"].endswith("/Recommendations")


def test_tokens_and_scopes(server: Server) -> None:
    where = f"{server.url}/v1/recommendations?target_environment=production&resource_types=project"
    missing = _get(where)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert _get(where, headers={"Authorization": "Bearer dl_nope"}).status_code == 401
    assert _get(where, headers={"Authorization": "Basic abc"}).status_code == 401
    assert _get(where, headers=server.headers("reader")).status_code == 200
    assert _get(where, headers=server.headers("ci")).status_code == 200  # write implies read
    refused = _post(
        f"{server.url}/v1/executions", json=_execution(1), headers=server.headers("reader")
    )
    assert refused.status_code == 403 and "write" in refused.json()["detail"]


def test_recording_is_idempotent_and_names_bad_fields(server: Server) -> None:
    post = f"{server.url}/v1/executions"
    first = _post(post, json=_execution(10), headers=server.headers("ci"))
    assert first.status_code == 200, first.text
    assert IngestSummary.model_validate(first.json()).accepted == 1
    again = _post(post, json=_execution(10), headers=server.headers("ci"))
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 1
    batch = [_execution(11), {**_execution(12), "status": "exploded"}, _execution(13)]
    mixed = _post(post, json=batch, headers=server.headers("ci"))
    assert mixed.status_code == 422
    summary = mixed.json()
    assert summary["accepted"] == 2 and summary["rejected"] == 1
    assert summary["errors"][0]["line"] == 2 and summary["errors"][0]["field"] == "status"
    not_json = _post(
        post,
        content=b"{not json",
        headers={**server.headers("ci"), "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422


def test_a_body_over_the_limit_is_refused(server: Server) -> None:
    huge = b"[" + b" " * (10 * 1024 * 1024) + b"]"  # 10 MB, over the 8 MiB default
    response = _post(
        f"{server.url}/v1/executions",
        content=huge,
        headers={**server.headers("ci"), "Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413
    assert _get(f"{server.url}/v1/health").status_code == 200  # still serving


def test_every_answer_over_http(server: Server) -> None:
    h = server.headers("reader")
    get = lambda path, **params: _get(f"{server.url}{path}", params=params, headers=h)  # noqa: E731
    advice = get(
        "/v1/recommendations", target_environment="production", resource_types="project,database"
    )
    assert advice.status_code == 200, advice.text
    recommendations = Recommendations.model_validate(advice.json())
    assert recommendations.model is not None and recommendations.recommendations
    assert recommendations.context.resource_types == ["database", "project"]
    bad_limit = get("/v1/recommendations", target_environment="x", resource_types="p", limit=0)
    assert bad_limit.status_code == 422 and "limit" in bad_limit.text

    gated = _post(
        f"{server.url}/v1/predict",
        json={"planned": [PLAN, {**PLAN, "target_environment": "prod"}], "fail_below": 0.01},
        headers=h,
    )
    assert gated.status_code == 200, gated.text
    prediction = PredictionAnswer.model_validate(gated.json())
    assert prediction.gate is not None and not prediction.gate.passed
    assert prediction.gate.unknown == 1  # "prod" was never seen
    plain = _post(f"{server.url}/v1/predict", json={"planned": PLAN}, headers=h).json()
    assert "gate" not in plain and len(plain["predictions"]) == 1
    invalid = _post(
        f"{server.url}/v1/predict", json={"planned": {"deployment_strategy": "x"}}, headers=h
    )
    assert invalid.status_code == 422 and "target_environment" in invalid.text

    adaptations = get(
        "/v1/adaptations", source_environment="staging", target_environment="production"
    )
    assert Adaptations.model_validate(adaptations.json()).adaptations
    rollbacks = get("/v1/rollback-scenarios", environment="production")
    assert RollbackScenarios.model_validate(rollbacks.json()).scenarios
    analytics = get("/v1/analytics", environment="production", days_back=60)
    assert DeploymentAnalytics.model_validate(analytics.json()).deployment_statistics
    plot = get("/v1/analytics/plot", environment="production", days_back=60)
    assert plot.headers["content-type"] == "image/png" and plot.content[:4] == b"\x89PNG"

    patterns = get("/v1/patterns").json()
    assert patterns and patterns[0]["success_count"] + patterns[0]["failure_count"] > 0
    history = get(f"/v1/patterns/{patterns[0]['pattern_id']}/executions", limit=3).json()
    assert 0 < len(history) <= 3
    assert history[0]["started_at"] >= history[-1]["started_at"]
    assert get("/v1/patterns/pat-none/executions").status_code == 404
    model = get("/v1/model").json()
    assert model["provenance"] == "verified" and model["version"] == "1"


def test_secrets_sent_over_http_are_not_stored_in_clear(server: Server) -> None:
    record = _execution(20, configuration_used={"db_password": "hunter2-over-http"})
    response = _post(f"{server.url}/v1/executions", json=record, headers=server.headers("ci"))
    assert response.status_code == 200, response.text
    patterns = _get(f"{server.url}/v1/patterns", headers=server.headers("reader")).text
    assert "hunter2-over-http" not in patterns


def _cdevent(event_id: str, kind: str = "dev.cdevents.service.deployed.0.2.0") -> dict[str, Any]:
    """A CDEvent shaped like cdevents/spec conformance/service_deployed.json (spec v0.4.0),
    with what CDEvents has no field for in customData."""
    return {
        "context": {
            "version": "0.4.0",
            "id": event_id,
            "source": "/argocd/ignition",
            "type": kind,
            "timestamp": "2025-06-01T10:15:00Z",
        },
        "subject": {
            "id": "ignition/hmi-project",
            "type": "service",
            "content": {
                "environment": {"id": "production", "source": "/clusters/plant"},
                "artifactId": "pkg:generic/hmi-project@4.2.0",
            },
        },
        "customData": {
            "deployment_strategy": "blue_green",
            "gateway_host": "prod-gateway-01.plant.local",
            "resources_deployed": ["project", "database"],
            "configuration_used": {"backup_enabled": True, "db_password": "hunter2-by-event"},
            "started_at": "2025-06-01T10:00:00Z",
        },
    }


def _cloud_headers(event: dict[str, Any]) -> dict[str, str]:
    """CloudEvents binary mode: the attributes as ce-* headers, the CDEvent as the body."""
    context = event["context"]
    return {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": context["id"],
        "ce-source": context["source"],
        "ce-type": context["type"],
        "ce-subject": event["subject"]["id"],
        "ce-time": context["timestamp"],
    }


def test_a_cdevent_is_recorded_in_structured_and_in_binary_mode(server: Server) -> None:
    where = f"{server.url}/v1/events/cdevents"
    event = _cdevent("argo-sync-1")
    envelope = {
        "specversion": "1.0",
        "id": "argo-sync-1",
        "source": "/argocd/ignition",
        "type": "dev.cdevents.service.deployed.0.2.0",
        "datacontenttype": "application/json",
        "data": event,
    }
    structured = {**server.headers("ci"), "Content-Type": "application/cloudevents+json"}
    first = _post(where, content=json.dumps(envelope), headers=structured)
    assert first.status_code == 200, first.text
    summary = IngestSummary.model_validate(first.json())
    assert (summary.accepted, summary.duplicates) == (1, 0)
    assert summary.source.startswith("<cdevents> cdevents:")
    again = _post(where, content=json.dumps(envelope), headers=structured)  # redelivered
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 1)
    second = _cdevent("argo-sync-2", "dev.cdevents.service.upgraded.0.2.0")
    binary = {**server.headers("ci"), **_cloud_headers(second)}
    upgraded = _post(where, content=json.dumps(second), headers=binary)
    assert upgraded.status_code == 200 and upgraded.json()["accepted"] == 1, upgraded.text
    resent = _post(where, content=json.dumps(second), headers=binary)
    assert resent.json()["duplicates"] == 1
    patterns = _get(f"{server.url}/v1/patterns", headers=server.headers("reader")).text
    assert "hunter2-by-event" not in patterns  # redacted like any record


def test_the_cdevents_route_needs_a_write_token_and_names_bad_fields(server: Server) -> None:
    where = f"{server.url}/v1/events/cdevents"
    event = _cdevent("argo-sync-3")
    missing = _post(where, json=event)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert _post(where, json=event, headers=server.headers("reader")).status_code == 403
    del event["customData"]["gateway_host"]
    bad = _post(where, json=event, headers=server.headers("ci"))
    assert bad.status_code == 422, bad.text
    assert [p["field"] for p in bad.json()["problems"]] == ["customData.gateway_host"]


def test_a_non_final_cdevent_is_acknowledged_and_records_nothing(server: Server) -> None:
    event = _cdevent("argo-run-4", "dev.cdevents.pipelinerun.started.0.2.0")
    response = _post(
        f"{server.url}/v1/events/cdevents",
        content=json.dumps(event),
        headers={**server.headers("ci"), **_cloud_headers(event)},
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["recorded"] is False and "pipelinerun.started" in answer["reason"]


def _github(state: str, at: str) -> dict[str, Any]:
    """A deployment_status webhook shaped like octokit/webhooks payload-examples/
    api.github.com/deployment_status/payload.json (trimmed), our fields in the deployment's
    payload; a configuration knob no other test uses, so the deployment is its own pattern."""
    return {
        "action": "created",
        "deployment_status": {
            "id": 9001,
            "state": state,
            "description": "",
            "environment": "production",
            "created_at": at,
            "updated_at": at,
            "creator": {"login": "deploy-bot", "type": "Bot"},
        },
        "deployment": {
            "id": 4242,
            "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
            "ref": "main",
            "task": "deploy",
            "environment": "production",
            "created_at": "2025-06-02T08:00:00Z",
            "updated_at": at,
            "creator": {"login": "alice", "type": "User"},
            "payload": {
                "deployment_strategy": "rolling",
                "gateway_host": "prod-gateway-02.plant.local",
                "resources_deployed": ["project"],
                "configuration_used": {"github_event_test_knob": 7},
            },
        },
        "repository": {"id": 1, "name": "ignition-projects", "full_name": "acme/ignition-projects"},
        "sender": {"login": "deploy-bot", "type": "Bot"},
    }


def _deliver(
    server: Server, payload: dict[str, Any], secret: str = GITHUB_SECRET
) -> httpx.Response:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "deployment_status",
        "X-GitHub-Delivery": f"delivery-{payload['deployment_status']['state']}",
        "X-Hub-Signature-256": signature,
    }
    return _post(f"{server.url}/v1/events/github", content=body, headers=headers)


def test_github_deployment_status_ends_as_one_execution(server: Server) -> None:
    for state, at in (("pending", "2025-06-02T08:00:01Z"), ("in_progress", "2025-06-02T08:01:00Z")):
        early = _deliver(server, _github(state, at))
        assert early.status_code == 202 and early.json()["recorded"] is False, early.text
    done = _deliver(server, _github("success", "2025-06-02T08:09:30Z"))
    assert done.status_code == 200, done.text
    assert (done.json()["accepted"], done.json()["duplicates"]) == (1, 0)
    redelivered = _deliver(server, _github("success", "2025-06-02T08:09:30Z"))
    assert (redelivered.json()["accepted"], redelivered.json()["duplicates"]) == (0, 1)
    later = _deliver(server, _github("failure", "2025-06-02T09:00:00Z"))
    assert later.status_code == 409  # this deployment already ended: the first end stays

    reader = server.headers("reader")
    patterns = _get(f"{server.url}/v1/patterns", headers=reader).json()
    ours = [p for p in patterns if "github_event_test_knob" in p["configuration_template"]]
    assert len(ours) == 1
    history = _get(
        f"{server.url}/v1/patterns/{ours[0]['pattern_id']}/executions", headers=reader
    ).json()
    assert [e["execution_id"] for e in history] == ["github:acme:ignition-projects:4242"]
    execution = history[0]
    assert (execution["status"], execution["target_environment"]) == ("completed", "production")
    assert execution["started_at"].startswith("2025-06-02T08:00:00")
    assert execution["completed_at"].startswith("2025-06-02T08:09:30")
    assert execution["user_id"] == "alice"


def test_a_github_delivery_needs_the_right_signature(server: Server) -> None:
    payload = _github("success", "2025-06-02T08:09:30Z")
    assert _deliver(server, payload, secret="not the secret").status_code == 401
    unsigned = _post(
        f"{server.url}/v1/events/github",
        json=payload,
        headers={"X-GitHub-Event": "deployment_status"},
    )
    assert unsigned.status_code == 401
    bearer_only = _post(
        f"{server.url}/v1/events/github",
        json=payload,
        headers={**server.headers("ci"), "X-GitHub-Event": "deployment_status"},
    )
    assert bearer_only.status_code == 401  # a token is no signature


def test_without_a_webhook_secret_the_github_route_answers_503(tmp_path: Path) -> None:
    """In process (an app without the secret): GitHub deliveries are refused, saying why."""

    async def deliver(app: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
            headers = {"X-GitHub-Event": "deployment_status"}
            return await client.post("/v1/events/github", json={}, headers=headers)

    with DeploymentPatternLearner.open(f"duckdb://{tmp_path / 'store.duckdb'}") as learner:
        learner.store.init_schema()
        response = asyncio.run(deliver(create_app(learner)))
    assert response.status_code == 503 and GITHUB_SECRET_ENV in response.text


def test_a_revoked_token_is_refused_and_writes_are_audited_by_token(server: Server) -> None:
    where = f"{server.url}/v1/model"
    assert _get(where, headers=server.headers("to-revoke")).status_code == 200
    server.stop()  # the embedded store has one writer process: revoke and audit in between
    with DeploymentPatternLearner.open(server.store_url) as learner:
        assert learner.revoke_api_token("to-revoke")
        actors = {e.actor for e in learner.store.audit_log(limit=50)}
    assert "token:ci" in actors
    assert "github:acme/ignition-projects" in actors  # test_github_deployment_status_…
    server.start()
    assert _get(where, headers=server.headers("to-revoke")).status_code == 401


def test_a_restart_with_writes_in_flight_loses_nothing_and_doubles_nothing(
    server: Server,
) -> None:
    records = [_execution(100 + i) for i in range(60)]
    client = httpx.Client(headers=server.headers("ci"), timeout=TIMEOUT)

    def send(record: dict[str, Any]) -> bool:
        try:
            return client.post(f"{server.url}/v1/executions", json=record).status_code == 200
        except httpx.TransportError:
            return False  # the service went away mid-request: the client will retry

    with ThreadPoolExecutor(max_workers=4) as pool:
        sent = pool.map(send, records)
        time.sleep(0.3)
        server.stop()  # SIGTERM while requests are in flight
        delivered = list(sent)
    server.start()
    for record, ok in zip(records, delivered, strict=True):
        if not ok:  # retried after the restart: new if it was lost, a duplicate if it was not
            again = client.post(f"{server.url}/v1/executions", json=record)
            assert again.status_code == 200, again.text
    for record in records:  # every one is stored exactly once: a resend is a duplicate
        resent = client.post(f"{server.url}/v1/executions", json=record).json()
        assert (resent["accepted"], resent["duplicates"]) == (0, 1), record["execution_id"]
    client.close()
    server.stop()
    with DeploymentPatternLearner.open(server.store_url) as learner:
        frame = learner.store.executions_frame()
    ids = frame["execution_id"]
    wanted = {r["execution_id"] for r in records}
    assert wanted <= set(ids) and not ids[ids.isin(wanted)].duplicated().any()
    server.start()


def test_a_promoted_champion_is_served_without_a_restart(server: Server) -> None:
    """A promotion elsewhere (here: the registry's champion alias moved to a new version of
    the same run, as `ign train` on another machine would) reaches the running service."""
    from mlflow import MlflowClient

    from deploylearn.tracking.registry import MODEL_NAMES

    where = f"{server.url}/v1/model"
    before = _get(where, headers=server.headers("reader")).json()
    client = MlflowClient(tracking_uri=server.tracking_uri, registry_uri=server.tracking_uri)
    for name in MODEL_NAMES.values():
        current = client.get_model_version_by_alias(name, "champion")
        again = client.create_model_version(
            name, current.source, run_id=current.run_id, tags=dict(current.tags)
        )
        client.set_registered_model_alias(name, "champion", again.version)
    deadline = time.monotonic() + 60
    seen = before
    while time.monotonic() < deadline and seen["version"] == before["version"]:
        time.sleep(0.5)
        seen = _get(where, headers=server.headers("reader")).json()
    assert int(seen["version"]) == int(before["version"]) + 1, seen
    assert seen["provenance"] == "verified"
