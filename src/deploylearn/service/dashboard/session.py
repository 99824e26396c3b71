"""The page session: the API's bearer token kept in a cookie the page's scripts cannot read
(HttpOnly) and that no other site can make the browser send (SameSite=Strict). It is checked
with the API's ``TokenCheck`` on every page and only for pages: API routes read the
``Authorization`` header alone, so a forged form or script cannot write with it."""

from __future__ import annotations

from urllib.parse import parse_qs

COOKIE = "deploylearn_session"
COOKIE_PATH = "/ui"
HOME = "/ui"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path only (no open redirect)."""
    if not target or not target.startswith(HOME) or target.startswith("//") or "\\" in target:
        return HOME
    return target


def form_fields(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body's fields (first value of each)."""
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}
