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

Near-identical configurations are then merged by *leader clustering* (``PatternIndex``): an
execution joins the nearest existing pattern of the same strategy whose template has the same
keys and non-numeric values and whose every numeric knob is within ``NUMERIC_TOLERANCE``
(relative) of the pattern's value; failing that, one that also differs by a single knob
present on one side only (an omitted default, a knob added by hand). Only otherwise does it
found a new pattern, whose id is a hash of its own canonical template. So
``validation_timeout`` 300 → 320 (a hand edit) stays in the 300 pattern, while 300 → 600 or
``backup_enabled`` true → false is a different pattern.
The founder's template is the pattern's template; assignment is deterministic for a given
arrival order, and both stores use this one index.
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

from deploylearn.redaction import is_secret_key, key_words

NUMERIC_TOLERANCE = 0.15
MAX_KEY_DIFFERENCE = 1
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


@dataclass(frozen=True)
class PatternKey:
    """What must match exactly for two configurations to share a pattern."""

    strategy: str
    shape: str  # keys and non-numeric values, as canonical JSON

    @classmethod
    def of(cls, strategy: str, template: Mapping[str, Any]) -> PatternKey:
        shape = {k: ("<number>" if _is_number(v) else v) for k, v in template.items()}
        return cls(strategy, orjson.dumps(shape, option=orjson.OPT_SORT_KEYS).decode())


def pattern_id_for(strategy: str, template: Mapping[str, Any]) -> str:
    """Stable id of a pattern founded by ``template``: same input, same id, in every store."""
    payload = orjson.dumps([strategy, template], option=orjson.OPT_SORT_KEYS)
    return "pat-" + hashlib.blake2b(payload, digest_size=8).hexdigest()


def numbers_close(a: float, b: float, tolerance: float = NUMERIC_TOLERANCE) -> bool:
    """Relative closeness, so 300 vs 320 s matches but 30 vs 60 s does not."""
    if a == b:
        return True
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


def pattern_name(strategy: str, template: Mapping[str, Any]) -> str:
    """A short human name: the strategy and the switches that are on."""
    on = [k.replace("_enabled", "").replace("_", " ") for k, v in template.items() if v is True]
    numbers = [
        f"{k.replace('_', ' ')} {v}"
        for k, v in template.items()
        if k in ("validation_timeout", "timeout", "canary_percent", "batch_size") and _is_number(v)
    ]
    detail = ", ".join(on + numbers)
    title = strategy.replace("_", "-")
    return f"{title} ({detail})" if detail else title


@dataclass
class PatternIndex:
    """Assigns configurations to patterns by leader clustering (see the module docstring).

    Holds only templates (a few thousand patterns at most in practice), so stores load it once
    and keep it in step with ``add``.
    """

    tolerance: float = NUMERIC_TOLERANCE
    _groups: dict[PatternKey, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    _info: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    _by_strategy: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    _assigned: dict[tuple[str, bytes], str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._info)

    def __contains__(self, pattern_id: object) -> bool:
        return pattern_id in self._info

    def copy(self) -> PatternIndex:
        """An independent copy, so a retried transaction starts from the committed state."""
        return PatternIndex(
            self.tolerance,
            {key: list(members) for key, members in self._groups.items()},
            dict(self._info),
            {key: list(members) for key, members in self._by_strategy.items()},
            dict(self._assigned),
        )

    def info(self, pattern_id: str) -> tuple[str, dict[str, Any]]:
        """``(strategy, template)`` of a known pattern."""
        return self._info[pattern_id]

    def add(self, pattern_id: str, strategy: str, template: Mapping[str, Any]) -> None:
        """Register an existing pattern (e.g. loaded from the store)."""
        if pattern_id in self._info:
            return
        member = (pattern_id, dict(template))
        self._info[pattern_id] = (strategy, member[1])
        self._assigned[(strategy, orjson.dumps(template, option=orjson.OPT_SORT_KEYS))] = pattern_id
        self._groups.setdefault(PatternKey.of(strategy, template), []).append(member)
        self._by_strategy.setdefault(strategy, []).append(member)

    def match(self, strategy: str, template: Mapping[str, Any]) -> str | None:
        """The id of the existing pattern this configuration belongs to, if any.

        Patterns with the same keys are tried first; only if none is near does a pattern that
        differs by one knob present on one side only qualify (people omit knobs left at their
        default, or add one by hand).
        """
        exact = self._nearest(template, self._groups.get(PatternKey.of(strategy, template), []))
        if exact is not None:
            return exact
        return self._nearest(template, self._by_strategy.get(strategy, []), MAX_KEY_DIFFERENCE)

    def _nearest(
        self,
        template: Mapping[str, Any],
        candidates: list[tuple[str, dict[str, Any]]],
        key_difference: int = 0,
    ) -> str | None:
        best: tuple[float, str] | None = None
        for pattern_id, founder in candidates:
            distance = self._distance(template, founder, key_difference)
            if distance is not None and (best is None or distance < best[0]):
                best = (distance, pattern_id)
        return best[1] if best else None

    def _distance(
        self, template: Mapping[str, Any], founder: Mapping[str, Any], key_difference: int
    ) -> float | None:
        """None unless near-identical; else how far apart (0 = same values)."""
        one_sided = len(template.keys() ^ founder.keys())
        if one_sided > key_difference:
            return None
        distance = float(one_sided)
        for key, value in template.items():
            if key not in founder:
                continue
            other = founder[key]
            if _is_number(value) and _is_number(other):
                a, b = float(value), float(other)
                if not numbers_close(a, b, self.tolerance):
                    return None
                distance += abs(a - b) / max(abs(a), abs(b), 1e-12)
            elif value != other:
                return None
        return distance

    def assign(self, strategy: str, template: Mapping[str, Any]) -> tuple[str, bool]:
        """``(pattern_id, is_new)``: joins the nearest matching pattern or founds a new one.

        A template seen before keeps the pattern it got then (stable, and the common case on
        bulk paths: it skips the search).
        """
        seen_key = (strategy, orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
        known = self._assigned.get(seen_key)
        if known is not None:
            return known, False
        existing = self.match(strategy, template)
        if existing is not None:
            self._assigned[seen_key] = existing
            return existing, False
        pattern_id = pattern_id_for(strategy, template)
        self.add(pattern_id, strategy, template)
        self._assigned[seen_key] = pattern_id
        return pattern_id, True


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
