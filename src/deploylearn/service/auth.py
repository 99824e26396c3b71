"""Bearer tokens with scopes, checked against the store's token entries.

The entries are read from the store at most every ``REFRESH_SECONDS`` (a request costs a dict
lookup, not a query); a revoked or new token takes effect within that time, on every replica
of one store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from deploylearn.domain.tokens import ApiToken, Scope, token_hash

REFRESH_SECONDS = 2.0


class TokenCheck:
    """Which token (if any) a presented bearer value is, by its hash."""

    def __init__(
        self, load: Callable[[], list[ApiToken]], refresh_seconds: float = REFRESH_SECONDS
    ) -> None:
        self._load = load
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._by_hash: dict[str, ApiToken] = {}
        self._loaded_at = -float("inf")

    def token(self, presented: str) -> ApiToken | None:
        """The active token whose hash ``presented`` has; None if none is."""
        digest = token_hash(presented)
        with self._lock:
            if time.monotonic() - self._loaded_at > self._refresh:
                self._by_hash = {t.token_sha256: t for t in self._load() if t.active}
                self._loaded_at = time.monotonic()
            return self._by_hash.get(digest)


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def allowed(token: ApiToken | None, scope: Scope) -> bool:
    return token is not None and token.allows(scope)
