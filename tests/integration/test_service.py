"""``ign serve`` through real HTTP: the service is the ``ign`` command, started as a process on
a free local port over a trained embedded store; every request goes over a socket (httpx).

Covers every route, token scopes (401/403, revocation), bad input naming the field, a body
over the limit, idempotent retries, audit by token name, and a restart while writes are in
flight (nothing lost, nothing doubled).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
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
from deploylearn.pipeline import TrainingSettings, run_training
from deploylearn.store import open_store
from deploylearn.synthetic import SyntheticWorld
from tests.conftest import make_record

IGN = shutil.which("ign", path=str(Path(sys.executable).parent)) or "ign"
PLAN = {
    "target_environment": "production",
    "deployment_strategy": "blue_green",
    "resources_deployed": ["project", "database"],
}


@dataclass
class Server:
    url: str
    store_url: str
    tracking_uri: str
    tokens: dict[str, str]  # name -> token in clear
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def start(self) -> None:
        env = {**os.environ, "MLFLOW_TRACKING_URI": self.tracking_uri}
        self.process = subprocess.Popen(
            [IGN, "serve", "--port", str(self.port), "--store", self.store_url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stderr.read() if self.process.stderr else b""
                raise RuntimeError(f"ign serve exited: {output.decode(errors='replace')}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise TimeoutError("ign serve did not answer within 90 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.process = None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve")
    url = f"duckdb://{folder / 'store.duckdb'}"
    tracking_uri = f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"
    world = SyntheticWorld(seed=5, start=datetime(2025, 1, 1, tzinfo=UTC), days=120)
    with DeploymentPatternLearner.open(url, tracking_uri=tracking_uri) as learner:
        for batch in world.generate(n_executions=2500, batch_size=5000):
            learner.record_executions(batch.records)
        tokens = {
            "reader": learner.create_api_token("reader", ["read"]),
            "ci": learner.create_api_token("ci", ["write"]),
            "to-revoke": learner.create_api_token("to-revoke", ["read"]),
        }
    settings = TrainingSettings(
        tune=False,
        importance_repeats=1,
        embedding_dimension=8,
        success_params={"max_iter": 60, "min_samples_leaf": 40},
        tracking_uri=tracking_uri,
        lock_path=folder / "train.lock",
    )
    with open_store(url) as store:
        assert run_training(store, settings).outcome == "promoted"
    port = _free_port()
    running = Server(f"http://127.0.0.1:{port}", url, tracking_uri, tokens, port=port)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _execution(i: int, **overrides: Any) -> dict[str, Any]:
    record = make_record(i, execution_id=f"http-{i}", **overrides)
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in record.items()}


def test_health_ready_and_openapi_need_no_token(server: Server) -> None:
    assert httpx.get(f"{server.url}/v1/health").json()["status"] == "ok"
    ready = httpx.get(f"{server.url}/v1/ready")
    assert ready.status_code == 200 and len(ready.json()["store_id"]) == 32
    paths = httpx.get(f"{server.url}/v1/openapi.json").json()["paths"]
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
    missing = httpx.get(where)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert httpx.get(where, headers={"Authorization": "Bearer dl_nope"}).status_code == 401
    assert httpx.get(where, headers={"Authorization": "Basic abc"}).status_code == 401
    assert httpx.get(where, headers=server.headers("reader")).status_code == 200
    assert httpx.get(where, headers=server.headers("ci")).status_code == 200  # write implies read
    refused = httpx.post(
        f"{server.url}/v1/executions", json=_execution(1), headers=server.headers("reader")
    )
    assert refused.status_code == 403 and "write" in refused.json()["detail"]


def test_recording_is_idempotent_and_names_bad_fields(server: Server) -> None:
    post = f"{server.url}/v1/executions"
    first = httpx.post(post, json=_execution(10), headers=server.headers("ci"))
    assert first.status_code == 200, first.text
    assert IngestSummary.model_validate(first.json()).accepted == 1
    again = httpx.post(post, json=_execution(10), headers=server.headers("ci"))
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 1
    batch = [_execution(11), {**_execution(12), "status": "exploded"}, _execution(13)]
    mixed = httpx.post(post, json=batch, headers=server.headers("ci"))
    assert mixed.status_code == 422
    summary = mixed.json()
    assert summary["accepted"] == 2 and summary["rejected"] == 1
    assert summary["errors"][0]["line"] == 2 and summary["errors"][0]["field"] == "status"
    not_json = httpx.post(
        post,
        content=b"{not json",
        headers={**server.headers("ci"), "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422


def test_a_body_over_the_limit_is_refused(server: Server) -> None:
    huge = b"[" + b" " * (10 * 1024 * 1024) + b"]"  # 10 MB, over the 8 MiB default
    response = httpx.post(
        f"{server.url}/v1/executions",
        content=huge,
        headers={**server.headers("ci"), "Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413
    assert httpx.get(f"{server.url}/v1/health").status_code == 200  # still serving


def test_every_answer_over_http(server: Server) -> None:
    h = server.headers("reader")
    get = lambda path, **params: httpx.get(f"{server.url}{path}", params=params, headers=h)  # noqa: E731
    advice = get(
        "/v1/recommendations", target_environment="production", resource_types="project,database"
    )
    assert advice.status_code == 200, advice.text
    recommendations = Recommendations.model_validate(advice.json())
    assert recommendations.model is not None and recommendations.recommendations
    assert recommendations.context.resource_types == ["database", "project"]
    bad_limit = get("/v1/recommendations", target_environment="x", resource_types="p", limit=0)
    assert bad_limit.status_code == 422 and "limit" in bad_limit.text

    gated = httpx.post(
        f"{server.url}/v1/predict",
        json={"planned": [PLAN, {**PLAN, "target_environment": "prod"}], "fail_below": 0.01},
        headers=h,
    )
    assert gated.status_code == 200, gated.text
    prediction = PredictionAnswer.model_validate(gated.json())
    assert prediction.gate is not None and not prediction.gate.passed
    assert prediction.gate.unknown == 1  # "prod" was never seen
    plain = httpx.post(f"{server.url}/v1/predict", json={"planned": PLAN}, headers=h).json()
    assert "gate" not in plain and len(plain["predictions"]) == 1
    invalid = httpx.post(
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
    response = httpx.post(f"{server.url}/v1/executions", json=record, headers=server.headers("ci"))
    assert response.status_code == 200, response.text
    patterns = httpx.get(f"{server.url}/v1/patterns", headers=server.headers("reader")).text
    assert "hunter2-over-http" not in patterns


def test_a_revoked_token_is_refused_and_writes_are_audited_by_token(server: Server) -> None:
    where = f"{server.url}/v1/model"
    assert httpx.get(where, headers=server.headers("to-revoke")).status_code == 200
    server.stop()  # the embedded store has one writer process: revoke and audit in between
    with DeploymentPatternLearner.open(server.store_url) as learner:
        assert learner.revoke_api_token("to-revoke")
        actors = {e.actor for e in learner.store.audit_log(limit=50)}
    assert "token:ci" in actors
    server.start()
    assert httpx.get(where, headers=server.headers("to-revoke")).status_code == 401


def test_a_restart_with_writes_in_flight_loses_nothing_and_doubles_nothing(
    server: Server,
) -> None:
    records = [_execution(100 + i) for i in range(60)]
    client = httpx.Client(headers=server.headers("ci"), timeout=30)

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
