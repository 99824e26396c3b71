"""What every ``ign`` command shares: consoles, the ``--store``/``--json`` options, JSON output,
quiet libraries, tables that stay readable at 80 columns and ``--config`` parsing."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.padding import Padding
from rich.table import Table

from deploylearn.domain import strict_json
from deploylearn.errors import InputFileError

out = Console()
err = Console(stderr=True)

# Loggers of the libraries underneath (MLflow configures its own from MLFLOW_LOGGING_LEVEL).
QUIET_LOGGERS = ("mlflow", "alembic", "sqlalchemy", "huey", "neo4j", "urllib3", "git", "numba")

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


verbose_output = False  # ign -v: set by configure_output
store_on_command_line = False  # ign --store URL …: set by the global options (cli/app.py)


def configure_output(verbose: bool) -> None:
    """Keep stderr for our own errors unless ``--verbose``: no MLflow download bars, INFO lines
    or registration prints, no library log records below ERROR, no third-party warnings.

    Runs before any command imports MLflow, which reads its settings from the environment
    then; settings already in the environment win.
    """
    global verbose_output
    verbose_output = verbose
    if verbose:
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"deploylearn(\.|$)")


def show(table: Table, console: Console | None = None) -> None:
    """Print ``table``, or when the console is too narrow for it one key/value block per row.

    A table is kept when no header or cell would be cut to ``…`` and wrapping adds at most one
    line per row; otherwise a name wrapping over many lines would hide the numbers.
    """
    console = console or out
    if not table.show_header or len(table.columns) < 3 or _fits(table, console):
        console.print(table)
        return
    if table.title:
        console.print(table.title, style="bold", highlight=False)
    first, *rest = table.columns
    for cells in zip(*(list(column.cells) for column in table.columns), strict=True):
        head = f"#{cells[0]}" if first.header == "#" else f"{first.header}: {cells[0]}"
        console.print(head, style="bold", highlight=False, markup=False)
        block = Table.grid(padding=(0, 2))
        block.add_column(no_wrap=True)
        block.add_column(overflow="fold")
        for column, cell in zip(rest, cells[1:], strict=True):
            block.add_row(str(column.header), cell)
        console.print(Padding(block, (0, 0, 0, 2), expand=False), highlight=False)


def _fits(table: Table, console: Console) -> bool:
    def rendered(width: int) -> list[str]:
        lines = console.render_lines(table, console.options.update(max_width=width), pad=False)
        return ["".join(segment.text for segment in line) for line in lines]

    natural, narrow = rendered(10_000), rendered(console.width)
    cut = sum(line.count("…") for line in narrow) > sum(line.count("…") for line in natural)
    return not cut and len(narrow) <= len(natural) + table.row_count


def parse_config(text: str | None, option: str = "--config") -> dict[str, Any]:
    """A configuration given as JSON object text or as the path of a file holding one."""
    if not text or not text.strip():
        return {}
    if text.lstrip()[0] in "{[":
        raw, where = text.encode(), option
    else:
        path = Path(text)
        if path.is_dir():
            raise InputFileError(f"{option}: {text} is a directory, not a JSON file")
        if not path.is_file():
            raise InputFileError(
                f"{option}: {text}: no such file (give a JSON file or JSON object text)"
            )
        raw, where = path.read_bytes(), f"{option} {text}"
    try:
        value = strict_json.loads(raw)
    except strict_json.JsonTextError as exc:
        inside = f" {exc.path}:" if exc.path else ""
        raise InputFileError(f"{where}:{inside} {exc}") from None
    if not isinstance(value, dict):
        raise InputFileError(f"{where}: must be a JSON object")
    return value


def print_error(message: str, code: int) -> None:
    """The one error line on stderr: ``error: …``, or with ``--json`` anywhere on the command
    line the object ``{"error": …, "exit_code": …}``, so scripts parse stderr either way."""
    text = " ".join(message.split())
    if "--json" in sys.argv[1:]:
        line = orjson.dumps({"error": text, "exit_code": code}).decode()
    else:
        line = f"error: {text}"
    sys.stderr.write(line + "\n")


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
