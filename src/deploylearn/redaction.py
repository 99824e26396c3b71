"""Keep secrets out of the store: redact them, or encrypt them when a key is configured.

A configuration key is secret when one of its ``_``-separated words names a credential
(``db_password``, ``api_token``, ``encryption_key`` …). Free text (logs, failure reasons,
string values) is scrubbed of ``password=…``-style assignments, the way secrets usually leak.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

REDACTED = "<redacted>"
ENCRYPTED_PREFIX = "enc:v1:"
SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "key",
        "credential",
        "credentials",
        "authorization",
        "bearer",
        "cookie",
        "privatekey",
    }
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_FREE_TEXT = re.compile(
    r"(?i)\b((?:[a-z0-9]+[_-])*(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key"
    r"|access[_-]?key|private[_-]?key|credentials?))(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[a-z0-9._~+/=-]{8,}")


def key_words(key: str) -> list[str]:
    """``dbPassword`` / ``db-password`` → ``["db", "password"]``: keys compared word by word."""
    return [w for w in _NON_WORD.split(_CAMEL.sub("_", str(key)).lower()) if w]


@lru_cache(maxsize=65536)
def is_secret_key(key: str) -> bool:
    """True when a configuration key names a credential (word-wise, so 'keyboard' is not one)."""
    lowered = key_words(key)
    joined = "".join(lowered)
    return any(w in SECRET_WORDS for w in lowered) or joined.endswith(("apikey", "privatekey"))


def scrub_text(text: str) -> str:
    """Replace values of ``password=…`` style assignments and bearer tokens in free text."""
    if not text:
        return text
    lowered = text.lower()
    if not (  # the common case, and far cheaper than the substitution below
        "pass" in lowered
        or "pwd" in lowered
        or "secret" in lowered
        or "token" in lowered
        or "key" in lowered
        or "credential" in lowered
        or "bearer" in lowered
    ):
        return text
    text = _FREE_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


class SecretCipher:
    """Fernet encryption with a key derived from ``DEPLOYLEARN_SECRET_KEY``.

    Any passphrase works: it is stretched with SHA-256 into a Fernet key, so users need not
    generate one; a proper Fernet key is used as is.
    """

    def __init__(self, secret_key: str) -> None:
        raw = secret_key.encode()
        try:
            if len(base64.urlsafe_b64decode(raw)) == 32:
                self._fernet = Fernet(raw)
                return
        except ValueError:
            pass
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest()))

    def encrypt(self, value: Any) -> str:
        import orjson

        return ENCRYPTED_PREFIX + self._fernet.encrypt(orjson.dumps(value)).decode()

    def decrypt(self, token: str) -> Any:
        import orjson

        if not token.startswith(ENCRYPTED_PREFIX):
            raise ValueError("not an encrypted value")
        try:
            return orjson.loads(self._fernet.decrypt(token[len(ENCRYPTED_PREFIX) :].encode()))
        except InvalidToken as exc:
            raise ValueError("wrong DEPLOYLEARN_SECRET_KEY for this value") from exc


def protect(value: Any, cipher: SecretCipher | None = None) -> Any:
    """Return ``value`` with secret keys redacted (or encrypted) and free text scrubbed.

    Values already redacted or encrypted are left alone, so exporting and re-ingesting is stable.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if is_secret_key(key if type(key) is str else str(key)):
                out[key] = _hide(item, cipher)
            elif item is None or type(item) in _PLAIN:
                out[key] = item
            elif type(item) is str:
                out[key] = scrub_text(item)
            else:
                out[key] = protect(item, cipher)
        return out
    if isinstance(value, list):
        return [protect(item, cipher) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


_PLAIN = frozenset({bool, int, float})


def _hide(value: Any, cipher: SecretCipher | None) -> Any:
    if value is None or value == "" or value == REDACTED:
        return value
    if isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX):
        return value
    if cipher is None:
        return REDACTED
    return cipher.encrypt(value)


def mask(value: Any) -> Any:
    """The redacted view of ``value`` (encrypted values shown as redacted); used for hashing."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_secret_key(str(k)) and v not in (None, "") else mask(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value
