"""Recommendation latency in-process, champion loaded once, on a large history.

    .venv/bin/python benchmarks/serving_benchmark.py --executions 1000000 --store duckdb
    .venv/bin/python benchmarks/serving_benchmark.py --executions 1000000 \\
        --store neo4j --neo4j-url neo4j://neo4j:deploylearn@127.0.0.1:7687

1. Records a seeded demo history into the store (skipped when it already holds exactly that
   many executions, so a second run measures only serving).
2. Trains and promotes a champion with the nightly job (``run_training``) on the newest
   ``--train-window`` executions (features still see the whole history), into a temporary
   MLflow tracking store.
3. Builds the serving state once (``learner.advisor()``: executions frame, snapshot, champion)
   and times it, then times ``--requests`` recommendation requests over random contexts
   (environment, resources, sometimes a strategy or a gateway) and prints p50/p90/p99.
4. Baseline, side by side: the same request answered the naive way, features computed by a
   pass over the whole history (``features_for_candidates``), for a few requests.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from deploylearn import DeploymentPatternLearner
from deploylearn.demo import demo_records
from deploylearn.features import features_for_candidates
from deploylearn.pipeline.train import TrainingSettings, run_training
from deploylearn.serving.recommend import _candidates  # the tier fallback, for the baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--store", choices=("duckdb", "neo4j"), default="duckdb")
    parser.add_argument("--duckdb-path", default="benchmarks/out/serving.duckdb")
    parser.add_argument("--neo4j-url", default=os.environ.get("DEPLOYLEARN_TEST_NEO4J"))
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--baseline-requests", type=int, default=5)
    parser.add_argument("--train-window", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.store == "neo4j":
        if not args.neo4j_url:
            parser.error("--neo4j-url (or DEPLOYLEARN_TEST_NEO4J) is required for neo4j")
        url = args.neo4j_url
    else:
        Path(args.duckdb_path).parent.mkdir(parents=True, exist_ok=True)
        url = f"duckdb://{Path(args.duckdb_path).resolve()}"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        with DeploymentPatternLearner.open(url) as learner:
            _ensure_history(learner, args.executions, args.seed)
            _train(learner, args.train_window, Path(tmp))
            _measure(learner, args)


def _ensure_history(learner: DeploymentPatternLearner, n: int, seed: int) -> None:
    stats = learner.store.stats()
    if stats.executions == n:
        print(f"store {learner.store.url}: {n} executions already recorded")
        return
    learner.store.wipe()
    started = time.perf_counter()
    for records in demo_records(n, seed=seed, batch_size=20_000):
        learner.record_executions(records, batch_size=20_000)
    print(f"recorded {n} executions in {time.perf_counter() - started:.0f} s")


def _train(learner: DeploymentPatternLearner, window: int, tmp: Path) -> None:
    frame = learner.store.executions_frame()
    since = frame["started_at"].sort_values().iloc[max(len(frame) - window, 0)]
    del frame
    started = time.perf_counter()
    run = run_training(
        learner.store,
        TrainingSettings(
            since=since.to_pydatetime(),
            tune=False,
            threads=0,
            importance_repeats=1,
            tracking_uri=os.environ["MLFLOW_TRACKING_URI"],
            lock_path=tmp / "train.lock",
        ),
    )
    print(
        f"champion: {run.outcome} ({run.training_rows} training rows since {since:%Y-%m-%d}, "
        f"embeddings {run.embeddings}) in {time.perf_counter() - started:.0f} s"
    )


def _measure(learner: DeploymentPatternLearner, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    advisor = learner.advisor(refresh=True)
    build = time.perf_counter() - started
    assert advisor.models is not None, "no champion loaded"
    print(
        f"serving state built in {build:.1f} s (frame + snapshot + champion); "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    contexts = _contexts(advisor, args.requests + args.baseline_requests, args.seed)
    for context in contexts[:20]:  # warm-up: caches and first-call costs
        advisor.recommend(**context)
    times = []
    for context in contexts[: args.requests]:
        t = time.perf_counter()
        answer = advisor.recommend(**context).model_dump(mode="json")  # as a JSON client gets it
        times.append(time.perf_counter() - t)
        assert answer["recommendations"] or answer.get("notes")
    ms = np.array(times) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    print(
        f"\nrecommendations ({args.requests} requests, {learner.store.url.split(':')[0]}, "
        f"{args.executions} executions): p50 {p50:.2f} ms, p90 {p90:.2f} ms, "
        f"p99 {p99:.2f} ms, max {ms.max():.2f} ms"
    )
    baseline = _baseline(learner, advisor, contexts[args.requests :])
    print(
        f"baseline (features by a pass over the history, {len(baseline)} requests): "
        f"median {np.median(baseline):.0f} ms; ratio baseline / served p50 "
        f"{np.median(baseline) / p50:.0f}x"
    )


def _contexts(advisor, n: int, seed: int) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    environments = advisor.snapshot.environments()
    out = []
    for _ in range(n):
        env = str(rng.choice(environments))
        bundles = [b for bs in advisor.snapshot.bundles[env].values() for b in bs]
        bundle = sorted(bundles[rng.integers(len(bundles))])
        resources = list(rng.choice(bundle, size=min(len(bundle), 2), replace=False))
        gateways = advisor.profiles[env].gateways
        context: dict[str, object] = {"target_environment": env, "resource_types": resources}
        if rng.random() < 0.3:
            context["deployment_strategy"] = str(
                rng.choice(["blue_green", "rolling", "canary", "staged", "direct"])
            )
        if rng.random() < 0.3 and gateways:
            context["gateway_host"] = gateways[rng.integers(len(gateways))][0]
        out.append(context)
    return out


def _baseline(learner: DeploymentPatternLearner, advisor, contexts) -> list[float]:  # type: ignore[no-untyped-def]
    """The same model scores, features recomputed from the full history per request."""
    frame = learner.store.executions_frame()
    patterns = list(advisor.snapshot.patterns.values())
    models = advisor.models
    out = []
    for context in contexts:
        t = time.perf_counter()
        env, resources = context["target_environment"], context["resource_types"]
        ids, _ = _candidates(advisor, env, resources, None)
        candidates = pd.DataFrame(
            {
                "pattern_id": ids,
                "target_environment": context["target_environment"],
                "gateway_host": context.get("gateway_host")
                or advisor.profiles[context["target_environment"]].gateways[0][0],
                "resources_deployed": [context["resource_types"]] * len(ids),
            }
        )
        X = features_for_candidates(
            frame,
            patterns,
            candidates,
            feature_names=models.feature_names,
            node_embeddings=models.node_embeddings,
            at=advisor.snapshot.at.to_pydatetime(),
        )
        models.success.predict_proba(X)
        out.append((time.perf_counter() - t) * 1000)
    return out


if __name__ == "__main__":
    started = datetime.now(UTC)
    main()
    print(f"total {(datetime.now(UTC) - started).total_seconds():.0f} s")
