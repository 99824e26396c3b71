"""``ign demo``: record a synthetic history and show what it teaches, in one call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

from deploylearn.errors import DeploylearnError
from deploylearn.ingest.formats import Format, write_records
from deploylearn.learner import DeploymentPatternLearner


class DemoQuery(TypedDict):
    environment: str
    resources: list[str]


DEMO_QUERY: DemoQuery = {"environment": "production", "resources": ["project", "database"]}


class NotADemoStoreError(DeploylearnError, ValueError):
    """The store holds executions the demo did not write: synthetic ones must not mix in."""


def demo_id_prefix() -> str:
    """Every demo execution id starts with this (whatever the seed)."""
    from deploylearn.synthetic import SyntheticWorld

    return f"{SyntheticWorld.id_prefix}-"


def refuse_real_data(learner: DeploymentPatternLearner) -> None:
    """Raise ``NotADemoStoreError`` unless the store is empty or holds demo executions only."""
    ids = learner.store.executions_frame()["execution_id"]
    foreign = ids[~ids.str.startswith(demo_id_prefix())]
    if len(foreign):
        raise NotADemoStoreError(
            f"{learner.store.url} holds {len(foreign)} execution(s) that are not demo data "
            f"(e.g. {foreign.iloc[0]!r}); ign demo writes only into an empty or demo-only "
            "store: use another one, e.g. --store duckdb:///tmp/deploylearn-demo.duckdb"
        )


def demo_records(
    executions: int, *, seed: int = 0, days: int = 365, batch_size: int = 20_000
) -> Iterator[list[dict[str, Any]]]:
    """Batches of synthetic records (seed keywords + execution_id), time-ordered."""
    from deploylearn.synthetic import SyntheticWorld

    world = SyntheticWorld(seed=seed, start=datetime(2025, 1, 1, tzinfo=UTC), days=days)
    for batch in world.generate(n_executions=executions, batch_size=batch_size):
        yield batch.records


def run_demo(
    learner: DeploymentPatternLearner,
    *,
    executions: int,
    seed: int = 0,
    days: int = 365,
    out_file: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Generate, record (and optionally write out) a history; summarize and recommend.

    Streams batch by batch, so a million executions never sit in memory at once. Refuses a
    store holding anything but demo executions (``NotADemoStoreError``): synthetic history
    mixed into real history would be learned from as if it were real.
    """
    refuse_real_data(learner)
    counts = {"done": 0, "recorded": 0}

    def recorded(batches: Iterator[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
        for records in batches:
            report = learner.record_executions(records, batch_size=len(records))
            counts["recorded"] += report.accepted
            counts["done"] += len(records)
            if progress:
                progress(counts["done"])
            yield records

    stream = recorded(demo_records(executions, seed=seed, days=days))
    if out_file is not None:
        by_suffix: dict[str, Format] = {".csv": "csv", ".json": "json"}
        fmt = by_suffix.get(out_file.suffix.lower(), "jsonl")
        write_records(out_file, stream, fmt)
    else:
        for _ in stream:
            pass
    frame = learner.store.executions_frame()
    environments = []
    for env, runs in frame.groupby("target_environment"):
        known = runs["outcome"].dropna()
        environments.append(
            {
                "environment": str(env),
                "executions": len(runs),
                "success_rate": float((known == "success").mean()) if len(known) else 0.0,
                "patterns": int(runs["pattern_id"].nunique()),
            }
        )
    return {
        "store": learner.store.url,
        "executions": len(frame),
        "recorded_now": counts["recorded"],
        "environments": environments,
        "query": DEMO_QUERY,
        "recommendations": learner.get_deployment_recommendations(
            target_environment=DEMO_QUERY["environment"],
            resource_types=DEMO_QUERY["resources"],
        ),
    }
