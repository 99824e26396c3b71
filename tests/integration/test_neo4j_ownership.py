"""A Neo4j database holding other data, or a newer deploylearn's schema, is never written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from neo4j import GraphDatabase

from deploylearn.errors import StoreUnavailableError
from deploylearn.store import open_store
from deploylearn.store.neo4j.store import parse_neo4j_url
from tests.conftest import neo4j_url

pytestmark = pytest.mark.neo4j


@pytest.fixture
def server() -> Iterator[str]:
    url = neo4j_url()
    if url is None:
        pytest.skip("no Neo4j server (set DEPLOYLEARN_TEST_NEO4J, see scripts/neo4j-server)")
    with open_store(url) as store:
        store.wipe()
    yield url
    with open_store(url) as store:  # leave a store the other tests can open
        store.wipe()


def _cypher(url: str, query: str) -> list[dict]:
    parsed = parse_neo4j_url(url)
    with GraphDatabase.driver(parsed.address, auth=parsed.auth) as driver:
        records, _, _ = driver.execute_query(query, database_=parsed.database)
    return [r.data() for r in records]


def test_foreign_data_without_a_marker_is_refused_and_left_alone(server: str) -> None:
    _cypher(server, "MATCH (m:DeploylearnMeta) DETACH DELETE m")
    _cypher(server, "CREATE (:Customer {name: 'theirs'})")
    try:
        for create in (True, False):
            with pytest.raises(StoreUnavailableError, match="no deploylearn marker"):
                open_store(server, create=create)
        assert _cypher(server, "MATCH (m:DeploylearnMeta) RETURN count(m) AS n") == [{"n": 0}]
        assert _cypher(server, "MATCH (c:Customer) RETURN c.name AS name") == [{"name": "theirs"}]
    finally:
        _cypher(server, "MATCH (c:Customer) DETACH DELETE c")


def test_a_newer_schema_version_is_refused_not_overwritten(server: str) -> None:
    _cypher(server, "MATCH (m:DeploylearnMeta {key: 'schema_version'}) SET m.value = 99")
    try:
        with pytest.raises(StoreUnavailableError, match="newer deploylearn"):
            open_store(server)
        rows = _cypher(
            server, "MATCH (m:DeploylearnMeta {key: 'schema_version'}) RETURN m.value AS v"
        )
        assert rows == [{"v": 99}]
    finally:
        _cypher(server, "MATCH (m:DeploylearnMeta {key: 'schema_version'}) SET m.value = 1")


def test_a_read_does_not_create_the_schema(server: str) -> None:
    _cypher(server, "MATCH (m:DeploylearnMeta) DETACH DELETE m")
    with pytest.raises(StoreUnavailableError, match="no deploylearn store"):
        open_store(server, create=False)
    assert _cypher(server, "MATCH (m:DeploylearnMeta) RETURN count(m) AS n") == [{"n": 0}]
    with open_store(server, create=True) as store:
        assert store.stats().schema_version == 1
        assert any(e.action == "create_schema" for e in store.audit_log(limit=5))
