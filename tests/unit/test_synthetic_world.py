"""The synthetic world: reproducible, well-formed, and its oracle is the model it drew from."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from deploylearn.synthetic import SyntheticWorld, WorldBatch
from deploylearn.synthetic.catalogue import KNOB_DEFAULTS, TEMPLATES
from deploylearn.synthetic.model import working_hours
from deploylearn.synthetic.world import CHUNK

START = datetime(2025, 1, 1, tzinfo=UTC)
KEYS = {
    "execution_id", "execution_name", "deployment_type", "target_environment",
    "source_environment", "gateway_host", "deployment_strategy", "resources_deployed",
    "configuration_used", "status", "started_at", "completed_at", "failure_reasons",
    "rollback_triggered", "rollback_successful", "user_id", "automation_triggered",
    "execution_log", "performance_data", "lessons_learned",
}
VOLATILE = {"build_number", "commit", "requested_at"}
SECRETS = {"db_password", "api_token"}


def _batches(n: int, batch_size: int = 20_000, seed: int = 0, **kw: Any) -> list[WorldBatch]:
    return list(SyntheticWorld(seed=seed, start=START, **kw).generate(n, batch_size))


def _flat(batches: list[WorldBatch]) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    records = [r for b in batches for r in b.records]
    p = np.concatenate([b.true_success_probability for b in batches])
    tpl = np.concatenate([b.template_index for b in batches])
    return records, p, tpl


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld(seed=0, start=START, days=365)


@pytest.fixture(scope="module")
def history(world: SyntheticWorld) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    return _flat(list(world.generate(n_executions=40_000, batch_size=20_000)))


def _success(r: dict[str, Any]) -> bool:
    return r["status"] == "completed" and not r["rollback_triggered"]


def _knobs(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in VOLATILE | SECRETS}


# ------------------------------------------------------------------ reproducibility
def test_same_seed_same_records_and_other_seed_differs() -> None:
    a, pa, _ = _flat(_batches(3_000))
    b, pb, _ = _flat(_batches(3_000))
    c, _, _ = _flat(_batches(3_000, seed=1))
    assert a == b
    assert np.array_equal(pa, pb)
    assert [r["configuration_used"] for r in a] != [r["configuration_used"] for r in c]
    assert [r["status"] for r in a] != [r["status"] for r in c]


def test_batch_size_does_not_change_the_stream() -> None:
    n = 2 * CHUNK + 1_234
    reference, p_ref, t_ref = _flat(_batches(n, batch_size=n))
    for batch_size in (777, CHUNK, 5_000):
        batches = _batches(n, batch_size=batch_size)
        assert all(len(b) == batch_size for b in batches[:-1])
        assert [b.start_index for b in batches] == list(range(0, n, batch_size))
        records, p, tpl = _flat(batches)
        assert records == reference
        assert np.array_equal(p, p_ref) and np.array_equal(tpl, t_ref)


@pytest.mark.parametrize("n", [1, 50, 999])
def test_small_sizes_and_batches_larger_than_n(n: int) -> None:
    batches = _batches(n, batch_size=20_000)
    assert len(batches) == 1 and len(batches[0]) == n
    ids = [r["execution_id"] for r in batches[0].records]
    assert len(set(ids)) == n and ids[0] == "demo-0-00000000"


def test_generation_streams_lazily() -> None:
    """A billion executions is fine as long as only the first batch is asked for."""
    first = next(SyntheticWorld(seed=2).generate(n_executions=10**9, batch_size=100))
    assert len(first.records) == 100


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        next(SyntheticWorld().generate(10, batch_size=0))
    with pytest.raises(ValueError, match="start"):
        SyntheticWorld(start=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="target_environment"):
        SyntheticWorld().success_probability("moon", "h", "direct", ["project"], {}, START)


# ------------------------------------------------------------------ record shape
def test_records_have_exactly_the_seed_keys_and_serialize(history: Any) -> None:
    records, p, _ = history
    assert len(p) == len(records)

    def default(o: object) -> str:
        if isinstance(o, datetime):
            return o.isoformat()
        raise TypeError(type(o))

    for r in records[:3_000]:
        assert set(r) == KEYS
        json.dumps(r, default=default)
        assert r["resources_deployed"] and len(set(r["resources_deployed"])) == len(
            r["resources_deployed"]
        )
        assert r["started_at"].tzinfo is not None and r["completed_at"] > r["started_at"]
    assert len({r["execution_id"] for r in records}) == len(records)


def test_time_ordered_spread_over_the_year_with_working_hour_bias(history: Any) -> None:
    records, _, _ = history
    starts = [r["started_at"] for r in records]
    assert all(a <= b for a, b in itertools.pairwise(starts))
    assert starts[0] < START + timedelta(days=5)
    assert starts[-1] > START + timedelta(days=355) and starts[-1] < START + timedelta(days=365)
    t = np.array([s.timestamp() for s in starts])
    assert working_hours(t).mean() > 0.6  # working hours are 36% of the week
    assert all(r["completed_at"] > r["started_at"] for r in records)


def test_status_and_rollback_are_consistent(history: Any) -> None:
    records, _, _ = history
    statuses = Counter(r["status"] for r in records)
    assert set(statuses) == {"completed", "failed", "rolled_back"}
    for r in records:
        rolled = r["status"] == "rolled_back"
        assert r["rollback_triggered"] is rolled
        assert (r["rollback_successful"] is None) is (not rolled)
        assert ("rollback_duration_s" in r["performance_data"]) is rolled
        assert bool(r["failure_reasons"]) is (r["status"] != "completed")
        assert r["source_environment"] in (None, "development", "test", "qa", "staging")


def test_rolled_back_runs_take_longer_than_plain_failures(history: Any) -> None:
    records, _, _ = history

    def median(status: str) -> float:
        return float(np.median([(r["completed_at"] - r["started_at"]).total_seconds()
                                for r in records if r["status"] == status]))

    assert median("rolled_back") > median("completed") > median("failed")


# ------------------------------------------------------------------ the oracle
def test_true_probability_is_the_oracle_for_each_record(
    world: SyntheticWorld, history: Any
) -> None:
    records, p, _ = history
    rng = np.random.default_rng(0)
    for i in rng.choice(len(records), 300, replace=False):
        r = records[i]
        q = world.success_probability(
            target_environment=r["target_environment"], gateway_host=r["gateway_host"],
            deployment_strategy=r["deployment_strategy"],
            resources_deployed=r["resources_deployed"],
            configuration_used=r["configuration_used"], at=r["started_at"],
            source_environment=r["source_environment"], deployment_type=r["deployment_type"],
        )
        assert q == pytest.approx(p[i], rel=1e-12, abs=1e-15)
    assert np.allclose(world.success_probabilities(records[:5_000]), p[:5_000], rtol=1e-12)


def test_outcomes_are_bernoulli_of_the_true_probability(history: Any) -> None:
    records, p, _ = history
    n = 20_000
    won = np.array([_success(r) for r in records[:n]], dtype=float)
    se = np.sqrt((p[:n] * (1 - p[:n])).sum()) / n
    assert abs(won.mean() - p[:n].mean()) < 4 * se
    assert 0.75 <= p.mean() <= 0.85
    # and calibrated within bins, not just on average
    for lo, hi in ((0.0, 0.5), (0.5, 0.8), (0.8, 1.0)):
        sel = (p[:n] >= lo) & (p[:n] < hi)
        assert abs(won[sel].mean() - p[:n][sel].mean()) < 0.03


def test_volatile_and_secret_keys_have_no_effect(world: SyntheticWorld) -> None:
    config = TEMPLATES[0].configuration
    args = ("production", "prod-gateway-02.plant-a.local", "blue_green", ["project", "database"])
    base = world.success_probability(*args, config, START + timedelta(days=30))
    noisy = {**config, "build_number": 99, "commit": "ab12cd3", "db_password": "hunter2",
             "api_token": "t0k", "requested_at": "2025-02-01T00:00:00Z"}
    assert world.success_probability(*args, noisy, START + timedelta(days=30)) == base
    spelled = {k.replace("_", "-").title(): str(v) for k, v in config.items()}
    assert world.success_probability(*args, spelled, START + timedelta(days=30)) == base


def test_interactions_the_learner_should_find(world: SyntheticWorld) -> None:
    at = START + timedelta(days=20)
    gw = "prod-gateway-02.plant-a.local"
    hardened = dict(TEMPLATES[1].configuration)

    def p(env: str, strategy: str, resources: list[str], **changes: Any) -> float:
        host = gw if env == "production" else world.gateways[env][0]
        src = {"production": "staging", "development": None}.get(env, "development")
        return world.success_probability(env, host, strategy, resources, {**hardened, **changes},
                                         at, source_environment=src)

    db = ["project", "database"]
    assert p("production", "blue_green", db, backup_enabled=False) < p(
        "production", "blue_green", db) - 0.15
    good = p("production", "blue_green", db)
    assert p("production", "blue_green", db, ssl_validation=False) < good
    assert p("production", "blue_green", db, audit_enabled=False) < good
    assert p("production", "blue_green", db, security_policy="standard") < good
    assert p("production", "direct", db) < p("production", "blue_green", db) - 0.1
    assert p("development", "direct", db) > p("development", "blue_green", db)
    assert p("production", "canary", db, canary_percent=50) < p(
        "production", "canary", db, canary_percent=10) - 0.1
    many = ["project", "database", "historian", "opc_ua_connection", "tag_provider"]
    assert p("production", "blue_green", many, validation_timeout=60) < p(
        "production", "blue_green", many) - 0.1


# ------------------------------------------------------------------ hidden structure
def test_most_popular_production_template_is_not_the_best(
    world: SyntheticWorld, history: Any
) -> None:
    records, p, tpl = history
    prod = np.array([r["target_environment"] == "production" for r in records])
    counts = Counter(tpl[prod].tolist())
    popular = counts.most_common(1)[0][0]
    mean_p = {t: p[prod & (tpl == t)].mean() for t, c in counts.items() if c >= 100}
    best = max(mean_p, key=mean_p.__getitem__)
    assert best != popular
    assert mean_p[best] > mean_p[popular] + 0.1
    # the same holds for the oracle in a fixed, typical context
    args = ("production", "prod-gateway-02.plant-a.local", ["project", "database"],
            START + timedelta(days=60))
    strategy, config, p_best = world.best_pattern(*args, source_environment="staging")
    pop = TEMPLATES[popular]
    p_pop = world.success_probability(args[0], args[1], pop.strategy, args[2],
                                      pop.configuration, args[3], "staging")
    assert p_best > p_pop + 0.1
    assert p_best == pytest.approx(
        world.success_probability(args[0], args[1], strategy, args[2], config, args[3], "staging")
    )
    assert p_best == pytest.approx(max(world.template_probabilities(
        args[0], args[1], args[2], args[3], "staging")))


def test_flaky_gateway_is_worse_than_its_peers(world: SyntheticWorld, history: Any) -> None:
    truth = world.truth()
    flaky = next(h for h, env in truth["flaky_gateways"].items() if env == "production")
    peers = [h for h in world.gateways["production"]
             if h != flaky and h != truth["drift_gateway"]]
    at = START + timedelta(days=10)
    cfg = TEMPLATES[1].configuration

    def p(host: str) -> float:
        return world.success_probability("production", host, "blue_green", ["project"], cfg, at,
                                         "staging")

    assert all(p(flaky) < p(peer) - 0.05 for peer in peers)
    records, _, _ = history
    rate = {h: np.mean([_success(r) for r in records if r["gateway_host"] == h])
            for h in [flaky, *peers]}
    assert rate[flaky] < min(rate[h] for h in peers) - 0.05
    reasons = [r["failure_reasons"][0] for r in records
               if r["gateway_host"] == flaky and r["failure_reasons"]]
    assert sum("unreachable" in s for s in reasons) / len(reasons) > 0.2


def test_drift_changes_probabilities_over_time(world: SyntheticWorld) -> None:
    truth = world.truth()
    early, late = START + timedelta(days=15), START + timedelta(days=350)
    assert truth["upgrade_at"] < truth["drift_gateway_at"] < late
    cfg = TEMPLATES[TEMPLATES.index(next(t for t in TEMPLATES
                                         if t.template_id == "tpl-rolling-one"))].configuration

    def logit(host: str, at: datetime) -> float:
        q = world.success_probability("production", host, "rolling",
                                      ["project", "perspective"], cfg, at, "staging")
        return float(np.log(q / (1 - q)))

    stable = next(h for h in world.gateways["production"]
                  if h != truth["drift_gateway"] and h not in truth["flaky_gateways"])
    assert logit(stable, late) < logit(stable, early) - 0.5  # Perspective after the upgrade
    drift = truth["drift_gateway"]
    assert logit(drift, late) - logit(stable, late) < logit(drift, early) - logit(
        stable, early) - 1.0


def test_failure_reasons_follow_the_cause(history: Any) -> None:
    records, _, _ = history
    failed = [r for r in records if r["failure_reasons"]]

    def share(rows: list[dict[str, Any]], needle: str) -> float:
        return sum(needle in r["failure_reasons"][0] for r in rows) / max(1, len(rows))

    db = [r for r in failed if "database" in r["resources_deployed"]]
    no_backup = [r for r in db if not r["configuration_used"].get("backup_enabled", False)]
    with_backup = [r for r in db if r["configuration_used"].get("backup_enabled", False)]
    assert share(no_backup, "Database migration failed") > 0.25
    assert share(with_backup, "Database migration failed") == 0.0
    prod = [r for r in failed if r["target_environment"] == "production"]
    no_ssl = [r for r in prod if not r["configuration_used"].get("ssl_validation", False)]
    ssl = [r for r in prod if r["configuration_used"].get("ssl_validation", False)]
    assert share(no_ssl, "SSL handshake failed") > 0.05
    assert share(ssl, "SSL handshake failed") == 0.0
    default_vt = KNOB_DEFAULTS["validation_timeout"]
    timeouts = [r for r in failed if r["failure_reasons"][0].startswith("Validation timed out")]
    assert timeouts and all(
        f"after {r['configuration_used'].get('validation_timeout', default_vt)}s"
        in r["failure_reasons"][0]
        for r in timeouts
    )
    assert len({r["failure_reasons"][0] for r in failed}) > 200  # variable parts to normalize


def test_truth_frame_names_template_and_cause() -> None:
    batch = _batches(500)[0]
    frame = batch.truth_frame()
    assert list(frame.columns) == [
        "execution_id", "template_id", "true_success_probability", "failure_cause"]
    assert len(frame) == 500
    won = np.array([_success(r) for r in batch.records])
    assert (frame["failure_cause"][won] == "").all()
    assert (frame["failure_cause"][~won] != "").all()


def test_secrets_and_leaks_appear_for_redaction_to_catch(history: Any) -> None:
    records, _, _ = history
    assert sum(bool(SECRETS & set(r["configuration_used"])) for r in records) > 100
    assert sum("password=" in r["execution_log"] for r in records) > 100


# ------------------------------------------------------------------ templates and noise
def test_volatile_keys_change_while_template_knobs_stay(history: Any) -> None:
    records, _, tpl = history
    by_template: dict[int, list[dict[str, Any]]] = {}
    for r, t in zip(records, tpl.tolist(), strict=True):
        by_template.setdefault(t, []).append(r)
    for t, rows in by_template.items():
        if len(rows) < 200:
            continue
        template = TEMPLATES[t].configuration
        for key in ("commit", "requested_at"):
            assert len({r["configuration_used"][key] for r in rows}) > 0.9 * len(rows)
        builds = [r["configuration_used"]["build_number"] for r in rows]
        assert len(set(builds)) > 0.3 * len(rows) and builds[-1] > builds[0]
        same = [_knobs(r["configuration_used"]) == template for r in rows]
        assert 0.88 < np.mean(same) < 0.99, TEMPLATES[t].template_id
        for r, ok in zip(rows, same, strict=True):
            if ok:
                continue
            knobs = _knobs(r["configuration_used"])
            changed = {k for k in template.keys() | knobs.keys()
                       if knobs.get(k, KNOB_DEFAULTS[k]) != template.get(k, KNOB_DEFAULTS[k])}
            assert len(changed) <= 1
            for k in changed:  # a hand edit: small relative change of one number
                assert abs(knobs[k] - template[k]) <= 0.11 * abs(template[k])


def test_templates_stay_distinct_under_hand_edits() -> None:
    """Two templates with the same shape differ by >= 30% in some number, so ±10% edits
    cannot make them look alike to a tolerant pattern matcher."""
    for i, a in enumerate(TEMPLATES):
        for b in TEMPLATES[i + 1:]:
            ca, cb = a.configuration, b.configuration
            if a.strategy != b.strategy or ca.keys() != cb.keys():
                continue
            if any(ca[k] != cb[k] for k in ca if isinstance(ca[k], bool | str)):
                continue
            gaps = [abs(ca[k] - cb[k]) / max(abs(ca[k]), abs(cb[k]))
                    for k in ca if not isinstance(ca[k], bool | str)]
            assert max(gaps) >= 0.3, (a.template_id, b.template_id)


def test_catalogue_matches_the_generated_history(world: SyntheticWorld, history: Any) -> None:
    records, _, _ = history
    assert {r["target_environment"] for r in records} == set(world.environments)
    assert {r["deployment_strategy"] for r in records} == set(world.strategies)
    hosts = {h for hs in world.gateways.values() for h in hs}
    assert {r["gateway_host"] for r in records} == hosts
    assert {x for r in records for x in r["resources_deployed"]} == set(world.resource_types)
    assert {r["deployment_type"] for r in records} == set(world.deployment_types)
    assert 20 <= len(world.templates) <= 40
