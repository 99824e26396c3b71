"""``ign train`` (the nightly job) and ``ign evaluate backtest``.

Registered in ``cli/app.py``; errors follow its conventions (one line on stderr, exit code from
``main``). ``ign train`` exits 0 when it promoted a new champion, found nothing new to train on
or was a dry run; 5 when the gate refused the challenger (the champion stays); 6 when another
training run holds the lock; 2 on bad options or too little data; 4 when the store is down;
1 on any other failure (nothing is promoted then).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from deploylearn.cli.common import JsonOption, StoreOption, err, out, print_error, print_json, show
from deploylearn.errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd

    from deploylearn.store import Store

EXIT_GATE_REFUSED = 5  # same values as deploylearn.pipeline.train (not imported: keeps
EXIT_LOCKED = 6  # `ign --help` fast, the pipeline pulls in scikit-learn)
EMBEDDING_MODES = ("auto", "none", "numpy", "gds")

SinceOption = Annotated[
    str | None,
    typer.Option(
        help="Train and evaluate on executions that started at or after this ISO time "
        "(history features still see everything before).",
        show_default=False,
    ),
]
EmbeddingsOption = Annotated[
    str,
    typer.Option(help="Graph embeddings: auto (GDS on Neo4j, numpy otherwise), none, numpy, gds."),
]

ThreadsOption = Annotated[
    int,
    typer.Option(
        min=0,
        help="OpenMP threads for gradient boosting; 0 = all cores (fastest on an idle machine, "
        "much slower when other jobs share the cores).",
    ),
]

evaluate_app = typer.Typer(help="Evaluate the learner over time.", no_args_is_help=True)


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputFileError(f"--since: {text!r} is not an ISO date or time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _embeddings(mode: str) -> str:
    if mode not in EMBEDDING_MODES:
        raise InputFileError(f"--embeddings: {mode!r} is not one of {', '.join(EMBEDDING_MODES)}")
    return mode


def _open_store(store: str | None) -> Store:
    from deploylearn.store import open_store

    return open_store(store, create=False)


def train(
    store: StoreOption = None,
    since: SinceOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Train and evaluate; log, register, promote nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Train even if a finished run has the same data.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed of every model and embedding.")] = 0,
    holdout: Annotated[
        float, typer.Option(min=0.05, max=0.5, help="Share of the newest executions held out.")
    ] = 0.2,
    embeddings: EmbeddingsOption = "auto",
    tune: Annotated[
        bool,
        typer.Option(
            help="Choose boosting settings and feature set on a validation slice of the "
            "training period."
        ),
    ] = True,
    refit: Annotated[
        bool,
        typer.Option(
            help="Serve the evaluated procedure refit on every execution (--no-refit: serve "
            "the model trained before the holdout, exactly as evaluated)."
        ),
    ] = True,
    max_ece: Annotated[
        float,
        typer.Option(
            help="Gate: calibration error allowed beyond sampling noise (or the champion's/"
            "the no-model fallback's, if looser)."
        ),
    ] = 0.03,
    tolerance: Annotated[
        float,
        typer.Option(
            help="Gate: Brier score may exceed the champion's (or, for a first model, the "
            "no-model fallback's) by this much beyond the holdout's noise band."
        ),
    ] = 0.0,
    min_improvement: Annotated[
        float | None,
        typer.Option(help="Gate: require a Brier score this much better than the champion's."),
    ] = None,
    threads: ThreadsOption = 1,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            envvar="MLFLOW_TRACKING_URI",
            help="MLflow tracking URI (default: sqlite:///<repo or cwd>/mlruns/mlflow.db).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Nightly retraining: extract, features, train, evaluate, register, gate, promote.

    Exit codes: 0 promoted, unchanged or dry run; 5 gate refused (champion kept);
    6 another run is in progress; 2 bad options or too little data; 1 failure.
    """
    from deploylearn.pipeline import TrainingLockedError, TrainingSettings, run_training

    settings = TrainingSettings(
        seed=seed,
        holdout_fraction=holdout,
        since=_since(since),
        embeddings=_embeddings(embeddings),
        tune=tune,
        refit=refit,
        max_ece=max_ece,
        tolerance=tolerance,
        min_improvement=min_improvement,
        dry_run=dry_run,
        force=force,
        tracking_uri=tracking_uri,
        threads=threads or None,
    )
    try:
        with _open_store(store) as opened, err.status("training") as status:
            result = run_training(
                opened, settings, progress=lambda step: status.update(f"train: {step}")
            )
    except TrainingLockedError as exc:
        print_error(str(exc), EXIT_LOCKED)
        raise typer.Exit(EXIT_LOCKED) from exc
    if as_json:
        print_json(result.as_dict())
    else:
        _print_training(result)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _print_training(result: Any) -> None:
    if result.comparison is not None:
        table = Table(
            title=f"holdout: {result.holdout_rows} executions from {result.holdout_start} "
            f"(trained on {result.training_rows}; embeddings {result.embeddings}"
            + (
                f"; serving a refit on {result.served_rows})"
                if result.served_rows > result.training_rows
                else ")"
            )
        )
        table.add_column("method")
        for column in ("ROC AUC", "Brier", "log loss", "ECE", "context AUC"):
            table.add_column(column, justify="right")
        for row in result.comparison.itertuples(index=False):
            table.add_row(
                row.method,
                *(
                    f"{value:.4f}"
                    for value in (
                        row.roc_auc,
                        row.brier_score,
                        row.log_loss,
                        row.ece,
                        row.context_auc,
                    )
                ),
            )
        show(table)
        duration = {k: v for k, v in result.metrics.items() if k.startswith("duration_")}
        if duration:
            out.print(
                "duration: "
                + ", ".join(
                    f"{k.removeprefix('duration_')} {v:.3g}" for k, v in sorted(duration.items())
                ),
                highlight=False,
            )
    if result.blend:
        out.print(f"serving: {result.blend['note']}", highlight=False, markup=False)
    for kind, why in result.skipped.items():
        out.print(f"skipped the {kind} model: {why}", highlight=False, markup=False)
    out.print(f"{result.outcome}: {result.message}", highlight=False, markup=False)
    if result.run_id:
        out.print(f"run {result.run_id} at {result.tracking_uri}", highlight=False)
    if result.versions:
        out.print(
            "versions: " + ", ".join(f"{k} v{v}" for k, v in result.versions.items()),
            highlight=False,
        )
    if result.timings:
        out.print(
            "timings: "
            + ", ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in result.timings.items()),
            highlight=False,
        )


@evaluate_app.command("backtest")
def evaluate_backtest(
    store: StoreOption = None,
    folds: Annotated[int, typer.Option(min=1, max=52, help="Rolling origins.")] = 4,
    first_origin: Annotated[
        float,
        typer.Option(min=0.1, max=0.95, help="Share of the history before the first origin."),
    ] = 0.5,
    embeddings: EmbeddingsOption = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    since: SinceOption = None,
    threads: ThreadsOption = 1,
    as_json: JsonOption = False,
) -> None:
    """Rolling-origin evaluation on this store's history: pattern confidence, recommendation
    accuracy and learning velocity of the model against the baselines, including the
    references a practitioner would try first (gateway running rate, parrot, plain boosting
    on raw fields), and whether the model beats them."""
    from deploylearn.pipeline import BacktestSettings, run_backtest

    settings = BacktestSettings(
        folds=folds,
        first_origin=first_origin,
        embeddings=_embeddings(embeddings),
        seed=seed,
        since=_since(since),
        threads=threads or None,
    )
    with _open_store(store) as opened, err.status("backtest") as status:
        report = run_backtest(
            opened,
            settings,
            progress=lambda done, total: status.update(f"backtest: fold {done}/{total}"),
        )
    if as_json:
        print_json(report.as_dict())
        return
    _print_backtest(report.summary, report.folds, report.verdict)


def _print_backtest(summary: pd.DataFrame, folds: pd.DataFrame, verdict: list[str]) -> None:
    if summary.empty:
        out.print("no fold had rows to evaluate")
        return
    first, last = folds["origin"].iloc[0], folds["origin"].iloc[-1]
    table = Table(
        title=f"backtest: {folds['fold'].nunique()} folds, origins {first[:10]} to {last[:10]}"
    )
    columns = [
        ("method", "method"),
        ("Brier", "brier_score"),
        ("ECE", "ece"),
        ("ROC AUC", "roc_auc"),
        ("context AUC", "context_auc"),
        ("cold-start Brier", "cold_brier"),
        ("skill first→last", None),
        ("velocity", "learning_velocity"),
    ]
    if "regret" in summary:
        columns.insert(5, ("regret", "regret"))
    for title, _ in columns:
        table.add_column(title, justify="left" if title == "method" else "right")
    for row in summary.to_dict(orient="records"):
        cells = []
        for _, key in columns:
            if key == "method":
                cells.append(str(row["method"]))
            elif key is None:
                cells.append(f"{row['brier_skill_first']:.3f}→{row['brier_skill_last']:.3f}")
            else:
                cells.append(f"{row[key]:.4f}")
        table.add_row(*cells)
    show(table)
    out.print(
        "confidence: Brier/ECE of the reported probability; recommendation accuracy: context "
        "AUC (same environment and resources); velocity: Brier skill gained per doubling of "
        "history; references: without deploylearn.",
        highlight=False,
    )
    for line in verdict:
        out.print(line, highlight=False)
