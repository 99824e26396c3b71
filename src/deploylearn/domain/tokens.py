"""API tokens for ``ign serve``: what a store keeps of one (never the token itself).

A token is ``dl_`` + 32 random bytes (URL-safe base64), shown once when created. The store keeps
its SHA-256: the token is random, so a fast hash is as safe as a slow one and lets every request
be checked in microseconds. Scopes: ``read`` (the answers) and ``write`` (recording, which
implies read). Revoking keeps the entry (who, when) so the audit trail still names it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from deploylearn.errors import ConflictError

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")
TOKEN_PREFIX = "dl_"
META_KEY_PREFIX = "service-token:"  # the store's meta entry of a token is keyed by this + name


def new_token() -> str:
    """A fresh random token (the only time it exists in clear)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiToken(BaseModel):
    """One token's entry: its name (the audit actor is ``token:<name>``), scopes and hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    scopes: tuple[Scope, ...] = Field(min_length=1)
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def actor(self) -> str:
        """Who a write made with this token is audited as."""
        return f"token:{self.name}"

    def allows(self, scope: Scope) -> bool:
        """``write`` implies ``read``."""
        granted = scope in self.scopes or (scope == "read" and "write" in self.scopes)
        return self.active and granted


def meta_key(name: str) -> str:
    return META_KEY_PREFIX + name


def entry(token: ApiToken) -> str:
    """The token as the store keeps it: one meta entry's JSON value."""
    return token.model_dump_json()


def parse_entry(value: str) -> ApiToken:
    return ApiToken.model_validate_json(value)


def entry_to_save(existing: str | None, token: ApiToken) -> str:
    """The entry that saves ``token`` over the stored one; ``ConflictError`` if the name is
    an active token's (a revoked name may be taken again)."""
    if existing is not None and parse_entry(existing).active:
        raise ConflictError(f"name: an active API token is already called {token.name!r}")
    return entry(token)


def revoked_entry(existing: str | None, at: datetime) -> str | None:
    """The stored entry marked revoked at ``at``; None if there is no active token."""
    if existing is None:
        return None
    token = parse_entry(existing)
    if not token.active:
        return None
    return entry(token.model_copy(update={"revoked_at": at}))
