"""Where deployment history lives. ``open_store(url)`` is the only factory.

URLs: ``duckdb:///abs/path.duckdb``, ``duckdb://relative.duckdb``, ``duckdb://:memory:``
(append ``?mode=shared`` for several writer processes, ``&memory_limit=4GB`` for
DuckDB's buffer, ``&lock_timeout=60`` seconds to wait for another writer, ``&threads=4`` for
DuckDB worker threads, default 1), or ``neo4j://user:pass@host:7687`` (also ``bolt://``,
``neo4j+s://``, ``bolt+s://``). Without a URL, ``DEPLOYLEARN_STORE`` is used,
and without that the embedded file ``default_store_path()``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from urllib.parse import parse_qs

from deploylearn.errors import InvalidStoreUrlError
from deploylearn.store.base import AuditEntry, Store, StoreStats
from deploylearn.store.plan import WriteResult

__all__ = [
    "AuditEntry",
    "Store",
    "StoreStats",
    "WriteResult",
    "default_store_path",
    "default_store_url",
    "is_neo4j_url",
    "open_store",
]

_MEMORY = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)", re.IGNORECASE)
NEO4J_SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")


def is_neo4j_url(url: str) -> bool:
    """Whether ``url`` names a Neo4j server (any of ``NEO4J_SCHEMES``)."""
    return url.split(":", 1)[0].lower() in NEO4J_SCHEMES


def default_store_path() -> Path:
    """``$XDG_DATA_HOME/deploylearn/deploylearn.duckdb`` (``~/.local/share/...`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "deploylearn" / "deploylearn.duckdb"


def default_store_url() -> str:
    return os.environ.get("DEPLOYLEARN_STORE") or f"duckdb://{default_store_path()}"


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open the store named by ``url``; only a deploylearn store is ever opened.

    ``create`` (writes, ``ign db init``) makes a missing store; without it (reads) a missing
    store is ``StoreUnavailableError``, so a mistyped path never reads as an empty history.
    """
    url = url or default_store_url()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "duckdb":
        from deploylearn.store.duckdb.store import (
            DEFAULT_MEMORY_LIMIT,
            DEFAULT_THREADS,
            DuckDBStore,
        )

        rest = url.split("://", 1)[1]
        path, _, query = rest.partition("?")
        if not path:
            raise InvalidStoreUrlError(f"store URL {url!r} names no DuckDB file")
        options = parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(options) - {"mode", "lock_timeout", "memory_limit", "threads"})
        if unknown:
            raise InvalidStoreUrlError(
                f"store URL parameter {unknown[0]!r} is not known: use mode, lock_timeout, "
                "memory_limit or threads"
            )
        mode = options.get("mode", ["exclusive"])[0]
        if mode not in ("exclusive", "shared"):
            raise InvalidStoreUrlError(f"store URL {url!r}: mode must be exclusive or shared")
        try:
            timeout = float(options.get("lock_timeout", ["60"])[0])
            if not math.isfinite(timeout) or timeout < 0:
                raise ValueError
        except ValueError:
            raise InvalidStoreUrlError(
                f"store URL {url!r}: lock_timeout must be a finite number of seconds, at least 0"
            ) from None
        limit = options.get("memory_limit", [DEFAULT_MEMORY_LIMIT])[0]
        if not _MEMORY.fullmatch(limit):
            raise InvalidStoreUrlError(
                "store URL parameter memory_limit must be a size such as 512MB or 4GB"
            )
        try:
            threads = int(options.get("threads", [str(DEFAULT_THREADS)])[0])
            if threads < 1:
                raise ValueError
        except ValueError:
            raise InvalidStoreUrlError(
                f"store URL {url!r}: threads must be a whole number of at least 1"
            ) from None
        return DuckDBStore(
            path,
            shared=mode == "shared",
            lock_timeout=timeout,
            memory_limit=limit,
            threads=threads,
            create=create,
        )
    if scheme in NEO4J_SCHEMES:
        from deploylearn.store.neo4j.store import Neo4jStore

        return Neo4jStore.from_url(url, create=create)
    if not scheme and url.endswith(".duckdb"):
        return open_store(f"duckdb://{url}", create=create)
    raise InvalidStoreUrlError(
        f"store URL {url!r} is not understood: use duckdb:///path/file.duckdb or "
        "neo4j://user:pass@host:7687"
    )
