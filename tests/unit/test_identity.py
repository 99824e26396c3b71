from __future__ import annotations

from deploylearn.identity import (
    PatternIndex,
    canonical_template,
    normalize_issue,
    pattern_id_for,
)

BASE = {
    "backup_enabled": True,
    "validation_timeout": 300,
    "rollback_threshold": 0.95,
    "health_check_interval": 30,
}


def assign(index: PatternIndex, config: dict, strategy: str = "blue_green") -> str:
    return index.assign(strategy, canonical_template(config))[0]


def test_volatile_and_secret_keys_do_not_change_the_template() -> None:
    noisy = {
        **BASE,
        "build_number": 4711,
        "commit": "9f2c1e7ab",
        "requested_at": "2025-03-01T08:00:00Z",
        "change_ticket": "CHG-1234",
        "db_password": "hunter2",
        "api_token": "abc",
    }
    assert canonical_template(noisy) == canonical_template(BASE)


def test_key_spelling_and_string_values_are_normalized() -> None:
    variant = {
        "Backup-Enabled": "true",
        "validationTimeout": "300",
        "rollback_threshold": "0.95",
        "health_check_interval": 30.0,
    }
    assert canonical_template(variant) == canonical_template(BASE)


def test_hand_edited_knob_joins_the_existing_pattern() -> None:
    index = PatternIndex()
    first = assign(index, BASE)
    assert assign(index, {**BASE, "validation_timeout": 320}) == first
    assert assign(index, {**BASE, "health_check_interval": 27}) == first
    assert len(index) == 1


def test_material_changes_found_new_patterns() -> None:
    index = PatternIndex()
    first = assign(index, BASE)
    assert assign(index, {**BASE, "validation_timeout": 600}) != first
    assert assign(index, {**BASE, "backup_enabled": False}) != first
    assert assign(index, BASE, strategy="canary") != first
    assert len(index) == 4


def test_noisy_history_does_not_splinter_into_singletons() -> None:
    import random

    rng = random.Random(3)
    index = PatternIndex()
    ids = []
    for build in range(500):
        config = {**BASE, "build_number": build, "commit": f"{rng.getrandbits(40):010x}"}
        if rng.random() < 0.1:  # a hand edit of one knob by up to ±10 %
            key = rng.choice(["validation_timeout", "health_check_interval"])
            config[key] = round(config[key] * rng.uniform(0.9, 1.1))
        ids.append(assign(index, config))
    assert len(set(ids)) == 1


def test_pattern_ids_are_stable() -> None:
    assert pattern_id_for("rolling", {"a": 1}) == pattern_id_for("rolling", {"a": 1})
    assert pattern_id_for("rolling", {"a": 1}) != pattern_id_for("rolling", {"a": 2})


def test_issue_normalization_removes_variable_parts() -> None:
    a = normalize_issue("Gateway prod-gw-01.plant.local unreachable after 3 retries")
    b = normalize_issue("Gateway prod-gw-02.plant.local unreachable after 5 retries")
    assert a == b == "gateway <host> unreachable after <n> retries"
    assert normalize_issue("Validation timed out after 120s") == normalize_issue(
        "Validation timed out after 90s"
    )
    assert normalize_issue("SSL handshake failed") != normalize_issue("Validation timed out")


def test_one_omitted_or_added_knob_joins_the_pattern() -> None:
    index = PatternIndex()
    first = assign(index, BASE)
    without = {k: v for k, v in BASE.items() if k != "health_check_interval"}
    assert assign(index, without) == first
    assert assign(index, {**BASE, "switch_traffic_delay": 60}) == first
    two_missing = {k: v for k, v in without.items() if k != "rollback_threshold"}
    assert assign(index, two_missing) != first


def test_same_keys_are_preferred_over_a_one_knob_difference() -> None:
    index = PatternIndex()
    full = assign(index, BASE)
    smaller = assign(index, {**BASE, "validation_timeout": 900, "health_check_interval": 30})
    assert smaller != full
    without = {k: v for k, v in BASE.items() if k != "rollback_threshold"}
    assert assign(index, without) == full  # one knob off BASE, far from the 900 s pattern


def test_memoized_template_keeps_types_and_volatile_values_apart() -> None:
    """The per-knob memo must not confuse True with 1 or 1.0, nor cache volatile text."""
    first = canonical_template({"backup_enabled": True, "timeout": 1, "ratio": 1.5})
    second = canonical_template({"backup_enabled": 1, "timeout": 1.0, "ratio": "1.5"})
    assert first == {"backup_enabled": True, "ratio": 1.5, "timeout": 1}
    assert second == {"backup_enabled": 1, "ratio": 1.5, "timeout": 1}
    assert type(first["backup_enabled"]) is bool and type(second["backup_enabled"]) is int
    commit = "0161dafa74b338269eb5742e5c584ac5f7b8cd53"
    assert canonical_template({"version": commit}) == {}
    assert canonical_template({"version": commit, "nested": {"Timeout": "30"}}) == {
        "nested.timeout": 30
    }
