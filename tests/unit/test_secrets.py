"""No secret leaves in clear, whatever its shape, and the key holder gets each one back.

The corpus (``secret_corpus``, 60+ shapes) goes in through every write path (ingest, the
Python API, ``ign deploy record``), then every place it could come out is searched for the
canaries: the store's files byte for byte, exports, every CLI answer (``--json`` and tables),
everything ``ign train`` leaves in MLflow (artifacts and the SQLite database), the logs, and on
Neo4j every node's and relationship's labels, properties and ids.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.fernet import Fernet, InvalidToken
from neo4j import GraphDatabase
from typer.testing import CliRunner

from deploylearn import DeploymentPatternLearner
from deploylearn.cli.app import app
from deploylearn.domain.prepared import prepare
from deploylearn.domain.redaction import (
    ENCRYPTED_PREFIX,
    REDACTED,
    SecretCipher,
    is_secret_key,
    mask,
    protect,
    protect_text,
    reveal,
)
from deploylearn.domain.screen import validate_execution
from deploylearn.errors import SecretKeyError
from deploylearn.store.neo4j.store import parse_neo4j_url
from deploylearn.synthetic import SyntheticWorld
from tests.conftest import make_record, neo4j_url
from tests.unit.secret_corpus import (
    SHAPES,
    VISIBLE,
    all_leaks,
    canary,
    corpus_records,
    leaks,
)

KEY = "operator passphrase for the corpus"
ISSUE_EXAMPLE = {  # the configuration of the issue's report, canaries S1..S3
    "credentials": {"user": "a", "value": "IssueS1secret"},
    "servers": [{"password": "IssueS2secret"}],
    "jdbc_url": "jdbc:pg://h/db?password=IssueS3secret",
}


def _files(folder: Path) -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()]


def _demo(learner: DeploymentPatternLearner, n: int) -> None:
    world = SyntheticWorld(seed=3, start=datetime(2025, 1, 1, tzinfo=UTC), days=90)
    for batch in world.generate(n_executions=n, batch_size=5000):
        learner.record_executions(batch.records)


def _write_corpus(learner: DeploymentPatternLearner, inputs: Path) -> None:
    """The corpus through each write path: half ingested from a file (2 workers where the
    store allows), half through the API; an adaptation and a rollback carry secrets too."""
    records = corpus_records()
    half = len(records) // 2
    source = inputs / "corpus.jsonl"
    source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records[:half]))
    report = learner.ingest(source, workers=2)
    assert report.rejected == 0, report.errors
    assert learner.record_executions(records[half:]).rejected == 0
    learner.record_environment_adaptation(
        adaptation_name=f"rotate token={canary(0)}",
        source_environment="staging",
        target_environment="production",
        adaptation_rules=[f"set password={canary(1)}", "raise timeout"],
        original_configuration={"timeout": 30, "credentials": {"pw": canary(2)}},
        adapted_configuration={"timeout": 60, "dsn": f"postgres://u:{canary(3)}@db/x"},
    )


class Cli:
    """``ign`` in process; keeps everything it printed."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.printed: list[tuple[str, str]] = []
        self.runner = CliRunner()

    def __call__(self, *args: str) -> str:
        result = self.runner.invoke(app, [*args, "--store", self.store])
        assert result.exit_code == 0, (args, result.output, result.exception)
        self.printed.append((" ".join(args), result.output))
        return result.stdout


def _every_answer(cli: Cli, tmp: Path, *, stored: bool = True) -> None:
    """Every question in both renderings; with ``stored`` also each record, status, exports."""
    for fmt in ("--json", None):
        extra = [fmt] if fmt else []
        cli("deploy", "recommendations", "-e", "production", "-r", "project,database", *extra)
        cli("deploy", "recommendations", "-e", "production", "-r", "project", *extra)
        cli("deploy", "adaptations", "-s", "staging", "-t", "production", *extra)
        cli("deploy", "rollback-scenarios", "-e", "production", *extra)
        cli("deploy", "analytics", "-e", "production", "--days", "365", *extra)
        for config in (ISSUE_EXAMPLE, {"db_pass": canary(3), "timeout": 30}, _planned_config()):
            cli(
                "deploy", "predict", "-e", "production", "-s", "blue_green",
                "-r", "project,database", "-c", json.dumps(config), *extra,
            )  # fmt: skip
        if stored:
            for i in range(len(SHAPES)):
                cli("deploy", "show", f"secret-{i:03d}", *extra)
            cli("db", "status", *extra)
    if stored:
        cli("deploy", "export", str(tmp / "export.jsonl"))
        cli("deploy", "export", str(tmp / "export.csv"))


def _planned_config() -> dict[str, Any]:
    """Every configuration-shaped secret of the corpus in one planned deployment."""
    merged: dict[str, Any] = {}
    for record in corpus_records():
        merged.update(record["configuration_used"])
    return merged


def test_no_secret_shape_leaves_in_clear(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Redaction (no key): store file, exports, CLI, ``ign train``'s MLflow, logs."""
    assert len(SHAPES) >= 50
    monkeypatch.delenv("DEPLOYLEARN_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    tracking = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)  # serving loads the champion from it
    caplog.set_level(logging.DEBUG)
    url = f"duckdb://{tmp_path / 'store' / 'store.duckdb'}"
    inputs = tmp_path_factory.mktemp("inputs")  # the input file holds the secrets: not scanned

    with DeploymentPatternLearner.open(url) as learner:
        _demo(learner, 1200)
        _write_corpus(learner, inputs)
    cli = Cli(url)
    cli(
        "deploy", "record", "-n", "issue example", "-e", "production", "-g", "gw-issue",
        "-s", "blue_green", "-r", "project", "-c", json.dumps(ISSUE_EXAMPLE),
        "--started-at", "2025-03-03T10:00:00+00:00",
    )  # fmt: skip
    _every_answer(cli, tmp_path)
    cli("train", "--tracking-uri", tracking, "--no-tune", "--force")
    _every_answer(cli, tmp_path, stored=False)  # with a champion: risk factors, model ranking

    files = _files(tmp_path)
    assert any(p.endswith(".duckdb") for p, _ in files)
    artifacts = [(p, b) for p, b in files if "/mlruns/" in p]
    assert any(p.endswith("MLmodel") for p, _ in artifacts)
    assert any(p.endswith("input_example.json") for p, _ in artifacts)
    # controls: the scans read plain text (a visible knob and a name are found)
    assert VISIBLE.encode() in b"".join(b for _, b in artifacts).lower()
    assert b"issue example" in b"".join(b for p, b in files if "/store/" in p)
    captured = capfd.readouterr()
    blobs = [*files, *cli.printed, ("logs", caplog.text), ("stderr", captured.err)]
    issue_leaks = [
        f"{where}: {secret}"
        for where, blob in blobs
        for secret in ("IssueS1secret", "IssueS2secret", "IssueS3secret")
        if secret.lower().encode() in (blob if isinstance(blob, bytes) else blob.encode()).lower()
    ]
    assert all_leaks(blobs) == [] and issue_leaks == []


def test_each_secret_round_trips_for_the_key_holder(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Encryption: nothing in clear in the file or an export; ``get_execution(decrypt=True)``
    (audited) and ``ign deploy show --decrypt`` give each secret back."""
    monkeypatch.setenv("DEPLOYLEARN_SECRET_KEY", KEY)
    url = f"duckdb://{tmp_path / 'store' / 'store.duckdb'}"
    with DeploymentPatternLearner.open(url) as learner:
        _write_corpus(learner, tmp_path_factory.mktemp("inputs"))
        learner.export(tmp_path / "export.jsonl")
        learner.export(tmp_path / "export.csv")
        stored = [learner.store.get_execution(f"secret-{i:03d}") for i in range(len(SHAPES))]
        revealed = [
            learner.get_execution(f"secret-{i:03d}", decrypt=True) for i in range(len(SHAPES))
        ]
        audit = learner.store.audit_log(limit=1000)
        record = learner.store.key_record()
        adaptation = learner.store.adaptations()[0]
    assert all_leaks(_files(tmp_path)) == []
    assert all_leaks(("stored", orjson.dumps(s)) for s in stored) == []
    originals = corpus_records()
    missing = []
    for i, shape in enumerate(SHAPES):
        got = revealed[i]
        assert got is not None
        if shape.field == "configuration_used":
            ok = got["configuration_used"] == originals[i]["configuration_used"]
        else:
            ok = canary(i) in json.dumps(got[shape.field])
        if not ok:
            missing.append(shape.name)
    assert missing == []
    decrypts = {e.entity_id for e in audit if e.action == "decrypt_execution"}
    assert decrypts == {f"secret-{i:03d}" for i in range(len(SHAPES))}
    assert record is not None
    cipher = SecretCipher(KEY, base64.b64decode(record.salt))
    assert canary(2) in json.dumps(reveal(adaptation.original_configuration, cipher))
    assert canary(3) in json.dumps(reveal(adaptation.adapted_configuration, cipher))

    result = CliRunner().invoke(
        app, ["deploy", "show", "secret-000", "--decrypt", "--json", "--store", url]
    )
    assert result.exit_code == 0 and canary(0) in result.stdout
    monkeypatch.delenv("DEPLOYLEARN_SECRET_KEY")
    result = CliRunner().invoke(app, ["deploy", "show", "secret-000", "--json", "--store", url])
    assert result.exit_code == 0 and leaks(result.stdout, "show") == []


def test_identity_does_not_depend_on_the_key() -> None:
    """The masked view of an encrypted record is the redacted record: same content hash, same
    template (so the same pattern), with or without a key."""
    cipher = SecretCipher(KEY, b"0123456789abcdef")
    for record in corpus_records():
        plain = prepare(validate_execution(record))
        encrypted = prepare(validate_execution(record), cipher)
        assert encrypted.content_hash == plain.content_hash
        assert encrypted.template == plain.template
        assert mask(encrypted.configuration_used) == plain.configuration_used
        assert [i.issue_id for i in encrypted.issues] == [i.issue_id for i in plain.issues]
        again = prepare(validate_execution(encrypted.to_seed_dict()), cipher)  # a re-ingest
        assert again.content_hash == plain.content_hash


def test_a_token_that_reads_like_an_assignment_keeps_the_text_after_it() -> None:
    """Fernet's random base64 sometimes reads like ``…Pw=`` (about 1 token in 70): re-protecting
    ``token enc:v1:…= used`` must not hide ``used``, or a re-ingest changes the content hash."""
    cipher = SecretCipher(KEY, b"0123456789abcdef")
    for _ in range(5000):
        token = cipher.encrypt("correct horse battery")  # 23 bytes of JSON: one "=" of padding
        body = token.removeprefix(ENCRYPTED_PREFIX)
        if body.endswith("=") and not body.endswith("==") and is_secret_key(body[:-1]):
            break
    else:
        pytest.fail("no token reading like an assignment in 5000 tries")
    text = f"token {token} used"
    assert protect_text(text, cipher) == text
    assert mask(protect_text(text, cipher)) == f"token {REDACTED} used"


def test_writes_under_another_key_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"duckdb://{tmp_path / 'store.duckdb'}"
    monkeypatch.setenv("DEPLOYLEARN_SECRET_KEY", KEY)
    with DeploymentPatternLearner.open(url) as learner:
        learner.record_deployment_execution(**make_record(1, configuration_used={"pw": "a1"}))
    monkeypatch.setenv("DEPLOYLEARN_SECRET_KEY", "someone else's passphrase")
    source = tmp_path / "more.jsonl"
    source.write_bytes(orjson.dumps(make_record(3)) + b"\n")
    with DeploymentPatternLearner.open(url) as learner:
        with pytest.raises(SecretKeyError, match="not the key"):
            learner.record_deployment_execution(**make_record(2))
        with pytest.raises(SecretKeyError):
            learner.ingest(source)
        with pytest.raises(SecretKeyError):
            learner.get_execution("t-000001", decrypt=True)
        assert learner.store.stats().executions == 1
        entries = [e.action for e in learner.store.audit_log()]
    assert entries.count("set_secret_key") == 1
    result = CliRunner().invoke(app, ["deploy", "show", "t-000001", "--decrypt", "--store", url])
    assert result.exit_code != 0


def test_the_key_is_salted_per_store_and_stretched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same passphrase gives another key in another store, and the key is not the old
    unsalted SHA-256 of the passphrase."""
    monkeypatch.setenv("DEPLOYLEARN_SECRET_KEY", KEY)
    tokens, salts = [], []
    for name in ("a", "b"):
        url = f"duckdb://{tmp_path / name / 'store.duckdb'}"
        with DeploymentPatternLearner.open(url) as learner:
            learner.record_deployment_execution(**make_record(1, configuration_used={"pw": "x"}))
            stored = learner.store.get_execution("t-000001")
            record = learner.store.key_record()
        assert stored is not None and record is not None
        tokens.append(stored["configuration_used"]["pw"])
        salts.append(base64.b64decode(record.salt))
    assert salts[0] != salts[1] and len(salts[0]) >= 16
    with pytest.raises(ValueError):
        SecretCipher(KEY, salts[1]).decrypt(tokens[0])
    assert SecretCipher(KEY, salts[0]).decrypt(tokens[0]) == "x"
    legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(KEY.encode()).digest()))
    with pytest.raises(InvalidToken):
        legacy.decrypt(tokens[0].removeprefix("enc:v1:").encode())


def test_an_enc_prefix_is_a_secret_unless_it_decrypts_under_the_key() -> None:
    mine = SecretCipher(KEY, b"0123456789abcdef")
    other = SecretCipher("another", b"0123456789abcdef")
    foreign = other.encrypt("s3cret")
    assert protect({"password": "enc:v1:plaintext"}) == {"password": REDACTED}
    assert protect({"password": foreign}) == {"password": REDACTED}
    rewrapped = protect({"password": foreign}, mine)["password"]
    assert rewrapped != foreign and mine.decrypt(rewrapped) == foreign
    own = mine.encrypt("s3cret")
    assert protect({"password": own}, mine) == {"password": own}


@pytest.mark.neo4j
@pytest.mark.parametrize("secret_key", [None, KEY])
def test_no_secret_reaches_neo4j(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    secret_key: str | None,
) -> None:
    """Every node and relationship on the real server: labels, properties, ids; with a key,
    each secret comes back for its holder. (The store's key record outlives a wipe, so every
    test that encrypts on the shared test server uses ``KEY``.)"""
    url = neo4j_url()
    if url is None:
        pytest.skip("no Neo4j server (set DEPLOYLEARN_TEST_NEO4J, see scripts/neo4j-server)")
    if secret_key:
        monkeypatch.setenv("DEPLOYLEARN_SECRET_KEY", secret_key)
    else:
        monkeypatch.delenv("DEPLOYLEARN_SECRET_KEY", raising=False)
    with DeploymentPatternLearner.open(url) as learner:
        learner.store.wipe()
        _demo(learner, 300)
        _write_corpus(learner, tmp_path_factory.mktemp("inputs"))
        learner.record_deployment_execution(**make_record(500, configuration_used=ISSUE_EXAMPLE))
        parsed = parse_neo4j_url(url)  # a driver of the test's own: the store exposes none
        with GraphDatabase.driver(parsed.address, auth=parsed.auth) as driver:
            nodes, _, _ = driver.execute_query(
                "MATCH (n) RETURN elementId(n) AS id, labels(n) AS labels, properties(n) AS props",
                database_=parsed.database,
            )
            relationships, _, _ = driver.execute_query(
                "MATCH ()-[r]->() RETURN elementId(r) AS id, type(r) AS type, "
                "properties(r) AS props",
                database_=parsed.database,
            )
        revealed = [
            learner.get_execution(f"secret-{i:03d}", decrypt=True) if secret_key else None
            for i in range(len(SHAPES))
        ]
        learner.store.wipe()
    dump = orjson.dumps([r.data() for r in [*nodes, *relationships]], default=str)
    settings = [n for n in nodes if "ConfigSetting" in n["labels"]]
    assert settings and VISIBLE.encode() in dump.lower()  # control
    assert all_leaks([("neo4j", dump)]) == []
    assert not any(s.lower().encode() in dump.lower() for s in ("IssueS1secret", "IssueS2secret"))
    if secret_key:
        back = [canary(i) in orjson.dumps(r).decode() for i, r in enumerate(revealed)]
        assert all(back), [s.name for s, ok in zip(SHAPES, back, strict=True) if not ok]
