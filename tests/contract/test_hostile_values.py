"""Values at the edge of the input rules, on every store (issue 11, item 4): what validation
lets through, each store must hold, and what it turns away never reaches a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from deploylearn import DeploymentPatternLearner
from deploylearn.errors import InvalidRecordError
from tests.conftest import make_record


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


EDGE_CONFIG = {
    "ratio": 1e20,  # an integral float beyond 64 bits stays a float
    "huge": 1.5e308,
    "limit": 2**63 - 1,
    "floor": -(2**63),
    "tiny": 5e-324,
    "as_text": "123456789012345678901234567890",  # a giant number kept exactly, as a string
    "deep": _nested(31),  # with configuration_used itself: 32 levels, the limit
}


def test_edge_values_are_stored_and_read_back(store_url: str, tmp_path: Path) -> None:
    rows = [
        make_record(1, configuration_used=EDGE_CONFIG, performance_data={"bytes": 2**63 - 1}),
        make_record(2, configuration_used={"timeout": "1e20"}),
    ]
    path = tmp_path / "edge.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")
    with DeploymentPatternLearner.open(store_url) as learner:
        report = learner.ingest(path)
        assert (report.accepted, report.rejected) == (2, 0), report.errors
        stored = learner.store.get_execution("t-000001")
        assert stored is not None
        assert stored["configuration_used"] == EDGE_CONFIG
        assert stored["performance_data"] == {"bytes": 2**63 - 1}
        templates = [p.configuration_template for p in learner.store.patterns()]
        assert {"timeout": 1e20} in templates
        assert learner.get_deployment_recommendations("production", ["project"])["recommendations"]
        again = learner.ingest(path)
        assert (again.accepted, again.duplicates) == (0, 2)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"x": 2**63}, "configuration_used.x"),
        ({"x": [1, {"y": -(2**63) - 1}]}, "configuration_used.x[1].y"),
        ({"x": 10**30}, "configuration_used.x"),
        ({"x": float("inf")}, "configuration_used.x"),
        (_nested(33), "configuration_used.k.k.k"),
        (_nested(1_000), "configuration_used.k.k.k"),
    ],
)
def test_values_no_store_can_hold_are_rejected_before_any_store(
    store_url: str, config: dict[str, Any], field: str
) -> None:
    with DeploymentPatternLearner.open(store_url) as learner:
        with pytest.raises(InvalidRecordError) as caught:
            learner.record_deployment_execution(**make_record(1, configuration_used=config))
        assert caught.value.problems[0].field.startswith(field)
        assert learner.store.stats().executions == 0
