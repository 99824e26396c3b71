"""Serving backtest on the demo world: top-1 regret of three rankings and predict's catch rates.

    .venv/bin/python benchmarks/serving_backtest.py --executions 50000 --seed 0

Generates a seeded synthetic history, records it into a temporary DuckDB store, trains the
success model on the first 80 % (by time) and serves each later day from the history before
it (see ``deploylearn.evaluation.serving_backtest``). Prints the regret table (deploylearn vs the
seed's ranking vs a Wilson bound, and the ratios) and the gate catch rates next to the oracle's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from deploylearn import DeploymentPatternLearner
from deploylearn.evaluation.serving_backtest import ServingBacktestSettings, run_serving_backtest
from deploylearn.pipeline import steps
from deploylearn.serving.blend import BlendParams
from deploylearn.synthetic import SyntheticWorld


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--contexts", type=int, default=1500)
    parser.add_argument("--predictions", type=int, default=4000)
    parser.add_argument("--prior-strength", type=float, default=BlendParams().prior_strength)
    parser.add_argument("--half-life-days", type=float, default=BlendParams().half_life_days)
    parser.add_argument(
        "--grid", action="store_true", help="Also score blend variants (k, half-life, rank)."
    )
    parser.add_argument(
        "--tune",
        action="store_true",
        help="Choose parameters and feature sets (and the ranking twin) as ign train does.",
    )
    args = parser.parse_args()

    world = SyntheticWorld(seed=args.seed, start=datetime(2025, 1, 1, tzinfo=UTC), days=args.days)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"duckdb://{Path(tmp) / 'store.duckdb'}"
        records = []
        with DeploymentPatternLearner.open(url, use_model=False) as learner:
            for batch in world.generate(n_executions=args.executions, batch_size=20_000):
                learner.record_executions(batch.records, batch_size=20_000)
                records.extend(batch.records)
            history = steps.extract(learner.store)
        print(f"history: {len(history.frame)} executions ({time.perf_counter() - started:.0f} s)")
        settings = ServingBacktestSettings(
            tune=args.tune,
            contexts=args.contexts,
            predictions=args.predictions,
            blend=BlendParams(args.prior_strength, args.half_life_days),
            seed=args.seed,
            grid_prior_strengths=(3, 10, 30, 100) if args.grid else (),
            grid_half_lives=(90, 180, 365, 730, float("inf")) if args.grid else (),
        )
        result = run_serving_backtest(
            history, pd.DataFrame(records), world, settings, progress=_progress()
        )
    pd.set_option("display.width", 160)
    print(f"\nsettings: {result.settings}")
    print("\ntop-1 recommendation regret (true p of best candidate - true p of the pick):")
    main_methods = result.regret[~result.regret["method"].str.startswith("blend ")]
    print(main_methods.round(4).to_string(index=False))
    variants = result.regret[result.regret["method"].str.startswith("blend ")]
    if len(variants):
        print("\nblend variants (model p as prior, decayed counts, rank by mean or 10% quantile):")
        print(variants.head(15).round(4).to_string(index=False))
    by = result.regret.set_index("method")["mean_regret"]
    ours = by["deploylearn"]
    print(
        f"\ndeploylearn regret {ours:.4f}; seed ranking {by['seed ranking']:.4f} "
        f"(ratio {ours / by['seed ranking']:.3f}); Wilson bound {by['Wilson bound']:.4f} "
        f"(ratio {ours / by['Wilson bound']:.3f})"
    )
    print("\npredict as a gate: share of held-out failures caught")
    print(result.catch.round(4).to_string(index=False))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def _progress():  # type: ignore[no-untyped-def]
    last = {"t": 0.0}

    def report(message: str) -> None:
        now = time.perf_counter()
        if now - last["t"] > 15:
            print(f"  {message}", flush=True)
            last["t"] = now

    return report


if __name__ == "__main__":
    main()
