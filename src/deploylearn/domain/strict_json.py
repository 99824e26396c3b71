"""JSON text read under the rules every input format shares (docs/design.md, "Validation").

Common JSON parsers let the last of two equal keys win silently, and differ on what else they
accept: ``orjson`` turns integers beyond 64 bits into floats, Python's ``json`` accepts
``NaN`` and ``Infinity``. Here a duplicate key is an error naming the key, integers stay exact
and non-finite numbers are decoded, so that ``records.json_problem`` rejects both with the
field named, whatever format the value came in.

``loads`` decodes with ``msgspec`` (C, exact integers, strict JSON) and proves the absence of
duplicate keys by counting colons: in JSON text every colon separates a key or sits inside a
string, so re-encoding the decoded value gives as many colons as the input exactly when no key
was dropped (unless the input spelled a colon as ``\\u003a``). Only text that fails this, or
that ``msgspec`` rejects, is parsed again by Python's ``json`` to name the problem.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from deploylearn.domain.records import MAX_JSON_DEPTH

_decoder = msgspec.json.Decoder()
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:]')
_encode = msgspec.json.encode


class JsonTextError(ValueError):
    """JSON text that breaks a rule; ``path`` is the dotted key path inside it ('' at the top)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


class _Duplicated(dict[str, Any]):
    """An object in which ``key`` appeared more than once (found again by ``_find``)."""

    key: str


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    duplicated = _Duplicated(out)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            duplicated.key = key
            break
        seen.add(key)
    return duplicated


_python_decoder = json.JSONDecoder(object_pairs_hook=_pairs)


def raw_decode(text: str, position: int) -> tuple[Any, int]:
    """One JSON value of ``text`` from ``position`` and where it ends (``json.JSONDecoder.
    raw_decode``); raises ``JsonTextError`` like ``python_loads``."""
    try:
        value, end = _python_decoder.raw_decode(text, position)
    except json.JSONDecodeError as exc:
        raise JsonTextError(
            "", f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        where = _too_deep(text[position:])
        raise JsonTextError(where, f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    check_duplicates(value)
    return value, end


def _too_deep(text: str) -> str:
    """The top-level key whose value nests too deeply for a recursive parser ('' when it
    cannot be told): a scan of strings and brackets, on this rare path only."""
    depth, key, last = 0, "", ""
    for token in _TOKENS.finditer(text):
        value = token.group()
        if value in "{[":
            depth += 1
            if depth > MAX_JSON_DEPTH + 1:
                return key
        elif value in "}]":
            depth -= 1
            if depth <= 0:
                return ""
        elif value == ":":
            if depth == 1:
                key = last
        else:
            last = value[1:-1]
    return ""


def duplicate_free(text: bytes | str, encoded: bytes) -> bool:
    """True when ``encoded`` (the compact encoding of what was decoded from ``text``) provably
    kept every key of ``text``."""
    if isinstance(text, str):
        return "\\u003" not in text and text.count(":") == encoded.count(b":")
    return b"\\u003" not in text and text.count(b":") == encoded.count(b":")


def loads(text: bytes | str) -> Any:
    """Decode JSON text; raises ``JsonTextError`` for invalid JSON, invalid UTF-8, nesting
    deeper than the parser can follow, or a duplicate key (naming its path)."""
    try:
        value = _decoder.decode(text)
    except (msgspec.DecodeError, RecursionError):
        pass
    else:
        if duplicate_free(text, _encode(value)):
            return value
    return python_loads(text)


def python_loads(text: bytes | str) -> Any:
    """Decode with Python's ``json`` to name what is wrong (the slow, exact path)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonTextError(
                "", f"not UTF-8 text (byte 0x{text[exc.start]:02x} at offset {exc.start})"
            ) from None
    start = len(text) - len(text.lstrip())
    value, end = raw_decode(text, start)
    if text[end:].strip():
        line = text.count("\n", 0, end) + 1
        raise JsonTextError("", f"not valid JSON (extra data after the value at line {line})")
    return value


def check_duplicates(value: Any) -> None:
    """Raise ``JsonTextError`` at the first object decoded by ``python_loads`` that had a
    duplicate key."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        node, path = pending.pop()
        if isinstance(node, dict):
            if isinstance(node, _Duplicated):
                where = f"{path}.{node.key}" if path else node.key
                raise JsonTextError(where, "appears more than once in one object (duplicate key)")
            pending.extend((v, f"{path}.{k}" if path else k) for k, v in node.items())
        elif isinstance(node, list):
            pending.extend((v, f"{path}[{i}]") for i, v in enumerate(node))


__all__ = [
    "JsonTextError",
    "check_duplicates",
    "duplicate_free",
    "loads",
    "python_loads",
    "raw_decode",
]
