"""Connection errors name the URL and what failed, in one line, without leaking passwords."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploylearn.errors import StoreUnavailableError
from deploylearn.store import open_store


def test_unreachable_neo4j_names_the_url_without_the_password() -> None:
    with pytest.raises(StoreUnavailableError) as info:
        open_store("bolt://deploy:s3cret-pw@127.0.0.1:1")
    message = str(info.value)
    assert message.startswith("cannot reach Neo4j at bolt://127.0.0.1:1")
    assert "s3cret-pw" not in message
    assert "\n" not in message


@pytest.mark.parametrize("password", ["pa/ss#wo?rd", "p@ss/w#rd", "a?b=c/d#e"])
def test_a_password_with_url_delimiters_is_never_shown(password: str) -> None:
    with pytest.raises(StoreUnavailableError) as info:
        open_store(f"neo4j://deploy:{password}@127.0.0.1:1/neo4j")
    message = str(info.value)
    assert message.startswith("cannot reach Neo4j at neo4j://127.0.0.1:1/neo4j:")
    for piece in {password, *password.replace("#", "/").replace("?", "/").split("/")} - {""}:
        if len(piece) > 2:
            assert piece not in message, piece


def test_parse_neo4j_url_keeps_the_whole_password() -> None:
    from deploylearn.store.neo4j.store import parse_neo4j_url

    parsed = parse_neo4j_url("bolt+s://me:pa/ss#wo?r@d@db.example:7687/graph")
    assert parsed.auth == ("me", "pa/ss#wo?r@d")
    assert (parsed.address, parsed.database) == ("bolt+s://db.example:7687", "graph")
    assert parsed.shown == "bolt+s://db.example:7687/graph"


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("lock_timeout=nan", "lock_timeout"),
        ("lock_timeout=inf", "lock_timeout"),
        ("lock_timeout=-1", "lock_timeout"),
        ("lock_timeout=", "lock_timeout"),
        ("threads=0", "threads"),
        ("memory_limit=lots", "memory_limit"),
        ("lock_timout=5", "lock_timout"),
    ],
)
def test_bad_url_parameters_are_one_line_naming_the_parameter(
    tmp_path: Path, query: str, name: str
) -> None:
    from deploylearn.errors import InvalidStoreUrlError

    with pytest.raises(InvalidStoreUrlError, match=name) as info:
        open_store(f"duckdb://{tmp_path}/x.duckdb?{query}")
    assert "\n" not in str(info.value)
