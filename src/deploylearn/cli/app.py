"""``ign``: record, ingest, export, demo and store commands over ``DeploymentPatternLearner``.

Each command parses its options, calls one API function and renders the answer (a rich table,
or ``--json``). Errors become one line on stderr (under ``--json`` the JSON object
``{"error": …, "exit_code": …}`` on that line) and an exit code in ``main``:
2 bad input or usage, 3 some records rejected, 4 store unavailable, 5 training gate refused,
6 training locked, 7 ``deploy predict --fail-below`` risk gate, 1 anything else.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deploylearn.cli import common
from deploylearn.cli.common import (
    JsonOption,
    StoreOption,
    configure_output,
    err,
    out,
    parse_config,
    print_error,
    print_json,
    show,
)
from deploylearn.cli.deploy_commands import print_recommendations
from deploylearn.cli.deploy_commands import register as register_deploy_commands
from deploylearn.cli.serve_commands import serve, token_app
from deploylearn.cli.train_commands import evaluate_app, train
from deploylearn.domain import strict_json
from deploylearn.domain.records import split_resources
from deploylearn.errors import (
    DeploylearnError,
    FieldProblem,
    InputFileError,
    InvalidRecordError,
    InvalidStoreUrlError,
    OutputFileError,
    StoreUnavailableError,
)

if TYPE_CHECKING:
    from deploylearn.learner import DeploymentPatternLearner

EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3
EXIT_STORE_UNAVAILABLE = 4

app = typer.Typer(
    name="ign",
    help="deploylearn: learn which Ignition deployment patterns succeed where.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
deploy_app = typer.Typer(help="Record deployments and ask about them.", no_args_is_help=True)
db_app = typer.Typer(help="Create and inspect the store.", no_args_is_help=True)
app.add_typer(deploy_app, name="deploy")
app.add_typer(db_app, name="db")
register_deploy_commands(deploy_app)


app.command("train")(train)
app.add_typer(evaluate_app, name="evaluate")
app.command("serve")(serve)
app.add_typer(token_app, name="token")


def _print_version(value: bool) -> None:
    if value:
        out.print(f"deploylearn {package_version('deploylearn')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _global_options(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also show the libraries' log lines, warnings and progress bars on stderr.",
        ),
    ] = False,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            envvar="MLFLOW_TRACKING_URI",
            help="MLflow tracking URI for every command that trains or reads models "
            "(default: sqlite:///<repo or cwd>/mlruns/mlflow.db).",
            show_default=False,
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Store URL for every command (a command's own --store wins).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Options for every command (given before it: ``ign --tracking-uri URI deploy …``)."""
    configure_output(verbose)
    if tracking_uri:  # read by Settings.from_env and tracking.paths.default_tracking_uri
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    if store:  # the envvar of every command's --store
        os.environ["DEPLOYLEARN_STORE"] = store
        common.store_on_command_line = True  # given, though the command sees the envvar


def _learner(store: str | None, *, create: bool) -> DeploymentPatternLearner:
    """Writes create a missing store; reads refuse it (a mistyped path is not empty)."""
    from deploylearn.learner import DeploymentPatternLearner

    return DeploymentPatternLearner.open(store, create=create)


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


# -- deploy ----------------------------------------------------------------------------------
@deploy_app.command("record")
def record(
    ctx: typer.Context,
    execution_name: Annotated[
        str | None, typer.Option("--name", "-n", help="Execution name.")
    ] = None,
    deployment_type: Annotated[
        str, typer.Option("--type", "-t", help="install, update, …")
    ] = "update",
    target_environment: Annotated[str | None, typer.Option("--environment", "-e")] = None,
    source_environment: Annotated[str | None, typer.Option("--source-environment")] = None,
    gateway_host: Annotated[str | None, typer.Option("--gateway", "-g")] = None,
    deployment_strategy: Annotated[str | None, typer.Option("--strategy", "-s")] = None,
    resources: Annotated[
        str | None, typer.Option("--resources", "-r", help="Comma-separated resource types.")
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", "-c", help="Configuration: JSON text or a JSON file.")
    ] = None,
    status: Annotated[str, typer.Option(help="completed, failed, rolled_back, …")] = "completed",
    started_at: Annotated[
        str | None,
        typer.Option(
            help="ISO time with offset. This or --execution-id is required: either makes a "
            "retry of the command record nothing new."
        ),
    ] = None,
    completed_at: Annotated[str | None, typer.Option(help="ISO time with offset.")] = None,
    failure_reason: Annotated[
        list[str] | None, typer.Option("--failure-reason", help="Repeat for several.")
    ] = None,
    rollback_triggered: Annotated[bool, typer.Option("--rollback-triggered")] = False,
    rollback_successful: Annotated[
        bool | None, typer.Option("--rollback-successful/--rollback-failed", show_default=False)
    ] = None,
    user_id: Annotated[str | None, typer.Option("--user")] = None,
    automation_triggered: Annotated[bool, typer.Option("--automated")] = False,
    execution_id: Annotated[
        str | None, typer.Option(help="Idempotency key: retrying with it never duplicates.")
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Read one execution object (seed keywords) from a JSON file; options given "
            "as well replace the file's fields.",
        ),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record one deployment execution (successes and failures alike).

    With --from, the file gives the execution and options on the command line override
    its fields (e.g. --status failed); the defaults of options not given do not apply.
    """
    now = datetime.now(UTC).isoformat()
    fields = {
        "execution_name": execution_name,
        "deployment_type": deployment_type,
        "target_environment": target_environment,
        "source_environment": source_environment,
        "gateway_host": gateway_host,
        "deployment_strategy": deployment_strategy,
        "resources_deployed": split_resources(resources or ""),
        "configuration_used": parse_config(config),
        "status": status,
        "started_at": started_at or now,
        "completed_at": completed_at,
        "failure_reasons": failure_reason or [],
        "rollback_triggered": rollback_triggered,
        "rollback_successful": rollback_successful,
        "user_id": user_id,
        "automation_triggered": automation_triggered,
        "execution_id": execution_id,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    if from_file is None and started_at is None and execution_id is None:
        # A start of "now" would differ on every retry, so a retry would record twice.
        raise InputFileError(
            "--started-at or --execution-id is required (without either, a retried "
            "command could not be told from a second deployment)"
        )
    if from_file is not None:
        given = {
            _FIELD_OF_OPTION.get(name, name)
            for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
        }
        fields = {**_record_file(from_file), **{k: v for k, v in fields.items() if k in given}}
    with _learner(store, create=True) as learner:
        new_id = learner.record_deployment_execution(**fields)
    if as_json:
        print_json({"execution_id": new_id})
    else:
        out.print(f"recorded {new_id}")


# `record` parameters whose execution field has another name (the rest are spelled alike)
_FIELD_OF_OPTION = {
    "resources": "resources_deployed",
    "config": "configuration_used",
    "failure_reason": "failure_reasons",
}


def _record_file(path: Path) -> dict[str, Any]:
    _require_file(path)
    try:
        fields = strict_json.loads(path.read_bytes())
    except strict_json.JsonTextError as exc:
        raise InputFileError(f"{path}: {exc.path or 'record'}: {exc}") from None
    if not isinstance(fields, dict):
        raise InputFileError(f"{path}: must hold one JSON object")
    return fields


def _require_file(path: Path) -> None:
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")


@deploy_app.command("ingest")
def ingest(
    path: Annotated[
        Path, typer.Argument(help="A .jsonl, .json (array) or .csv file; - reads stdin.")
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="jsonl, json or csv (default: by extension; jsonl for stdin)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 5000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Processes that validate and prepare (embedded store only; 1 = this one). "
            "Default: one per CPU (at most 4) for files of 20 MiB or more.",
        ),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load executions from a file in batches; bad lines are reported by number, good ones kept.

    Re-ingesting a file adds nothing. Exits 3 when some lines were rejected; warns when the
    input holds no record.
    """
    if fmt is not None and fmt not in ("jsonl", "json", "csv"):
        raise InputFileError(f"--format: {fmt!r} is not one of jsonl, json, csv")
    with _ingest_source(path, fmt) as (source, fmt):
        total = _count_lines(source)
        with _learner(store, create=True) as learner, _progress() as progress:
            task = progress.add_task(f"ingest {path.name}", total=total)
            report = learner.ingest(
                source,
                fmt=fmt,  # type: ignore[arg-type]  # checked above
                batch_size=batch_size,
                progress=lambda n: progress.update(task, completed=n),
                workers=workers,
            )
    report.source = str(path) if source == path else "<stdin>"
    summary = report.summary()
    if summary.read == 0:
        sys.stderr.write(f"warning: {summary.source}: no records in the input\n")
    if as_json:
        print_json(summary.model_dump(mode="json"))
    else:
        table = Table(title=f"ingest {path}")
        for column in ("read", "accepted", "duplicates", "rejected"):
            table.add_column(column, justify="right")
        counts = (summary.read, summary.accepted, summary.duplicates, summary.rejected)
        table.add_row(*(str(x) for x in counts))
        out.print(table)
        for problem in report.errors[:20]:
            err.print(f"  {problem}", markup=False, highlight=False)
        if len(summary.errors) > 20:
            err.print(f"  … {summary.rejected} rejected records in all (use --json for the list)")
    if summary.rejected:
        raise typer.Exit(EXIT_PARTIAL)


@contextmanager
def _ingest_source(path: Path, fmt: str | None) -> Iterator[tuple[Path, str | None]]:
    """``path`` and its format, or for ``-`` stdin spooled to a temporary file (the readers
    and the worker processes read files)."""
    if str(path) != "-":
        yield path, fmt
        return
    fmt = fmt or "jsonl"
    with tempfile.TemporaryDirectory(prefix="ign-ingest-") as folder:
        spooled = Path(folder) / f"stdin.{fmt}"
        with spooled.open("wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle)
        yield spooled, fmt


def _count_lines(path: Path) -> int | None:
    _require_file(path)
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


@deploy_app.command("export")
def export(
    path: Annotated[
        Path,
        typer.Argument(help="Output .jsonl, .ndjson, .json or .csv file; - for standard output."),
    ],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="jsonl, json or csv (default: by extension; - is jsonl)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write every execution in the import format (secrets stay redacted or encrypted).

    The file appears complete or not at all (written to a temporary file, then renamed); an
    existing file is kept unless --force.
    """
    if fmt is not None and fmt not in ("jsonl", "json", "csv"):
        raise InputFileError(f"--format: {fmt!r} is not one of jsonl, json, csv")
    to_stdout = str(path) == "-"
    with _learner(store, create=False) as learner:
        if to_stdout:
            count = learner.export(sys.stdout.buffer, fmt=fmt)  # type: ignore[arg-type]  # checked above
            sys.stdout.flush()
        else:
            count = learner.export(path, fmt=fmt, overwrite=force)  # type: ignore[arg-type]  # checked above
    summary = {"path": "-" if to_stdout else str(path), "exported": count}
    if to_stdout:  # the records are stdout: the summary goes to stderr
        err.print(f"exported {count} executions to standard output")
    elif as_json:
        print_json(summary)
    else:
        out.print(f"exported {count} executions to {path}")


# -- corrections -----------------------------------------------------------------------------
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why (kept in the audit log).", show_default=False)
]


@deploy_app.command("delete")
def delete(
    execution_id: Annotated[str, typer.Argument(help="The execution to delete.")],
    reason: ReasonOption,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a recorded execution as if it had never been recorded (counts follow); audited.

    The deleted record is printed with --json, so it can be recorded again.
    """
    with _learner(store, create=False) as learner:
        deleted = learner.delete_execution(execution_id, reason=reason)
    if as_json:
        print_json({"deleted": deleted})
    else:
        out.print(f"deleted {execution_id}")


@deploy_app.command("amend")
def amend(
    execution_id: Annotated[str, typer.Argument(help="The execution to correct.")],
    reason: ReasonOption,
    status: Annotated[str | None, typer.Option(help="completed, failed, rolled_back, …")] = None,
    started_at: Annotated[str | None, typer.Option(help="ISO time with offset.")] = None,
    completed_at: Annotated[str | None, typer.Option(help="ISO time with offset.")] = None,
    failure_reason: Annotated[
        list[str] | None,
        typer.Option("--failure-reason", help="Replaces the reasons; repeat for several."),
    ] = None,
    lesson: Annotated[
        list[str] | None,
        typer.Option("--lesson", help="Replaces the lessons learned; repeat for several."),
    ] = None,
    rollback_triggered: Annotated[
        bool | None,
        typer.Option("--rollback-triggered/--no-rollback", show_default=False),
    ] = None,
    rollback_successful: Annotated[
        bool | None, typer.Option("--rollback-successful/--rollback-failed", show_default=False)
    ] = None,
    deployment_strategy: Annotated[
        str | None, typer.Option("--strategy", "-s", help="Another strategy: another pattern.")
    ] = None,
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", help="Replaces the configuration: JSON text or file."),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Correct a recorded execution; the id stays, the pattern is assigned afresh, counts
    follow, the change is audited. Only the options given change."""
    fields = {
        "status": status,
        "started_at": started_at,
        "completed_at": completed_at,
        "failure_reasons": failure_reason,
        "lessons_learned": lesson,
        "rollback_triggered": rollback_triggered,
        "rollback_successful": rollback_successful,
        "deployment_strategy": deployment_strategy,
        "configuration_used": parse_config(config) if config is not None else None,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    if not fields:
        raise InvalidRecordError([FieldProblem("amend", "give at least one field to change")])
    with _learner(store, create=False) as learner:
        amended = learner.amend_execution(execution_id, reason=reason, **fields)
    if as_json:
        print_json({"amended": amended})
    else:
        out.print(f"amended {execution_id}: {', '.join(sorted(fields))}")


@deploy_app.command("show")
def show_execution(
    execution_id: Annotated[str, typer.Argument(help="The execution's id.")],
    decrypt: Annotated[
        bool,
        typer.Option(
            "--decrypt",
            help="Show encrypted secrets in clear (needs the store's DEPLOYLEARN_SECRET_KEY; "
            "audited).",
        ),
    ] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one execution as stored (secrets redacted or encrypted unless --decrypt)."""
    with _learner(store, create=False) as learner:
        record = learner.get_execution(execution_id, decrypt=decrypt)
    if record is None:
        raise InputFileError(f"execution {execution_id!r}: not in the store")
    if as_json:
        print_json(record)
        return
    table = Table(title=execution_id, show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for key, value in record.items():
        shown = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
        table.add_row(key, shown)
    out.print(table)


# -- demo ------------------------------------------------------------------------------------
@app.command("demo")
def demo(
    executions: Annotated[
        int, typer.Option("--executions", "-n", min=50, max=1_000_000, help="How many to generate.")
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same history.")] = 0,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Span of the history.")] = 365,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the history to this .jsonl/.json/.csv file."),
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate a synthetic Ignition deployment history, record it and show what it teaches."""
    from deploylearn.demo import run_demo

    with _learner(store, create=True) as learner, _progress() as progress:
        task = progress.add_task("demo history", total=executions)
        summary = run_demo(
            learner,
            executions=executions,
            seed=seed,
            days=days,
            out_file=out_file,
            progress=lambda n: progress.update(task, completed=n),
        )
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"demo history: {summary['executions']} executions, seed {seed}")
    for column in ("environment", "executions", "success rate", "patterns"):
        table.add_column(column, justify="right" if column != "environment" else "left")
    for env in summary["environments"]:
        table.add_row(
            env["environment"],
            str(env["executions"]),
            f"{env['success_rate']:.1%}",
            str(env["patterns"]),
        )
    show(table)
    out.print(f"store: {summary['store']}")
    from deploylearn.domain.answers.recommendations import Recommendations

    print_recommendations(Recommendations.model_validate(summary["recommendations"]))


# -- db --------------------------------------------------------------------------------------
@db_app.command("init")
def db_init(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Create the schema (tables, constraints, indexes); safe to run again."""
    from deploylearn.store import open_store

    with open_store(store, create=True) as opened:
        opened.init_schema()
        stats = opened.stats()
    if as_json:
        print_json(stats.as_dict())
    else:
        out.print(f"initialized {stats.url} (schema version {stats.schema_version})")


@db_app.command("status")
def db_status(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Show what the store holds."""
    from deploylearn.store import open_store

    with open_store(store, create=False) as opened:
        stats = opened.stats().as_dict()
    if as_json:
        print_json(stats)
        return
    table = Table(title=str(stats.pop("url")))
    table.add_column("entity")
    table.add_column("count", justify="right")
    for key, value in stats.items():
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)


def _fail(message: str, code: int) -> None:
    """One line on stderr, never wrapped (JSON under ``--json``), then the exit code."""
    print_error(message, code)
    sys.exit(code)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C: open transactions roll back, worker pools shut down,
    stores close; then the exit code is 128 + 15, as if the signal had killed us."""
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: run the app and map errors to one line on stderr and an exit code."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        code = app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except StoreUnavailableError as exc:
        _fail(str(exc), EXIT_STORE_UNAVAILABLE)
    except (InvalidRecordError, InputFileError, OutputFileError, InvalidStoreUrlError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    except DeploylearnError as exc:
        _fail(str(exc), EXIT_BAD_INPUT if isinstance(exc, ValueError) else 1)
    except orjson.JSONDecodeError as exc:
        _fail(f"not valid JSON: {exc}", EXIT_BAD_INPUT)
    except ValueError as exc:  # an API argument out of range (limit, days_back, metric …)
        _fail(str(exc), EXIT_BAD_INPUT)
    except OSError as exc:  # a file named on the command line: missing, unreadable, a folder
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", EXIT_BAD_INPUT)
    except typer.TyperException as exc:  # usage errors: missing or bad options
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        _fail(message, getattr(exc, "exit_code", EXIT_BAD_INPUT))
    sys.exit(code if isinstance(code, int) else 0)
