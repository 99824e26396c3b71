"""Pattern identity: which executions share a deployment pattern (pure functions, no store).

A pattern is a deployment strategy plus a *canonical configuration template*. Canonicalization:

* keys are normalized (``Validation-Timeout`` → ``validation_timeout``), nested objects flattened
  to dotted keys;
* secret keys (see ``redaction``) and *volatile* keys are dropped: build numbers, commits,
  timestamps, ticket and run ids, notes. A key is volatile when one of its words is in
  ``VOLATILE_WORDS`` or ends in ``_at``, or when its value looks like a timestamp, UUID or
  commit hash. They differ on every run and would make every execution its own pattern;
* booleans written as strings or 0/1 in a boolean-named knob stay booleans, numeric strings
  become numbers.

Identity is then **exact**: two executions share a pattern when their strategy and canonical
templates are equal. Near-identical configurations (``validation_timeout`` 300 vs 320, one knob
added by hand) are different patterns: merging them made every run of a pattern carry its
founder's knobs, so the model could not learn the effect of the knobs that differed. They share
evidence through the model instead (it sees every knob's value) and through the similarity
model (nearest patterns by knobs). To keep patterns readable they are grouped into *families*
(``pattern_family``): the strategy plus the set of knob keys, so "the same recipe with other
values" reads as one family with several members.
A pattern's id is a hash of its strategy and canonical template, the same in every store and
for every arrival order.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from deploylearn.domain.redaction import is_secret_key, key_words

NUMERIC_TOLERANCE = 0.15  # for "roughly the same value" in explanations, not for identity
VOLATILE_WORDS = frozenset(
    {
        "build",
        "commit",
        "sha",
        "revision",
        "timestamp",
        "date",
        "ticket",
        "jira",
        "cr",
        "note",
        "notes",
        "comment",
        "comments",
        "description",
        "nonce",
        "uuid",
        "guid",
        "trace",
        "correlation",
        "checksum",
        "hash",
    }
)
_VOLATILE_VALUE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}.*)?"  # ISO date / timestamp
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # UUID
    r"|(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,64})$",  # commit / digest
    re.IGNORECASE,
)
_TRUE = {"true", "yes", "on", "enabled"}
_FALSE = {"false", "no", "off", "disabled"}


@lru_cache(maxsize=65536)
def normalize_key(key: str) -> str:
    """``Validation-Timeout`` / ``validationTimeout`` → ``validation_timeout``."""
    return "_".join(key_words(key))


@lru_cache(maxsize=65536)
def _volatile_key(key: str) -> bool:
    words = key.split("_")
    return any(w in VOLATILE_WORDS for w in words) or key.endswith(("_at", "_id"))


def is_volatile(key: str, value: Any) -> bool:
    """True for knobs that change every run without changing how the deployment behaves."""
    return _volatile_key(key) or _volatile_text(value)


def _volatile_text(value: Any) -> bool:
    """Text that looks like a timestamp, UUID or commit hash."""
    return isinstance(value, str) and bool(_VOLATILE_VALUE.match(value.strip()))


def _canonical_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            return None
        if isinstance(value, int):
            return int(value)
        # integral floats become ints only within 64 bits: 1e20 stays a float (no store, nor
        # orjson, takes a larger int)
        return int(value) if value.is_integer() and abs(value) < 2**63 else float(value)
    if isinstance(value, str):
        text = value.strip()
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        try:
            number = float(text)
        except ValueError:
            return lowered
        return _canonical_value(number) if math.isfinite(number) else lowered
    if isinstance(value, list):
        items = [_canonical_value(v) for v in value]
        try:
            return sorted(items, key=lambda v: orjson.dumps(v))
        except TypeError:
            return items
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _flatten(config: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for raw_key, value in config.items():
        key = normalize_key(raw_key)
        if not key:
            continue
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            yield from _flatten(value, full)
        else:
            yield full, value


@lru_cache(maxsize=65536)
def _dropped_key(leaf: str) -> bool:
    return is_secret_key(leaf) or _volatile_key(leaf)


_DROP = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})
_LEAF_CACHE_LIMIT = 100_000
_kept_keys: dict[str, str | None] = {}
_leaf_values: dict[tuple[str, type, Any], Any] = {}


def _kept_key(raw_key: str) -> str | None:
    """The normalized top-level key, or None when the knob is secret, volatile or nameless."""
    try:
        return _kept_keys[raw_key]
    except KeyError:
        pass
    key = normalize_key(raw_key)
    kept = key if key and not _dropped_key(key) else None
    if len(_kept_keys) >= _LEAF_CACHE_LIMIT:
        _kept_keys.clear()
    _kept_keys[raw_key] = kept
    return kept


def _leaf_value(key: str, value: Any) -> Any:
    """Canonical value of a scalar knob (``_DROP`` for volatile-looking text), memoized: the
    same knob settings recur across runs, so bulk paths mostly hit the cache."""
    cache_key = (key, type(value), value)
    found = _leaf_values.get(cache_key, _DROP)
    if found is not _DROP:
        return found
    if _volatile_text(value):
        return _DROP  # not cached: such values are unique by nature
    canonical = _canonical_value(value)
    if len(_leaf_values) >= _LEAF_CACHE_LIMIT:
        _leaf_values.clear()
    _leaf_values[cache_key] = canonical
    return canonical


def canonical_template(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as a pattern sees it: normalized keys, no secrets, no volatile knobs."""
    out: dict[str, Any] = {}
    for raw_key, value in config.items():
        if type(value) in _SCALARS and type(raw_key) is str:  # the common, memoized case
            key = _kept_key(raw_key)
            if key is not None:
                canonical = _leaf_value(key, value)
                if canonical is not _DROP:
                    out[key] = canonical
            continue
        for key, item in _flatten({raw_key: value}):
            leaf = key.rsplit(".", 1)[-1] if "." in key else key
            if _dropped_key(leaf):
                continue
            if _volatile_text(item):
                continue
            out[key] = _canonical_value(item)
    return dict(sorted(out.items()))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def pattern_id_for(strategy: str, template: Mapping[str, Any]) -> str:
    """Stable id of the pattern of ``template``: same input, same id, in every store."""
    payload = orjson.dumps([strategy, template], option=orjson.OPT_SORT_KEYS)
    return "pat-" + hashlib.blake2b(payload, digest_size=8).hexdigest()


def numbers_close(a: float, b: float, tolerance: float = NUMERIC_TOLERANCE) -> bool:
    """Relative closeness, so 300 vs 320 s reads as "about the same" but 30 vs 60 s does not."""
    if a == b:
        return True
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


def _words(key: str) -> str:
    return key.replace(".", " ").replace("_", " ")


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def pattern_family(strategy: str, template: Mapping[str, Any]) -> tuple[str, str]:
    """``(family_id, family_name)``: the strategy and the set of knob keys, values aside.

    Patterns of one family are the same recipe with other settings; the name says which
    strategy and which knobs (``blue-green, 4 knobs: backup enabled, timeout, ...``).
    """
    keys = sorted(template)
    payload = orjson.dumps([strategy, keys])
    family_id = "fam-" + hashlib.blake2b(payload, digest_size=6).hexdigest()
    title = strategy.replace("_", "-")
    if not keys:
        return family_id, f"{title}, no knobs"
    shown = ", ".join(_words(k) for k in keys[:4]) + (", ..." if len(keys) > 4 else "")
    return family_id, f"{title}, {len(keys)} knob{'s' if len(keys) > 1 else ''}: {shown}"


def pattern_name(strategy: str, template: Mapping[str, Any]) -> str:
    """A short human name: the strategy, the switches that are on, and a short tag of the
    exact settings (patterns of one family differ in values, so the tag tells them apart)."""
    on = [_words(k.replace("_enabled", "")) for k, v in template.items() if v is True]
    tag = pattern_id_for(strategy, template)[4:10]
    title = strategy.replace("_", "-")
    shown = ", ".join(on[:4]) + (", ..." if len(on) > 4 else "")
    return f"{title} ({shown}) #{tag}" if on else f"{title} #{tag}"


def describe_difference(template: Mapping[str, Any], other: Mapping[str, Any]) -> str:
    """The knobs where ``template`` differs from ``other``, as ``key=value`` text."""
    parts = []
    for key in sorted(template.keys() | other.keys()):
        mine, theirs = template.get(key), other.get(key)
        if mine != theirs:
            parts.append(f"{key}={_short(mine) if key in template else 'unset'}")
    return ", ".join(parts) or "same settings"


@dataclass
class PatternIndex:
    """Which pattern a configuration belongs to: exact (strategy, canonical template) lookup.

    Holds only templates, so stores load it once and keep it in step with ``add``. Patterns
    loaded from a store keep their stored ids (older stores may hold merged patterns).
    """

    _info: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    _assigned: dict[tuple[str, bytes], str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._info)

    def __contains__(self, pattern_id: object) -> bool:
        return pattern_id in self._info

    def copy(self) -> PatternIndex:
        """An independent copy, so a retried transaction starts from the committed state."""
        return PatternIndex(dict(self._info), dict(self._assigned))

    def info(self, pattern_id: str) -> tuple[str, dict[str, Any]]:
        """``(strategy, template)`` of a known pattern."""
        return self._info[pattern_id]

    def add(self, pattern_id: str, strategy: str, template: Mapping[str, Any]) -> None:
        """Register an existing pattern (e.g. loaded from the store)."""
        if pattern_id in self._info:
            return
        self._info[pattern_id] = (strategy, dict(template))
        self._assigned.setdefault(_seen_key(strategy, template), pattern_id)

    def match(self, strategy: str, template: Mapping[str, Any]) -> str | None:
        """The id of the pattern with exactly this strategy and template, if any."""
        return self._assigned.get(_seen_key(strategy, template))

    def assign(self, strategy: str, template: Mapping[str, Any]) -> tuple[str, bool]:
        """``(pattern_id, is_new)``: the existing pattern of this template or a new one."""
        known = self.match(strategy, template)
        if known is not None:
            return known, False
        pattern_id = pattern_id_for(strategy, template)
        self.add(pattern_id, strategy, template)
        return pattern_id, True


def _seen_key(strategy: str, template: Mapping[str, Any]) -> tuple[str, bytes]:
    return strategy, orjson.dumps(template, option=orjson.OPT_SORT_KEYS)


_HOST = re.compile(r"\b[a-z0-9-]+(\.[a-z0-9-]+)+\b")
_IP = re.compile(r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b")
_HEX = re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{7,}\b")
_QUOTED = re.compile(r"(\"[^\"]*\"|'[^']*')")
_PATH = re.compile(r"(/[\w.\-]+){2,}/?")
_NUMBER = re.compile(r"\b\d+(\.\d+)?(ms|s|m|h|mb|gb|kb|%)?\b")
_SPACE = re.compile(r"\s+")


@lru_cache(maxsize=65536)
def normalize_issue(reason: str) -> str:
    """A failure reason without its variable parts, so the same cause is one ``Issue``.

    ``Gateway prod-gw-01.plant.local unreachable after 3 retries`` →
    ``gateway <host> unreachable after <n> retries``.
    """
    text = reason.strip().lower()
    text = _QUOTED.sub("<value>", text)
    text = _IP.sub("<ip>", text)
    text = _PATH.sub("<path>", text)
    text = _HOST.sub("<host>", text)
    text = _HEX.sub("<id>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACE.sub(" ", text).strip()[:300]


def issue_id_for(normalized: str) -> str:
    return "iss-" + hashlib.blake2b(normalized.encode(), digest_size=8).hexdigest()
