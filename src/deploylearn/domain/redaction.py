"""Keep secrets out of the store: redact them, or encrypt them when a key is configured.

One pass (``protect``) runs over every field a user writes before anything else sees it
(pattern identity, templates, features, the store), so no downstream component holds a clear
secret. What counts as a secret:

* a value under a key one of whose words names a credential (``db_pass``, ``userPassword1``,
  ``smtp.pass``, ``auth``, ``api_token`` …, see ``SECRET_WORDS``): the *whole* value, so a
  ``credentials`` object or a ``passwords`` list is hidden as one unit, at any depth, also
  inside lists of objects;
* in any text: ``key=value`` / ``key: value`` / ``"key": "value"`` with a secret key (so
  ``?password=``, ``Server=x;Password=pw`` and JSON in a log), the password of a URL
  (``scheme://user:pw@host``), ``Authorization: Basic …`` / ``Bearer …``, "the password is X",
  and secret subtrees of JSON objects embedded in the text;
* any ``enc:v1:`` value that does not decrypt under this store's key: a plaintext dressed up as
  encrypted is a secret like any other.

A hidden value becomes ``<redacted>``, or ``enc:v1:<Fernet token>`` (the value's JSON,
encrypted) with a ``SecretCipher``; ``mask`` turns the encrypted form into the redacted one, so
``mask(protect(x, cipher)) == protect(x)`` and identities do not depend on the key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from functools import lru_cache
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

REDACTED = "<redacted>"
ENCRYPTED_PREFIX = "enc:v1:"
SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pw",
        "pass",
        "passphrase",
        "passcode",
        "secret",
        "token",
        "apikey",
        "key",
        "credential",
        "auth",
        "authorization",
        "bearer",
        "cookie",
        "privatekey",
        "jwt",
    }
)
# Compound words without separators (``dbpassword``, ``clientsecret``) end in one of these.
_SECRET_SUFFIXES = ("password", "passwd", "passphrase", "secret", "apikey", "privatekey")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_TOKEN = re.compile(r"enc:v1:[A-Za-z0-9_\-]+=*")
# key=value, key: value, "key": "value", key => value; the key is checked by is_secret_key.
_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?<![a-z0-9_.\-])
    (?P<key>[a-z0-9_.\-]*(?:pass|pw|secret|token|key|credential|auth|bearer|cookie|jwt)
        [a-z0-9_.\-]*)
    ["']?\s*(?:=>|=|:)\s*
    (?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'
      |(?:(?:basic|bearer|digest|token|negotiate)\s+)?(?P<bare>[^\s,;&"'<>{}()\[\]]+))
    """
)
_URL_PASSWORD = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@?#]*:(?P<pw>[^\s/@?#]+)@")
_BEARER = re.compile(r"(?i)\b(?:bearer|basic)\s+(?P<tok>[a-z0-9._~+/=-]{8,})")
_PHRASE = re.compile(
    r"(?i)\b(?:password|passwd|passphrase|passcode|pwd|secret|token|api key)"
    r"\s+(?:is|was|=|:|set to|changed to)\s+[\"']?(?P<val>[^\s\"',;]+)"
)
_JSON_START = re.compile(r"\{\s*\"")
_json_decoder = json.JSONDecoder()


def key_words(key: str) -> list[str]:
    """``dbPassword`` / ``db-password`` → ``["db", "password"]``: keys compared word by word."""
    return [w for w in _NON_WORD.split(_CAMEL.sub("_", str(key)).lower()) if w]


@lru_cache(maxsize=65536)
def is_secret_key(key: str) -> bool:
    """True when a configuration key names a credential, word by word (``userPassword1``,
    ``passwords`` and ``smtp.pass`` are; ``keyboard``, ``tokenizer`` and ``bypass`` are not)."""
    words = key_words(key)
    for word in words:
        stem = word.rstrip("0123456789")
        if stem in SECRET_WORDS or (stem.endswith("s") and stem[:-1] in SECRET_WORDS):
            return True
    joined = "".join(words).rstrip("0123456789").removesuffix("s")
    return joined.endswith(_SECRET_SUFFIXES)


class SecretCipher:
    """Fernet encryption under ``DEPLOYLEARN_SECRET_KEY``.

    A passphrase is stretched with scrypt (n=2^15, r=8, p=1) and the store's random ``salt``,
    so equal passphrases give different keys in different stores and guessing costs ~0.1 s a
    try; a proper Fernet key is used as is. Values written by earlier versions (one unsalted
    SHA-256 of the passphrase) still decrypt, but nothing is encrypted that way any more.
    """

    CHECK = b"deploylearn key check v1"

    def __init__(self, secret_key: str, salt: bytes) -> None:
        raw = secret_key.encode()
        key = _fernet_key(raw) or _derive(raw, salt)
        self._fernet = Fernet(key)
        legacy = Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest()))
        self._reader = MultiFernet([self._fernet, legacy])

    def check_value(self) -> str:
        """A token of a constant, kept in the store: proves later writers hold the same key."""
        return self._fernet.encrypt(self.CHECK).decode()

    def verifies(self, check_value: str) -> bool:
        """True when ``check_value`` was made under this key."""
        try:
            return self._fernet.decrypt(check_value.encode()) == self.CHECK
        except (InvalidToken, ValueError):
            return False

    def encrypt(self, value: Any) -> str:
        return ENCRYPTED_PREFIX + self._fernet.encrypt(orjson.dumps(value)).decode()

    def owns(self, token: str) -> bool:
        """True when ``token`` is a value encrypted under this key (not a lookalike)."""
        try:
            self.decrypt(token)
        except ValueError:
            return False
        return True

    def decrypt(self, token: str) -> Any:
        if not token.startswith(ENCRYPTED_PREFIX):
            raise ValueError("not an encrypted value")
        try:
            return orjson.loads(self._reader.decrypt(token[len(ENCRYPTED_PREFIX) :].encode()))
        except (InvalidToken, orjson.JSONDecodeError) as exc:
            raise ValueError("wrong DEPLOYLEARN_SECRET_KEY for this value") from exc


def _fernet_key(raw: bytes) -> bytes | None:
    try:
        return raw if len(base64.urlsafe_b64decode(raw)) == 32 else None
    except ValueError:
        return None


@lru_cache(maxsize=16)
def _derive(passphrase: bytes, salt: bytes) -> bytes:
    """scrypt is deliberately slow: derive once per (passphrase, salt) and process."""
    kdf = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)
    return base64.urlsafe_b64encode(kdf.derive(passphrase))


def protect(value: Any, cipher: SecretCipher | None = None) -> Any:
    """``value`` with every secret hidden (see the module docstring), at any depth.

    Values already redacted, or encrypted under ``cipher``'s key, are left alone, so exporting
    and re-ingesting is stable.
    """
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if is_secret_key(key if type(key) is str else str(key)):
                out[key] = _hide(item, cipher)
            elif item is None or type(item) in _PLAIN:
                out[key] = item
            elif type(item) is str:
                out[key] = protect_text(item, cipher)
            else:
                out[key] = protect(item, cipher)
        return out
    if isinstance(value, list):
        return [protect(item, cipher) for item in value]
    if isinstance(value, str):
        return protect_text(value, cipher)
    return value


_PLAIN = frozenset({bool, int, float})


def protect_text(text: str, cipher: SecretCipher | None = None) -> str:
    """Free text with each secret in it hidden in place (the text around it is kept)."""
    if not text:
        return text
    if not _suspect(text):
        return text
    spans: list[tuple[int, int, str]] = []  # (start, end, replacement), in the original text
    tokens = [m.span() for m in _TOKEN.finditer(text)] if ENCRYPTED_PREFIX in text else []
    # A token of ours is ciphertext, not words: its random base64 can read like ``…Pw=`` and
    # must not make the text after it an assignment's value (re-ingests would change it).
    ours = [(s, e) for s, e in tokens if cipher is not None and cipher.owns(text[s:e])]

    def in_ours(position: int) -> bool:
        return any(s <= position < e for s, e in ours)

    for match in _JSON_START.finditer(text):
        start = match.start()
        if spans and start < spans[-1][1]:
            continue
        try:
            found, end = _json_decoder.raw_decode(text, start)
        except ValueError:
            continue
        protected = protect(found, cipher)
        if mask(protected) != found:
            spans.append((start, end, orjson.dumps(protected).decode()))
    for match in _ASSIGNMENT.finditer(text):
        if is_secret_key(match.group("key")) and not in_ours(match.start()):
            group = next(g for g in ("dq", "sq", "bare") if match.group(g) is not None)
            spans.append((match.start(group), match.end(group), ""))
    for pattern, group in ((_URL_PASSWORD, "pw"), (_BEARER, "tok"), (_PHRASE, "val")):
        for match in pattern.finditer(text):
            if not in_ours(match.start()):
                spans.append((match.start(group), match.end(group), ""))
    spans += [(s, e, "") for s, e in tokens]
    if not spans:
        return text
    pieces: list[str] = []
    position = 0
    for start, end, replacement in sorted(spans, key=lambda s: (s[0], -s[1])):
        if start < position or start == end:
            continue  # inside a span already hidden
        pieces.append(text[position:start])
        pieces.append(replacement or _hide(text[start:end], cipher))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _suspect(text: str) -> bool:
    """Whether ``text`` may hold a secret by the rules of ``protect_text``: the common case,
    no, costs a few substring tests (a case-insensitive regex search costs ~5x more)."""
    lowered = text.lower()
    return (
        "pass" in lowered
        or "pw" in lowered
        or "secret" in lowered
        or "token" in lowered
        or "key" in lowered
        or "auth" in lowered
        or "credential" in lowered
        or "bearer" in lowered
        or "cookie" in lowered
        or "jwt" in lowered
        or "enc:v1:" in lowered
        or ("@" in text and "://" in text)
    )


def scrub_text(text: str) -> str:
    """``protect_text`` without a key: every secret in ``text`` becomes ``<redacted>``."""
    return protect_text(text, None)


def _hide(value: Any, cipher: SecretCipher | None) -> Any:
    """The stored form of a secret: ``<redacted>``, or encrypted when there is a key.

    Booleans, ``None`` and ``""`` carry no secret and stay. An ``enc:v1:`` value is kept only
    if it decrypts under the key; a lookalike is hidden like any plaintext.
    """
    if value is None or value == "" or value == REDACTED or isinstance(value, bool):
        return value
    if cipher is None:
        return REDACTED
    if isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX) and cipher.owns(value):
        return value
    return cipher.encrypt(value)


def mask(value: Any) -> Any:
    """The redacted view of protected ``value``: every encrypted value shown as ``<redacted>``
    (used for content hashes and pattern identity, which must not depend on the key)."""
    if isinstance(value, str):
        return _TOKEN.sub(REDACTED, value) if ENCRYPTED_PREFIX in value else value
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def reveal(value: Any, cipher: SecretCipher) -> Any:
    """``value`` with every encrypted value decrypted, for the key holder; a value encrypted
    under another key stays as it is. Inline secrets come back as text in place."""
    if isinstance(value, str):
        if ENCRYPTED_PREFIX not in value:
            return value
        match = _TOKEN.fullmatch(value)
        if match:
            return _decrypted(value, cipher)
        return _TOKEN.sub(lambda m: _inline(_decrypted(m.group(), cipher)), value)
    if isinstance(value, dict):
        return {k: reveal(v, cipher) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v, cipher) for v in value]
    return value


def _decrypted(token: str, cipher: SecretCipher) -> Any:
    try:
        return cipher.decrypt(token)
    except ValueError:
        return token


def _inline(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
