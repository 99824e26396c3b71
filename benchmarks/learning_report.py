"""The learning report on the synthetic world: success model vs baselines vs the oracle.

    .venv/bin/python benchmarks/learning_report.py --executions 50000 --seed 0

Generates a history with a known success model, records it into a temporary DuckDB store,
holds out the newest 20 % of executions and prints ROC AUC, Brier, log loss, ECE (10
equal-mass bins), within-context AUC and regret for the model (with and without graph
embeddings), the baselines (global rate, per-pattern Beta posterior, the seed's popularity
ranking) and the oracle. Writes the table as JSON to benchmarks/out/ too.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from deploylearn.evaluation.report import learning_report, meets_targets, record_demo_history
from deploylearn.learner import DeploymentPatternLearner


def markdown(table: pd.DataFrame) -> str:
    """A GitHub table (no tabulate dependency)."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1, help="0 = all cores")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument(
        "--store",
        help="Record into this store instead of a temporary DuckDB file; it is WIPED first. "
        "With a Neo4j URL the features come from Neo4j and --embeddings may include gds.",
    )
    parser.add_argument(
        "--embeddings", default="numpy,none", help="Comma-separated: numpy, none, gds (Neo4j)."
    )
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"duckdb://{Path(tmp) / 'report.duckdb'}"
        with DeploymentPatternLearner.open(url) as learner:
            learner.store.wipe()
            truth = record_demo_history(learner, args.executions, seed=args.seed, days=args.days)
            recorded = time.perf_counter()
            report = learning_report(
                learner.store,
                truth,
                embeddings=tuple(m.strip() for m in args.embeddings.split(",") if m.strip()),
                holdout_fraction=args.holdout,
                seed=args.seed,
                threads=args.threads or None,
            )
            backend = learner.store.url.split(":", 1)[0]
    finished = time.perf_counter()
    columns = [
        "embeddings",
        "method",
        "roc_auc",
        "brier_score",
        "log_loss",
        "ece",
        "context_auc",
        "regret",
        "calibration",
    ]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(
            f"{args.executions} executions (seed {args.seed}), holdout "
            f"{int(report['holdout_rows'].iloc[0])} newest, trained on "
            f"{int(report['training_rows'].iloc[0])}; store {backend}"
        )
        print(markdown(report[columns]))
        print()
        print(markdown(meets_targets(report)))
    print(f"\nrecord {recorded - started:.1f}s, features + models {finished - recorded:.1f}s")
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if backend == "duckdb" else f"_{backend}"
    target = args.out / f"learning_report_{args.executions}_seed{args.seed}{suffix}.json"
    target.write_text(json.dumps(report.to_dict(orient="records"), indent=2, default=str))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
