from __future__ import annotations

from deploylearn.domain.identity import (
    PatternIndex,
    canonical_template,
    normalize_issue,
    pattern_family,
    pattern_id_for,
    pattern_name,
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


def test_hand_edited_knob_is_its_own_pattern_in_the_same_family() -> None:
    """Identity is exact (issue 13): 300 -> 320 s is another pattern, so the model sees the
    run's own value; the family (strategy + knob keys) keeps them together for reading."""
    index = PatternIndex()
    first = assign(index, BASE)
    edited = assign(index, {**BASE, "validation_timeout": 320})
    assert edited != first
    assert assign(index, {**BASE, "validation_timeout": 320}) == edited
    assert len(index) == 2
    family = pattern_family("blue_green", canonical_template(BASE))
    assert (
        pattern_family("blue_green", {**canonical_template(BASE), "validation_timeout": 320})
        == family
    )
    assert pattern_family("canary", canonical_template(BASE)) != family
    assert family[1].startswith("blue-green, 4 knobs: backup enabled")
    assert pattern_name("blue_green", canonical_template(BASE)) != pattern_name(
        "blue_green", {**canonical_template(BASE), "validation_timeout": 320}
    )


def test_material_changes_found_new_patterns() -> None:
    index = PatternIndex()
    first = assign(index, BASE)
    assert assign(index, {**BASE, "validation_timeout": 600}) != first
    assert assign(index, {**BASE, "backup_enabled": False}) != first
    assert assign(index, BASE, strategy="canary") != first
    assert len(index) == 4


def test_volatile_noise_does_not_splinter_a_pattern() -> None:
    import random

    rng = random.Random(3)
    index = PatternIndex()
    ids = [
        assign(index, {**BASE, "build_number": build, "commit": f"{rng.getrandbits(40):010x}"})
        for build in range(500)
    ]
    assert len(set(ids)) == 1


def test_assignment_does_not_depend_on_arrival_order() -> None:
    configs = [BASE, {**BASE, "validation_timeout": 320}, {**BASE, "timeout": 60}]
    forward, backward = PatternIndex(), PatternIndex()
    ids = [assign(forward, c) for c in configs]
    assert [assign(backward, c) for c in reversed(configs)] == list(reversed(ids))
    assert ids == [pattern_id_for("blue_green", canonical_template(c)) for c in configs]


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


def test_an_omitted_or_added_knob_is_another_pattern_and_family() -> None:
    index = PatternIndex()
    first = assign(index, BASE)
    without = {k: v for k, v in BASE.items() if k != "health_check_interval"}
    assert assign(index, without) != first
    assert assign(index, {**BASE, "switch_traffic_delay": 60}) != first
    assert pattern_family("blue_green", canonical_template(without)) != pattern_family(
        "blue_green", canonical_template(BASE)
    )


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
