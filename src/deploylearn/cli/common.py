"""What every ``ign`` command shares: consoles, the ``--store``/``--json`` options, JSON output."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="DEPLOYLEARN_STORE",
        help="Store URL: duckdb:///path/file.duckdb (default: the embedded file) or "
        "neo4j://user:pass@host:7687.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def print_json(data: Any) -> None:
    """Indented JSON on stdout; numpy values and datetimes included."""
    sys.stdout.write(
        orjson.dumps(
            data,
            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY,
            default=str,
        ).decode()
        + "\n"
    )
