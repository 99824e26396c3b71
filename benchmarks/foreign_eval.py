"""Served success probability on a generated world directory, the way issue 13 measured it.

    PYTHONPATH=src .venv/bin/python benchmarks/foreign_eval.py DIR [--store-dir DIR]

DIR holds ``executions.jsonl`` (and optionally ``truth.jsonl`` with the true probability per
run, one ``{"p": ...}`` a line). The first 80 % of the executions in file order are ingested
into a fresh DuckDB store and trained as ``ign train`` does; the last 20 % are then predicted as
planned deployments (no outcome, no completion) from that history, in one batch. Prints AUC and
Brier of ``success_probability`` (what ``predict`` serves) and ``model_probability`` (the model
alone), and of the truth when given. Knows nothing about how the world was generated: it reads
only the execution schema.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

PLANNED = (
    "execution_name",
    "deployment_type",
    "target_environment",
    "source_environment",
    "gateway_host",
    "deployment_strategy",
    "resources_deployed",
    "configuration_used",
    "started_at",
)
OUTCOMES = ("completed", "failed", "rolled_back")


def success(row: dict) -> int:
    return 1 if row["status"] == "completed" and not row.get("rollback_triggered") else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--store-dir", type=Path, help="keep the store and MLflow here")
    parser.add_argument("--chunk", type=int, default=2000, help="planned runs per predict call")
    args = parser.parse_args()
    rows = [json.loads(line) for line in (args.dir / "executions.jsonl").open()]
    truth_file = args.dir / "truth.jsonl"
    truth = [json.loads(line)["p"] for line in truth_file.open()] if truth_file.exists() else None
    cut = int(len(rows) * 0.8)
    work = args.store_dir or Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    train_file = work / "train.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in rows[:cut]))
    os.environ["DEPLOYLEARN_STORE"] = f"duckdb:///{work}/eval.duckdb"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work}/mlflow.db"
    from deploylearn import DeploymentPatternLearner
    from deploylearn.pipeline import TrainingSettings, run_training

    learner = DeploymentPatternLearner.open()
    learner.ingest(train_file)
    started = time.perf_counter()
    run = run_training(
        learner.store,
        TrainingSettings(
            tracking_uri=os.environ["MLFLOW_TRACKING_URI"], lock_path=work / "train.lock"
        ),
    )
    print(f"training: {run.outcome} in {time.perf_counter() - started:.0f}s: {run.message}")
    learner.advisor(refresh=True)
    test = [(i, r) for i, r in enumerate(rows[cut:], start=cut) if r["status"] in OUTCOMES]
    served, model = [], []
    started = time.perf_counter()
    for at in range(0, len(test), args.chunk):
        batch = [
            {k: r[k] for k in PLANNED if r.get(k) is not None}
            for _, r in test[at : at + args.chunk]
        ]
        for p in learner.predict_success(batch)["predictions"]:
            served.append(p["success_probability"])
            model.append(p.get("model_probability", p["success_probability"]))
    print(f"predicted {len(test)} runs in {time.perf_counter() - started:.0f}s")
    y = np.array([success(r) for _, r in test])
    lines = [("served success_probability", served), ("model_probability", model)]
    if truth is not None:
        lines.append(("truth (oracle)", [truth[i] for i, _ in test]))
    for name, p in lines:
        print(f"  {name:28s} AUC {roc_auc_score(y, p):.3f}  Brier {brier_score_loss(y, p):.4f}")


if __name__ == "__main__":
    main()
