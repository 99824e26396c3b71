"""Every copy of the stored execution record agrees with ``domain.execution_schema``.

The schema is declared once; these tests fail when a copy that derives from it (or one that
still has to be kept in step by hand, such as the fast screen's struct) drifts.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploylearn.domain.execution_schema import (
    BY_NAME,
    COLUMN_NAMES,
    COLUMNS,
    EXPORT_FIELDS,
    NOT_STORED,
    Kind,
    Source,
    names,
)
from deploylearn.domain.prepared import PreparedExecution, prepare
from deploylearn.domain.records import DeploymentExecution, parse_execution
from deploylearn.domain.screen import ScreenedExecution
from deploylearn.ingest import formats
from deploylearn.store.base import EXECUTION_FRAME_DTYPES
from deploylearn.store.duckdb import sql
from deploylearn.store.duckdb import store as duckdb_store
from deploylearn.store.duckdb.store import DuckDBStore
from deploylearn.store.neo4j import cypher
from deploylearn.store.neo4j import store as neo4j_store
from deploylearn.store.plan import PlanRow
from tests.conftest import failed_record, make_record, neo4j_url

# The stored column order is a file format: DuckDB files written before keep their columns in
# this order, so a change here needs a schema migration (new columns go at the end).
STORED_ORDER = (
    "execution_id",
    "content_hash",
    "pattern_id",
    "execution_name",
    "deployment_type",
    "target_environment",
    "source_environment",
    "gateway_host",
    "deployment_strategy",
    "resources_deployed",
    "configuration_used",
    "status",
    "outcome",
    "started_at",
    "completed_at",
    "duration_seconds",
    "failure_reasons",
    "issue_ids",
    "rollback_triggered",
    "rollback_successful",
    "rollback_scenario_id",
    "user_id",
    "automation_triggered",
    "execution_log",
    "performance_data",
    "lessons_learned",
    "recorded_at",
    "recorded_by",
    "metric_types",
    "metric_values",
)
# What DESCRIBE shows for each SQL type of sql.SQL_TYPES
_DESCRIBED = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}


def _prepared(count: int = 3) -> list[PreparedExecution]:
    records = [make_record(0), failed_record(1), make_record(2, status="rolled_back")]
    return [prepare(parse_execution(r)) for r in records[:count]]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    store = DuckDBStore(str(tmp_path / "store.duckdb"))
    yield store
    store.close()


def _describe(store: DuckDBStore, table: str) -> list[tuple[str, str, str]]:
    with store._connection() as con:
        return [(r[0], r[1], r[2]) for r in con.execute(f"DESCRIBE {table}").fetchall()]


# -- the schema itself ------------------------------------------------------------------------
def test_the_stored_order_is_unchanged() -> None:
    assert COLUMN_NAMES == STORED_ORDER
    assert len(set(COLUMN_NAMES)) == len(COLUMN_NAMES)
    assert [c.name for c in COLUMNS if c.primary_key] == ["execution_id"]


def test_export_fields_are_the_exported_columns_in_stored_order() -> None:
    assert tuple(n for n in STORED_ORDER if BY_NAME[n].exported) == EXPORT_FIELDS
    assert EXPORT_FIELDS[0] == "execution_id"
    assert names(exported=False) == tuple(n for n in STORED_ORDER if n not in EXPORT_FIELDS)


def test_every_execution_field_is_a_column_or_deliberately_not_stored() -> None:
    fields = set(DeploymentExecution.model_fields)
    assert fields >= NOT_STORED
    assert not NOT_STORED & set(COLUMN_NAMES)
    assert fields - NOT_STORED == set(EXPORT_FIELDS)


def test_the_fast_screen_takes_the_same_fields_as_pydantic() -> None:
    # msgspec needs its own struct (types and limits of its own); its fields cannot drift
    assert set(ScreenedExecution.__struct_fields__) == set(DeploymentExecution.model_fields)


def test_record_columns_are_prepared_execution_attributes() -> None:
    fields = {f.name for f in dataclasses.fields(PreparedExecution)}
    properties = {n for n, v in vars(PreparedExecution).items() if isinstance(v, property)}
    record = {c.name for c in COLUMNS if c.source is Source.RECORD}
    assert record <= fields | properties
    # the fields that are not columns are what the write derives columns from
    assert fields - record == {"template", "issues"}


# -- DuckDB -----------------------------------------------------------------------------------
def test_duckdb_table_is_the_schema(store: DuckDBStore) -> None:
    expected = [
        (
            c.name,
            _DESCRIBED.get(sql.SQL_TYPES[c.kind], sql.SQL_TYPES[c.kind]),
            "YES" if c.nullable else "NO",
        )
        for c in COLUMNS
    ]
    assert _describe(store, "executions") == expected
    assert len(COLUMNS) == sql.EXECUTION_COLUMNS


def test_every_kind_has_a_duckdb_and_an_arrow_type() -> None:
    assert set(sql.SQL_TYPES) == set(Kind)
    assert set(duckdb_store._ARROW_TYPES) == set(Kind)


def test_arrow_schema_is_the_schema_and_duckdb_reads_it_as_the_table(store: DuckDBStore) -> None:
    schema = duckdb_store._EXECUTION_SCHEMA
    assert tuple(schema.names) == COLUMN_NAMES
    assert [f.type for f in schema] == [duckdb_store._ARROW_TYPES[c.kind] for c in COLUMNS]
    table = DuckDBStore.execution_table(_prepared())
    assert table.schema == schema
    with store._connection() as con:
        con.register("prepared", table)
        try:
            described = [(r[0], r[1]) for r in con.execute("DESCRIBE prepared").fetchall()]
        finally:
            con.unregister("prepared")
    assert described == [(name, kind) for name, kind, _ in _describe(store, "executions")]


def test_inserts_name_every_column_in_order() -> None:
    listed = ", ".join(COLUMN_NAMES)
    assert sql.INSERT_EXECUTION_ROWS.startswith(f"INSERT INTO executions ({listed}) VALUES (")
    assert sql.INSERT_EXECUTION_ROWS.count("?") == len(COLUMNS)
    assert (
        f"INSERT INTO executions ({listed}) SELECT {listed} FROM batch_rows"
    ) == sql.INSERT_EXECUTION_TABLE
    assert "*" not in sql.INSERT_EXECUTION_TABLE


def test_both_insert_paths_store_the_same_rows(tmp_path: Path) -> None:
    prepared = _prepared()
    rows = {}
    for path in ("rows", "table"):
        store = DuckDBStore(str(tmp_path / f"{path}.duckdb"))
        if path == "rows":
            store.write_executions(prepared, actor="t")
        else:
            table = DuckDBStore.execution_table(prepared)
            plan_rows = [PlanRow.of(i, e) for i, e in enumerate(prepared)]
            store.write_execution_table(plan_rows, table, actor="t")
        with store._connection() as con:
            rows[path] = con.execute(
                "SELECT * EXCLUDE (recorded_at) FROM executions ORDER BY execution_id"
            ).fetchall()
        store.close()
    assert rows["rows"] == rows["table"]
    assert len(rows["rows"]) == 3


def test_duckdb_exports_the_export_fields(store: DuckDBStore) -> None:
    prepared = _prepared()
    store.write_executions(prepared, actor="t")
    exported = [record for batch in store.iter_executions() for record in batch]
    assert [tuple(r) for r in exported] == [EXPORT_FIELDS] * 3
    one = store.get_execution(prepared[0].execution_id)
    assert one is not None and tuple(one) == (*EXPORT_FIELDS, "pattern_id")
    by_id = {r["execution_id"]: r for r in exported}
    for e in prepared:  # what is exported is what was prepared
        assert by_id[e.execution_id] == e.to_seed_dict()


def test_frame_columns_are_columns() -> None:
    assert set(EXECUTION_FRAME_DTYPES) <= set(COLUMN_NAMES)
    assert ", ".join(EXECUTION_FRAME_DTYPES) == sql.FRAME_COLUMNS
    assert tuple(cypher.FRAME_COLUMNS) == tuple(EXECUTION_FRAME_DTYPES)


# -- Neo4j ------------------------------------------------------------------------------------
def _create_map_keys() -> list[str]:
    """The property keys of the Execution node that CREATE_EXECUTIONS creates."""
    body = re.search(r"CREATE \(e:\w+ \{(.*?)\}\)", cypher.CREATE_EXECUTIONS, re.S)
    assert body is not None
    return re.findall(r"(\w+): ", body.group(1))


def test_neo4j_node_properties_are_the_columns_but_metrics() -> None:
    metrics = {c.name for c in COLUMNS if c.source is Source.METRICS}
    assert metrics == {"metric_types", "metric_values"}
    assert tuple(n for n in COLUMN_NAMES if n not in metrics) == cypher.NODE_PROPERTIES
    assert _create_map_keys() == [
        *cypher.EXECUTION_PROPERTIES,
        *cypher.TIME_PROPERTIES,
        *(c.name for c in COLUMNS if c.source is Source.STAMPED),
    ]
    assert set(_create_map_keys()) == set(cypher.NODE_PROPERTIES)


def test_neo4j_row_has_a_value_per_row_position() -> None:
    for e in _prepared():
        row = neo4j_store._execution_row(e, "pat-1", {"pat-1"})
        assert len(row) == len(cypher.EXECUTION_ROW)
        values = dict(zip(cypher.EXECUTION_ROW, row, strict=True))
        assert values["pattern_id"] == "pat-1" and values["founder"] is True
        assert values["issue_ids"] == [i.issue_id for i in e.issues]
        assert values["started_at"] == e.started_at.isoformat()
        for name in cypher.EXECUTION_PROPERTIES:
            if BY_NAME[name].source is Source.RECORD and BY_NAME[name].kind is not Kind.JSON:
                assert values[name] == getattr(e, name)


def test_neo4j_export_reads_the_export_fields() -> None:
    e = _prepared(1)[0]
    row = neo4j_store._execution_row(e, "pat-1", set())
    node = dict(zip(cypher.EXECUTION_ROW, row, strict=True))
    node = {k: v for k, v in node.items() if v is not None}  # a null property is absent
    node["started_at"], node["completed_at"] = e.started_at, e.completed_at
    exported = neo4j_store._export(node)
    assert tuple(exported) == EXPORT_FIELDS
    assert exported == e.to_seed_dict()


@pytest.mark.neo4j
def test_a_stored_neo4j_execution_has_exactly_the_node_properties() -> None:
    url = neo4j_url()
    if url is None:
        pytest.skip("no Neo4j server (set DEPLOYLEARN_TEST_NEO4J, see scripts/neo4j-server)")
    from deploylearn.store import open_store

    record = make_record(
        0,
        status="rolled_back",
        rollback_successful=True,
        failure_reasons=["database timeout"],
        lessons_learned=["take a backup first"],
    )
    prepared = prepare(parse_execution(record))
    assert all(getattr(prepared, n) is not None for n in EXPORT_FIELDS)  # every one is set
    with open_store(url) as store:
        store.wipe()
        store.write_executions([prepared], actor="t")
        rows = store._run(f"MATCH (e:{cypher.Label.EXECUTION}) RETURN keys(e) AS keys")
        exported = store.get_execution(prepared.execution_id)
        store.wipe()
    assert sorted(rows[0]["keys"]) == sorted(cypher.NODE_PROPERTIES)
    assert exported is not None and tuple(exported) == (*EXPORT_FIELDS, "pattern_id")


# -- import/export files ----------------------------------------------------------------------
def test_field_order_and_csv_header_are_the_export_fields() -> None:
    assert formats.FIELD_ORDER == EXPORT_FIELDS
    buffer = io.BytesIO()
    formats.write_records_to(buffer, [[make_record(0)]], "csv")
    assert buffer.getvalue().split(b"\r\n")[0].decode() == ",".join(EXPORT_FIELDS)
    assert set(formats.REQUIRED_COLUMNS) <= set(EXPORT_FIELDS)


def test_csv_cell_kinds_come_from_the_schema() -> None:
    assert formats._JSON_COLUMNS == ("configuration_used", "performance_data")
    assert formats._BOOL_COLUMNS == (
        "rollback_triggered",
        "rollback_successful",
        "automation_triggered",
    )
    assert formats._TEXT_LIST_COLUMNS == ("failure_reasons", "lessons_learned")


def test_json_exports_keep_the_export_order() -> None:
    for fmt in ("jsonl", "json"):
        buffer = io.BytesIO()
        formats.write_records_to(buffer, [[make_record(0)]], fmt)  # type: ignore[arg-type]
        keys = re.findall(rb'"(\w+)":', buffer.getvalue().split(b"\n")[1 if fmt == "json" else 0])
        top = [k.decode() for k in keys if k.decode() in EXPORT_FIELDS]
        assert tuple(dict.fromkeys(top)) == EXPORT_FIELDS


def test_to_seed_dict_is_the_export_record() -> None:
    e = _prepared(1)[0]
    seed = e.to_seed_dict()
    assert tuple(seed) == EXPORT_FIELDS
    assert seed["resources_deployed"] is not e.resources_deployed  # lists are copies
