"""Deployment events in: CDEvents (over CloudEvents) and GitHub ``deployment_status`` webhooks,
each mapped to one execution record (the seed's keywords), or to the reason it maps to none.

Pure: no web stack and no store; ``service/events.py`` serves these and records what they
return through ``record_executions`` (so secrets are redacted like any other record). The
mapping, field by field, is in docs/service.md ("Deployment events"). The decisions:

* **One deployment is one execution, recorded at its final event.** CDEvents:
  ``service.deployed``, ``service.upgraded``, ``service.rolledback`` and
  ``pipelinerun.finished`` (any ``0.x.y`` version) are final; every other CDEvents type is
  acknowledged and records nothing. GitHub: ``success`` → completed, ``failure`` and ``error``
  → failed; ``pending``, ``queued``, ``in_progress`` and ``inactive`` (a later deployment
  superseded this one) are acknowledged and record nothing.
* **The execution id comes from the event, so a redelivery is a duplicate.** GitHub:
  ``github:<owner>:<repo>:<deployment id>``, shared by every status of one deployment.
  CDEvents has no deployment id, so the final event is the deployment:
  ``cdevents:`` + a hash of the event's ``source`` and ``id`` (CloudEvents' identity of an
  event, which a redelivery keeps). ``customData.execution_id`` (or the GitHub deployment
  payload's) overrides both, for a pipeline that knows its own deployment id. Everything in
  the record comes from the event alone (no clock), so the same event gives the same record.
* Times: ``completed_at`` is the final event's time; ``started_at`` is ``customData.
  started_at`` for CDEvents (``deployment.created_at`` for GitHub). A CDEvent without it
  starts at its own time and leaves ``completed_at`` empty: the duration is unknown, and a
  recorded 0 s would be measured as one.
* ``service.rolledback``: the deployment ended rolled back (status ``rolled_back``,
  ``rollback_triggered``); ``rollback_successful`` is true, since the event reports the
  service back on its earlier version.
* A ``pipelinerun.finished`` is a deployment only when its ``customData`` names a
  ``target_environment`` (CDEvents has no environment for a pipeline run); without one it is
  acknowledged and records nothing.
* What neither source has a field for (strategy, resources, gateway, configuration, …) comes
  from ``customData`` or the GitHub deployment's ``payload``; other keys there are ignored,
  since other consumers share those objects.
* A bad event raises ``InvalidRecordError`` naming the *event's* field (``customData.
  gateway_host``, ``subject.content.environment.id``, ``ce-type``), not the record's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from deploylearn.domain import strict_json
from deploylearn.domain.screen import validate_execution
from deploylearn.errors import FieldProblem, InvalidRecordError

# Keys read from CDEvents ``customData`` / the GitHub deployment ``payload`` into the record.
CUSTOM_FIELDS = (
    "execution_id",
    "execution_name",
    "deployment_type",
    "deployment_strategy",
    "gateway_host",
    "resources_deployed",
    "configuration_used",
    "source_environment",
    "user_id",
)
# … and, from CDEvents customData only, these (GitHub has fields of its own for them).
CDEVENTS_ONLY_FIELDS = ("started_at", "failure_reasons")
DEFAULT_DEPLOYMENT_TYPE = "update"  # neither source says; the seed's default for a plan

FINAL_CDEVENTS = frozenset(
    {
        ("service", "deployed"),
        ("service", "upgraded"),
        ("service", "rolledback"),
        ("pipelinerun", "finished"),
    }
)
_CDEVENTS_TYPE = re.compile(
    r"dev\.cdevents\.([a-z]+)\.([a-z]+)\.(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.\-]+)?"
)
PIPELINE_OUTCOMES = {"success": "completed", "failure": "failed", "error": "failed"}

GITHUB_FINAL = {"success": "completed", "failure": "failed", "error": "failed"}
GITHUB_NOT_FINAL = frozenset({"pending", "queued", "in_progress", "inactive"})
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


@dataclass(frozen=True)
class EventOutcome:
    """What one event means for the history: ``record`` (the seed's keywords, already
    validated) for a deployment's final event, else None and ``reason`` says why.
    ``actor``: who the write is audited as when the event itself says (GitHub)."""

    record: dict[str, Any] | None
    reason: str = ""
    actor: str | None = None

    @property
    def execution_id(self) -> str | None:
        return None if self.record is None else str(self.record["execution_id"])


def _problem(path: str, message: str) -> InvalidRecordError:
    return InvalidRecordError([FieldProblem(path, message)])


@dataclass(frozen=True)
class _Object:
    """A JSON object inside an event, whose reads name the full path of what is wrong."""

    data: dict[str, Any]
    path: str = ""

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def optional(self, key: str) -> str | None:
        """A string, or None when absent or empty."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise _problem(self.at(key), f"must be a string, got {type(value).__name__}")
        return value

    def text(self, key: str) -> str:
        value = self.optional(key)
        if value is None:
            raise _problem(self.at(key), "is required")
        return value

    def obj(self, key: str, *, required: bool = True) -> _Object:
        value = self.data.get(key)
        if value is None and not required:
            return _Object({}, self.at(key))
        if not isinstance(value, dict):
            found = "nothing" if value is None else type(value).__name__
            raise _problem(self.at(key), f"must be a JSON object, got {found}")
        return _Object(value, self.at(key))

    def time(self, key: str) -> str:
        """An RFC 3339 time with an offset, as ISO text (naive times reorder history)."""
        text = self.text(key)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise _problem(self.at(key), f"{text!r} is not an RFC 3339 time") from None
        if parsed.utcoffset() is None:
            raise _problem(self.at(key), f"{text!r} has no UTC offset")
        return parsed.isoformat()


def _json_object(body: bytes, path: str = "body") -> dict[str, Any]:
    try:
        value = strict_json.loads(body)
    except strict_json.JsonTextError as exc:
        raise _problem(exc.path or path, str(exc)) from None
    if not isinstance(value, dict):
        raise _problem(path, f"must be a JSON object, got {type(value).__name__}")
    return value


def _validated(record: dict[str, Any], origin: Mapping[str, str], default: str) -> None:
    """Validate ``record`` as an execution; a problem names the event field it came from
    (``origin`` by record field, else ``default`` + the record field)."""
    try:
        validate_execution(record)
    except InvalidRecordError as exc:
        problems = []
        for problem in exc.problems:
            head, dot, rest = problem.field.partition(".")
            where = origin.get(head, f"{default}{head}")
            problems.append(FieldProblem(where + dot + rest, problem.message))
        raise InvalidRecordError(problems) from None


def _custom(values: _Object, keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: values.data[key] for key in keys if values.data.get(key) is not None}


# -- CDEvents over CloudEvents ------------------------------------------------------------
# What a subject gives: record fields, the event field each came from, execution_log parts.
_Found = tuple[dict[str, Any], dict[str, str], list[str]]


def cdevent_request(headers: Mapping[str, str], body: bytes) -> EventOutcome:
    """The execution a CDEvent sent over HTTP means, in either CloudEvents mode.

    Structured mode (``Content-Type: application/cloudevents+json``): the body is the
    CloudEvent, its ``data`` the CDEvent. Binary mode: the attributes are ``ce-*`` headers
    and the body is the CDEvent; a CDEvent posted without any ``ce-*`` header is read the
    same way. The CloudEvent's ``id``, ``source`` and ``type`` must be the CDEvent's.
    """
    headers = {name.lower(): value for name, value in headers.items()}
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media.startswith("application/cloudevents-batch"):
        raise _problem("Content-Type", "batched CloudEvents are not read: one event a request")
    document = _json_object(body)
    if media.startswith("application/cloudevents"):
        envelope = _Object(document)
        if envelope.text("specversion") != "1.0":
            raise _problem("specversion", "must be 1.0")
        if "data_base64" in document:
            raise _problem("data_base64", "is not read: send the CDEvent as JSON in data")
        event = envelope.obj("data")
        attributes = {k: (k, document.get(k)) for k in ("id", "source", "type")}
    else:
        ce = {name[3:]: unquote(value) for name, value in headers.items() if name[:3] == "ce-"}
        event = _Object(document)
        attributes = {}
        if ce:
            if ce.get("specversion") != "1.0":
                raise _problem("ce-specversion", "must be 1.0 (CloudEvents binary mode)")
            attributes = {k: (f"ce-{k}", ce.get(k)) for k in ("id", "source", "type")}
    context = event.obj("context")
    for key, (name, value) in attributes.items():
        if not value:
            raise _problem(name, "is required (a CloudEvents attribute)")
        if value != context.get(key):
            raise _problem(name, f"{value!r} is not the CDEvent's {context.at(key)}")
    return _cdevent(event)


def cdevent_outcome(event: dict[str, Any]) -> EventOutcome:
    """The execution one CDEvent (the JSON object of the v0.4 schemas) means."""
    return _cdevent(_Object(event))


def _cdevent(event: _Object) -> EventOutcome:
    context = event.obj("context")
    kind = context.text("type")
    found = _CDEVENTS_TYPE.fullmatch(kind)
    if found is None:
        if not kind.startswith("dev.cdevents."):
            raise _problem(context.at("type"), f"{kind!r} is not a CDEvents type")
        raise _problem(context.at("type"), f"{kind!r} has no version (dev.cdevents.…0.2.0)")
    subject_name, predicate, major = found.group(1), found.group(2), found.group(3)
    if (subject_name, predicate) not in FINAL_CDEVENTS:
        return EventOutcome(None, f"{kind} is not a deployment's final event: nothing recorded")
    if major != "0":
        raise _problem(context.at("type"), f"{kind!r}: only versions 0.x.y are read")
    context.text("version")
    event_id, source = context.text("id"), context.text("source")
    timestamp = context.time("timestamp")
    subject = event.obj("subject")
    custom = event.obj("customData", required=False)
    if subject_name == "service":
        read: _Found | None = _service(subject, predicate)
    else:
        read = _pipeline_run(subject, custom)
    if read is None:
        return EventOutcome(
            None,
            f"{kind} without customData.target_environment is not a deployment: nothing recorded",
        )
    fields, origin, log = read
    given = _custom(custom, CUSTOM_FIELDS + CDEVENTS_ONLY_FIELDS)
    record: dict[str, Any] = {
        "execution_id": "cdevents:" + _digest(source, event_id),
        "deployment_type": DEFAULT_DEPLOYMENT_TYPE,
        "started_at": timestamp,
        # without a start, the duration is unknown: a recorded 0 s would be measured as one
        "completed_at": timestamp if "started_at" in given else None,
        "automation_triggered": True,
        "execution_log": "; ".join(
            part for part in (f"cdevents {kind} {event_id} from {source}", *log) if part
        ),
        **fields,
        **given,
    }
    origin = {
        "completed_at": context.at("timestamp"),
        "started_at": context.at("timestamp"),
        **origin,
        **{key: custom.at(key) for key in given},
    }
    _validated(record, origin, f"{custom.path}.")
    return EventOutcome(record)


def _service(subject: _Object, predicate: str) -> _Found:
    """service.deployed / upgraded / rolledback: the environment is the subject's."""
    subject_id = subject.text("id")
    content = subject.obj("content")
    environment = content.obj("environment")
    target = environment.text("id")
    artifact = content.optional("artifactId")
    fields: dict[str, Any] = {
        "target_environment": target,
        "execution_name": f"{subject_id} {predicate} to {target}",
        "status": "completed",
    }
    if predicate == "rolledback":
        fields.update(status="rolled_back", rollback_triggered=True, rollback_successful=True)
    origin = {"target_environment": environment.at("id"), "execution_name": subject.at("id")}
    log = [
        f"subject {subject_id}",
        f"environment {target} {environment.optional('source') or ''}".strip(),
        f"artifact {artifact}" if artifact else "",
    ]
    return fields, origin, log


def _pipeline_run(subject: _Object, custom: _Object) -> _Found | None:
    """pipelinerun.finished: a deployment only when customData names its environment."""
    target = custom.get("target_environment")
    if target is None:
        return None
    subject_id = subject.text("id")
    content = subject.obj("content")
    outcome = content.text("outcome")
    if outcome not in PIPELINE_OUTCOMES:
        raise _problem(content.at("outcome"), f"{outcome!r} is not success, failure or error")
    name = content.optional("pipelineName") or subject_id
    fields: dict[str, Any] = {
        "target_environment": target,
        "execution_name": f"{name} to {target}",
        "status": PIPELINE_OUTCOMES[outcome],
    }
    origin = {
        "target_environment": custom.at("target_environment"),
        "execution_name": content.at("pipelineName"),
    }
    errors = content.optional("errors")
    if errors and outcome != "success":
        fields["failure_reasons"] = [errors]
        origin["failure_reasons"] = content.at("errors")
    log = [f"subject {subject_id}", f"pipeline {name} {outcome} {content.optional('url') or ''}"]
    return fields, origin, [part.strip() for part in log]


def _digest(*parts: str | None) -> str:
    """32 hex digits naming ``parts`` (an identifier's characters and length are limited)."""
    joined = "\n".join(part or "" for part in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


# -- GitHub deployment_status -------------------------------------------------------------
def github_signature_ok(secret: str, body: bytes, signature: str | None) -> bool:
    """``X-Hub-Signature-256`` is ``sha256=`` + the HMAC-SHA256 of the raw body under the
    webhook's secret (compared in constant time)."""
    if not signature:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def github_request(headers: Mapping[str, str], body: bytes) -> EventOutcome:
    """The execution a GitHub webhook delivery means (its signature already checked)."""
    headers = {name.lower(): value for name, value in headers.items()}
    kind = headers.get("x-github-event")
    if not kind:
        raise _problem("X-GitHub-Event", "is required (a GitHub webhook delivery)")
    payload = _json_object(body)
    if kind == "ping":
        return EventOutcome(None, "ping: the webhook reaches deploylearn")
    if kind != "deployment_status":
        return EventOutcome(None, f"a {kind} event is not read here: nothing recorded")
    return github_outcome(payload)


def github_outcome(payload: dict[str, Any]) -> EventOutcome:
    """The execution one ``deployment_status`` webhook payload means."""
    event = _Object(payload)
    status = event.obj("deployment_status")
    state = status.text("state")
    if state in GITHUB_NOT_FINAL:
        return EventOutcome(None, f"deployment_status {state} is not final: nothing recorded")
    if state not in GITHUB_FINAL:
        raise _problem(status.at("state"), f"{state!r} is not a GitHub deployment state")
    repository = event.obj("repository").text("full_name")
    deployment = event.obj("deployment")
    number = deployment.get("id")
    if not isinstance(number, int) or isinstance(number, bool):
        raise _problem(deployment.at("id"), "must be an integer")
    custom = _deployment_payload(deployment)
    environment = status.optional("environment")
    env_field = status.at("environment")
    if environment is None:
        environment, env_field = deployment.text("environment"), deployment.at("environment")
    ref = deployment.optional("ref")
    task = deployment.optional("task") or "deploy"
    description = status.optional("description")
    creator = deployment.get("creator")
    derived = f"github:{repository.replace('/', ':')}:{number}"
    if not _IDENTIFIER.fullmatch(derived):
        derived = "github:" + _digest(repository, str(number))
    record: dict[str, Any] = {
        "execution_id": derived,
        "execution_name": f"{repository} {task} of {ref or 'deployment'} to {environment}",
        "deployment_type": DEFAULT_DEPLOYMENT_TYPE,
        "target_environment": environment,
        "status": GITHUB_FINAL[state],
        "started_at": deployment.time("created_at"),
        "completed_at": status.time("created_at"),
        "automation_triggered": True,
        "user_id": creator.get("login") if isinstance(creator, dict) else None,
        "failure_reasons": [description] if description and state != "success" else [],
    }
    log = [
        f"github deployment_status {state} on {repository} deployment {number}",
        f"{task} of {ref or '?'} at {deployment.get('sha') or '?'}",
        str(status.get("log_url") or status.get("target_url") or ""),
    ]
    record["execution_log"] = "; ".join(part for part in log if part)
    given = _custom(custom, CUSTOM_FIELDS)
    record.update(given)
    origin = {
        "target_environment": env_field,
        "started_at": deployment.at("created_at"),
        "completed_at": status.at("created_at"),
        "failure_reasons": status.at("description"),
        "user_id": deployment.at("creator.login"),
        "execution_name": deployment.at("task"),
        **{key: custom.at(key) for key in given},
    }
    _validated(record, origin, f"{custom.path}.")
    return EventOutcome(record, actor=f"github:{repository}")


def _deployment_payload(deployment: _Object) -> _Object:
    """The deployment's ``payload``: an object, or (as GitHub allows) JSON text of one."""
    where = deployment.at("payload")
    value = deployment.get("payload")
    if isinstance(value, str):
        value = _json_object(value.encode(), where) if value.strip() else {}
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _problem(where, f"must be a JSON object, got {type(value).__name__}")
    return _Object(value, where)

