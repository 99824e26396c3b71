"""Deployment events → execution records (ingest/events.py): CDEvents over CloudEvents and
GitHub ``deployment_status`` webhooks, mapped without a store or a web stack.

The payloads are Python dicts shaped exactly like the published schemas and examples; each
fixture says which one it follows. Our additions are only ``customData`` (CDEvents) and the
deployment's ``payload`` (GitHub), which both specifications leave free-form.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

import pytest

from deploylearn.domain.screen import validate_execution
from deploylearn.errors import InvalidRecordError
from deploylearn.ingest.events import (
    cdevent_outcome,
    cdevent_request,
    github_outcome,
    github_request,
    github_signature_ok,
)

CUSTOM = {
    "deployment_strategy": "Blue-Green",
    "gateway_host": "prod-gw-01.plant.local",
    "resources_deployed": ["project", "database"],
    "configuration_used": {"backup_enabled": True, "validation_timeout": 300},
    "source_environment": "staging",
    "started_at": "2025-03-20T14:20:05Z",
}


def service_event(predicate: str = "deployed", **custom: Any) -> dict[str, Any]:
    """cdevents/spec conformance/service_deployed.json at spec v0.4.0 (context version 0.4.0,
    type dev.cdevents.service.deployed.0.2.0), times moved to 2025. The v0.4 schemas of
    service.upgraded and service.rolledback (0.2.0) have the same subject content
    (environment {id, source}, artifactId), so only the type changes for them."""
    return {
        "context": {
            "version": "0.4.0",
            "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
            "chainId": "4c8cb7dd-3448-41de-8768-eec704e2829b",
            "source": "/event/source/123",
            "type": f"dev.cdevents.service.{predicate}.0.2.0",
            "timestamp": "2025-03-20T14:27:05.315384Z",
            "schemaUri": "https://myorg.com/schema/custom",
        },
        "subject": {
            "id": "mySubject123",
            "source": "/event/source/123",
            "type": "service",
            "content": {
                "environment": {"id": "production", "source": "/gateways/prod"},
                "artifactId": "pkg:oci/myapp@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd546",
            },
        },
        "customData": {**CUSTOM, **custom},
    }


def pipelinerun_event(outcome: str = "failure", **custom: Any) -> dict[str, Any]:
    """cdevents/spec conformance/pipelinerun_finished.json (subject content pipelineName,
    url, outcome, errors) with a spec v0.4.0 context (type pipelinerun.finished.0.2.0)."""
    return {
        "context": {
            "version": "0.4.0",
            "id": "5328c37f-bb7e-4bb7-84ea-9f5f85e4a7ce",
            "source": "/event/source/123",
            "type": "dev.cdevents.pipelinerun.finished.0.2.0",
            "timestamp": "2025-03-20T14:27:05.315384Z",
        },
        "subject": {
            "id": "mySubject123",
            "source": "/event/source/123",
            "type": "pipelineRun",
            "content": {
                "pipelineName": "myPipeline",
                "url": "https://www.example.com/mySubject123",
                "outcome": outcome,
                "errors": "Something went wrong\nWith some more details",
            },
        },
        "customData": {**CUSTOM, "target_environment": "production", **custom},
    }


def github_payload(state: str = "success", **payload: Any) -> dict[str, Any]:
    """octokit/webhooks payload-examples/api.github.com/deployment_status/payload.json (the
    URLs, node ids and user details trimmed; times moved to 2025), with our fields in the
    deployment's ``payload``."""
    return {
        "action": "created",
        "deployment_status": {
            "url": "https://api.github.com/repos/Codertocat/Hello-World/deployments/145988746/statuses/209916254",
            "id": 209916254,
            "state": state,
            "creator": {"login": "Codertocat", "id": 21031067, "type": "User"},
            "description": "",
            "environment": "production",
            "target_url": "",
            "created_at": "2025-05-15T15:20:55Z",
            "updated_at": "2025-05-15T15:20:55Z",
        },
        "deployment": {
            "url": "https://api.github.com/repos/Codertocat/Hello-World/deployments/145988746",
            "id": 145988746,
            "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
            "ref": "master",
            "task": "deploy",
            "payload": {
                "deployment_strategy": "rolling",
                "gateway_host": "prod-gw-02.plant.local",
                "resources_deployed": "project, tags",
                "configuration_used": {"validation_timeout": 120},
                **payload,
            },
            "original_environment": "production",
            "environment": "production",
            "description": None,
            "creator": {"login": "Codertocat", "id": 21031067, "type": "User"},
            "created_at": "2025-05-15T15:20:53Z",
            "updated_at": "2025-05-15T15:20:55Z",
            "performed_via_github_app": None,
        },
        "repository": {
            "id": 186853002,
            "name": "Hello-World",
            "full_name": "Codertocat/Hello-World",
        },
        "sender": {"login": "Codertocat", "id": 21031067, "type": "User"},
    }


def problem_fields(exc: pytest.ExceptionInfo[InvalidRecordError]) -> list[str]:
    return [p.field for p in exc.value.problems]


# -- CDEvents: the mapping -------------------------------------------------------------------
def test_service_deployed_is_one_completed_execution() -> None:
    outcome = cdevent_outcome(service_event())
    record = outcome.record
    assert record is not None and outcome.actor is None
    assert record["execution_id"].startswith("cdevents:") and len(record["execution_id"]) == 41
    assert record["status"] == "completed" and not record.get("rollback_triggered")
    assert record["target_environment"] == "production"
    assert record["started_at"] == "2025-03-20T14:20:05Z"  # customData.started_at
    assert record["completed_at"] == "2025-03-20T14:27:05.315384+00:00"  # context.timestamp
    assert record["execution_name"] == "mySubject123 deployed to production"
    assert record["deployment_type"] == "update" and record["automation_triggered"] is True
    assert "pkg:oci/myapp" in record["execution_log"] and "271069a8" in record["execution_log"]
    execution = validate_execution(record)
    assert execution.deployment_strategy == "blue_green"
    assert execution.resources_deployed == ["database", "project"]
    assert execution.source_environment == "staging"
    assert execution.outcome == "success"
    assert execution.duration_seconds == pytest.approx(420.3, 0.01)


def test_a_redelivered_event_is_the_same_record_and_another_event_another_id() -> None:
    first = cdevent_outcome(service_event()).record
    assert first == cdevent_outcome(copy.deepcopy(service_event())).record
    other = service_event()
    other["context"]["id"] = "another-event"
    second = cdevent_outcome(other).record
    assert first is not None and second is not None
    assert second["execution_id"] != first["execution_id"]
    given = cdevent_outcome(service_event(execution_id="deploy-4711")).record
    assert given is not None and given["execution_id"] == "deploy-4711"


def test_upgraded_completes_and_rolledback_ends_rolled_back() -> None:
    upgraded = cdevent_outcome(service_event("upgraded")).record
    assert upgraded is not None and upgraded["status"] == "completed"
    rolled = cdevent_outcome(service_event("rolledback", failure_reasons="health check failed"))
    record = rolled.record
    assert record is not None
    assert (record["status"], record["rollback_triggered"], record["rollback_successful"]) == (
        "rolled_back",
        True,
        True,
    )
    execution = validate_execution(record)
    assert execution.outcome == "failure" and execution.failure_reasons == ["health check failed"]


def test_without_a_start_the_duration_is_unknown_not_zero() -> None:
    event = service_event()
    del event["customData"]["started_at"]
    record = cdevent_outcome(event).record
    assert record is not None and record["completed_at"] is None
    assert record["started_at"] == "2025-03-20T14:27:05.315384+00:00"
    assert validate_execution(record).duration_seconds is None


def test_pipelinerun_finished_maps_its_outcome_and_errors() -> None:
    failed = cdevent_outcome(pipelinerun_event("failure")).record
    assert failed is not None and failed["status"] == "failed"
    assert failed["failure_reasons"] == ["Something went wrong\nWith some more details"]
    assert failed["execution_name"] == "myPipeline to production"
    errored = cdevent_outcome(pipelinerun_event("error")).record
    assert errored is not None and errored["status"] == "failed"
    succeeded = cdevent_outcome(pipelinerun_event("success")).record
    assert succeeded is not None and succeeded["status"] == "completed"
    assert "failure_reasons" not in succeeded
    own = cdevent_outcome(pipelinerun_event(failure_reasons=["tag provider offline"])).record
    assert own is not None and own["failure_reasons"] == ["tag provider offline"]
    with pytest.raises(InvalidRecordError) as bad:
        cdevent_outcome(pipelinerun_event("cancelled"))
    assert problem_fields(bad) == ["subject.content.outcome"]


def test_a_pipeline_run_without_a_target_environment_is_not_a_deployment() -> None:
    event = pipelinerun_event()
    del event["customData"]["target_environment"]
    outcome = cdevent_outcome(event)
    assert outcome.record is None and "target_environment" in outcome.reason


@pytest.mark.parametrize(
    "kind",
    [
        "dev.cdevents.pipelinerun.started.0.2.0",
        "dev.cdevents.service.removed.0.2.0",
        "dev.cdevents.artifact.packaged.0.2.0",
        "dev.cdevents.environment.created.0.2.0",
    ],
)
def test_other_cdevents_types_record_nothing(kind: str) -> None:
    event = service_event()
    event["context"]["type"] = kind
    outcome = cdevent_outcome(event)
    assert outcome.record is None and kind in outcome.reason


@pytest.mark.parametrize(
    "kind", ["dev.cdevents.service.deployed.0.1.1", "dev.cdevents.service.deployed.0.3.0-draft"]
)
def test_any_minor_or_patch_version_is_read(kind: str) -> None:
    event = service_event()
    event["context"]["type"] = kind
    assert cdevent_outcome(event).record is not None


@pytest.mark.parametrize(
    "kind",
    [
        "dev.cdevents.service.deployed.1.0.0",
        "dev.cdevents.service.deployed",
        "com.example.deployed",
    ],
)
def test_unreadable_types_name_context_type(kind: str) -> None:
    event = service_event()
    event["context"]["type"] = kind
    with pytest.raises(InvalidRecordError) as bad:
        cdevent_outcome(event)
    assert problem_fields(bad) == ["context.type"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e["customData"].pop("gateway_host"), "customData.gateway_host"),
        (lambda e: e.pop("customData"), "customData.gateway_host"),
        (lambda e: e["customData"].update(resources_deployed=[]), "customData.resources_deployed"),
        (
            lambda e: e["customData"].update(configuration_used={"retries": float("nan")}),
            "customData.configuration_used.retries",
        ),
        (lambda e: e["customData"].update(customData=5), None),  # unknown keys are ignored
        (
            lambda e: e["subject"]["content"]["environment"].update(id="my-group/my-region"),
            "subject.content.environment.id",
        ),
        (lambda e: e["subject"]["content"].pop("environment"), "subject.content.environment"),
        (lambda e: e["context"].update(timestamp="1744617508663"), "context.timestamp"),
        (lambda e: e["context"].update(timestamp="2025-03-20T14:27:05"), "context.timestamp"),
        (lambda e: e["context"].pop("id"), "context.id"),
        (lambda e: e["context"].pop("version"), "context.version"),
        (lambda e: e.pop("subject"), "subject"),
        (lambda e: e["customData"].update(started_at="2025-03-20T15:00:00Z"), "context.timestamp"),
        (lambda e: e["customData"].update(started_at="soon"), "customData.started_at"),
        (lambda e: e.update(customData="eyJhIjogMX0="), "customData"),  # base64: not read
    ],
)
def test_a_bad_event_names_the_event_field(change: Any, field: str | None) -> None:
    event = service_event()
    change(event)
    if field is None:
        assert cdevent_outcome(event).record is not None
        return
    with pytest.raises(InvalidRecordError) as bad:
        cdevent_outcome(event)
    assert field in problem_fields(bad), str(bad.value)


# -- CDEvents: the CloudEvents HTTP binding --------------------------------------------------
def structured(event: dict[str, Any], **attributes: Any) -> bytes:
    """A CloudEvent in structured mode (CloudEvents 1.0 JSON format) carrying the CDEvent as
    data, its attributes set as cdevents/spec cloudevents-binding.md says."""
    envelope = {
        "specversion": "1.0",
        "id": event["context"]["id"],
        "source": event["context"]["source"],
        "type": event["context"]["type"],
        "subject": event["subject"]["id"],
        "time": event["context"]["timestamp"],
        "datacontenttype": "application/json",
        "data": event,
        **attributes,
    }
    return json.dumps(envelope).encode()


def binary_headers(event: dict[str, Any], **headers: str) -> dict[str, str]:
    context = event["context"]
    return {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": context["id"],
        "ce-source": context["source"],
        "ce-type": context["type"],
        "ce-time": context["timestamp"],
        **headers,
    }


def test_both_modes_and_a_bare_cdevent_give_the_same_record() -> None:
    event = service_event()
    expected = cdevent_outcome(event).record
    cloud = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
    assert cdevent_request(cloud, structured(event)).record == expected
    body = json.dumps(event).encode()
    assert cdevent_request(binary_headers(event), body).record == expected
    assert cdevent_request({"Content-Type": "application/json"}, body).record == expected


def test_binary_mode_headers_are_percent_decoded() -> None:
    event = service_event()
    event["context"]["source"] = "/event/source 123"
    headers = binary_headers(event, **{"ce-source": "/event/source%20123"})
    assert cdevent_request(headers, json.dumps(event).encode()).record is not None


@pytest.mark.parametrize(
    ("headers", "body", "field"),
    [
        ({"ce-type": "dev.cdevents.service.upgraded.0.2.0"}, None, "ce-type"),
        ({"ce-id": "other"}, None, "ce-id"),
        ({"ce-specversion": "0.3"}, None, "ce-specversion"),
        ({"ce-source": ""}, None, "ce-source"),
        ({}, b"{not json", "body"),
        ({}, b"[1, 2]", "body"),
        ({}, b'{"context": {}, "context": {}}', "context"),
    ],
)
def test_binary_mode_problems_name_the_header_or_field(
    headers: dict[str, str], body: bytes | None, field: str
) -> None:
    event = service_event()
    with pytest.raises(InvalidRecordError) as bad:
        cdevent_request(binary_headers(event, **headers), body or json.dumps(event).encode())
    assert problem_fields(bad) == [field], str(bad.value)


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"specversion": None}, "specversion"),
        ({"type": "dev.cdevents.service.removed.0.2.0"}, "type"),
        ({"data": None}, "data"),
        ({"data": None, "data_base64": "e30="}, "data_base64"),
    ],
)
def test_structured_mode_problems_name_the_attribute(
    attributes: dict[str, Any], field: str
) -> None:
    cloud = {"Content-Type": "application/cloudevents+json"}
    envelope = json.loads(structured(service_event(), **attributes))
    body = {key: value for key, value in envelope.items() if value is not None}
    with pytest.raises(InvalidRecordError) as bad:
        cdevent_request(cloud, json.dumps(body).encode())
    assert problem_fields(bad) == [field], str(bad.value)


def test_structured_mode_names_fields_inside_data() -> None:
    event = service_event()
    del event["customData"]["gateway_host"]
    cloud = {"Content-Type": "application/cloudevents+json"}
    with pytest.raises(InvalidRecordError) as bad:
        cdevent_request(cloud, structured(event))
    assert problem_fields(bad) == ["data.customData.gateway_host"]


def test_batched_cloudevents_are_refused() -> None:
    batch = {"Content-Type": "application/cloudevents-batch+json"}
    with pytest.raises(InvalidRecordError) as bad:
        cdevent_request(batch, b"[]")
    assert problem_fields(bad) == ["Content-Type"]


# -- GitHub deployment_status ----------------------------------------------------------------
def test_github_success_is_one_completed_execution_keyed_by_the_deployment() -> None:
    outcome = github_outcome(github_payload())
    record = outcome.record
    assert record is not None and outcome.actor == "github:Codertocat/Hello-World"
    assert record["execution_id"] == "github:Codertocat:Hello-World:145988746"
    assert record["status"] == "completed" and record["failure_reasons"] == []
    assert record["started_at"] == "2025-05-15T15:20:53+00:00"  # deployment.created_at
    assert record["completed_at"] == "2025-05-15T15:20:55+00:00"  # the final status's
    assert record["user_id"] == "Codertocat" and record["target_environment"] == "production"
    assert record["execution_name"] == "Codertocat/Hello-World deploy of master to production"
    assert "f95f852b" in record["execution_log"]
    execution = validate_execution(record)
    assert execution.resources_deployed == ["project", "tags"]
    assert execution.configuration_used == {"validation_timeout": 120}
    assert execution.outcome == "success" and execution.duration_seconds == 2.0


def test_every_status_of_one_deployment_names_one_execution() -> None:
    final = github_outcome(github_payload("success")).record
    failed = github_outcome(github_payload("failure")).record
    assert final is not None and failed is not None
    assert final["execution_id"] == failed["execution_id"]
    assert github_outcome(copy.deepcopy(github_payload())).record == final  # redelivery


@pytest.mark.parametrize("state", ["failure", "error"])
def test_github_failure_and_error_are_failed_with_the_description(state: str) -> None:
    payload = github_payload(state)
    payload["deployment_status"]["description"] = "Gateway prod-gw-02 unreachable"
    record = github_outcome(payload).record
    assert record is not None and record["status"] == "failed"
    assert record["failure_reasons"] == ["Gateway prod-gw-02 unreachable"]
    assert validate_execution(record).outcome == "failure"


@pytest.mark.parametrize("state", ["pending", "queued", "in_progress", "inactive"])
def test_github_states_before_the_end_record_nothing(state: str) -> None:
    payload = github_payload(state)
    del payload["deployment"]["payload"]["gateway_host"]  # not even looked at yet
    outcome = github_outcome(payload)
    assert outcome.record is None and state in outcome.reason


def test_the_deployment_payload_may_be_json_text_and_overrides_our_defaults() -> None:
    payload = github_payload()
    fields = {**payload["deployment"]["payload"], "execution_id": "ign-77"}
    fields["deployment_type"] = "Hotfix"
    payload["deployment"]["payload"] = json.dumps(fields)
    payload["deployment_status"]["environment"] = ""
    payload["deployment"]["environment"] = "Staging"
    record = github_outcome(payload).record
    assert record is not None and record["execution_id"] == "ign-77"
    execution = validate_execution(record)
    assert execution.deployment_type == "hotfix" and execution.target_environment == "staging"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda p: p["deployment"]["payload"].pop("gateway_host"),
            "deployment.payload.gateway_host",
        ),
        (lambda p: p["deployment"].update(payload={}), "deployment.payload.deployment_strategy"),
        (lambda p: p["deployment"].update(payload="{oops"), "deployment.payload"),
        (lambda p: p["deployment"].update(payload=[1]), "deployment.payload"),
        (lambda p: p["deployment_status"].update(state="exploded"), "deployment_status.state"),
        (lambda p: p["deployment_status"].pop("state"), "deployment_status.state"),
        (lambda p: p["deployment"].update(id="145988746"), "deployment.id"),
        (lambda p: p["deployment"].update(created_at="yesterday"), "deployment.created_at"),
        (
            lambda p: p["deployment_status"].update(created_at="2025-05-15T15:00:00Z"),
            "deployment_status.created_at",
        ),
        (
            lambda p: p["deployment_status"].update(environment="eu/prod"),
            "deployment_status.environment",
        ),
        (lambda p: p.pop("repository"), "repository"),
        (lambda p: p.pop("deployment"), "deployment"),
    ],
)
def test_a_bad_github_payload_names_its_field(change: Any, field: str) -> None:
    payload = github_payload()
    change(payload)
    with pytest.raises(InvalidRecordError) as bad:
        github_outcome(payload)
    assert field in problem_fields(bad), str(bad.value)


def test_github_request_reads_the_event_header() -> None:
    body = json.dumps(github_payload()).encode()
    assert github_request({"X-GitHub-Event": "deployment_status"}, body).record is not None
    ping = github_request({"X-GitHub-Event": "ping"}, b'{"zen": "Keep it logically awesome."}')
    assert ping.record is None and "ping" in ping.reason
    push = github_request({"X-GitHub-Event": "push"}, b"{}")
    assert push.record is None and "push" in push.reason
    with pytest.raises(InvalidRecordError) as bad:
        github_request({}, body)
    assert problem_fields(bad) == ["X-GitHub-Event"]


def test_the_signature_is_the_hmac_of_the_raw_body() -> None:
    body = json.dumps(github_payload()).encode()
    secret = "It's a Secret to Everybody"
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert github_signature_ok(secret, body, signature)
    assert not github_signature_ok("another secret", body, signature)
    assert not github_signature_ok(secret, body + b" ", signature)
    assert not github_signature_ok(secret, body, signature.removeprefix("sha256="))
    assert not github_signature_ok(secret, body, None)
    assert not github_signature_ok(secret, body, "sha256=é")


def test_githubs_documented_signature_example() -> None:
    """docs.github.com "Validating webhook deliveries": secret "It's a Secret to Everybody"
    and payload "Hello, World!" give this signature."""
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert github_signature_ok("It's a Secret to Everybody", b"Hello, World!", expected)
