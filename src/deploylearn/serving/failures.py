"""``FailureIndex``: past failures per environment, searchable in a millisecond.

"The most similar past failures" of a planned deployment: in the same environment, a failure
scores 3 for the same pattern, 1.5 for the same strategy, 1 for the same gateway and the
Jaccard overlap of the resources (0–1); the best scores win, newer first among equals. Only
the newest ``MAX_PER_ENVIRONMENT`` failures of each environment are kept: old failures of a
pattern still in use are rarely the ones worth reading first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MAX_PER_ENVIRONMENT = 20_000
_WEIGHTS = {"pattern": 3.0, "strategy": 1.5, "gateway": 1.0, "resources": 1.0}
_TOP_SCORE = sum(_WEIGHTS.values())


@dataclass(frozen=True)
class _Failures:
    execution_id: np.ndarray
    pattern_id: np.ndarray
    strategy: np.ndarray
    gateway: np.ndarray
    resources: np.ndarray  # uint64 bit masks over FailureIndex.vocabulary
    started_at: list[str]  # ISO 8601
    status: np.ndarray
    issue_ids: list[list[str]]


@dataclass(frozen=True)
class FailureIndex:
    by_environment: dict[str, _Failures]
    vocabulary: dict[str, int]

    @classmethod
    def build(cls, frame: pd.DataFrame, before: pd.Timestamp) -> FailureIndex:
        """Failures of ``Store.executions_frame()`` that started before ``before``."""
        failed = frame[(frame["outcome"] == "failure") & (frame["started_at"] < before)]
        names = sorted({r for rs in failed["resources_deployed"] for r in rs})[:64]
        vocabulary = {name: i for i, name in enumerate(names)}
        out: dict[str, _Failures] = {}
        for env, rows in failed.groupby("target_environment", sort=False):
            rows = rows.sort_values("started_at", ascending=False).head(MAX_PER_ENVIRONMENT)
            out[str(env)] = _Failures(
                execution_id=rows["execution_id"].to_numpy(dtype=object),
                pattern_id=rows["pattern_id"].to_numpy(dtype=object),
                strategy=rows["deployment_strategy"].to_numpy(dtype=object),
                gateway=rows["gateway_host"].to_numpy(dtype=object),
                resources=np.array(
                    [_mask(r, vocabulary) for r in rows["resources_deployed"]], dtype=np.uint64
                ),
                started_at=[t.isoformat() for t in pd.to_datetime(rows["started_at"], utc=True)],
                status=rows["status"].to_numpy(dtype=object),
                issue_ids=[list(v or []) for v in rows["issue_ids"]],
            )
        return cls(out, vocabulary)

    def similar(
        self,
        *,
        environment: str,
        pattern_id: str | None,
        strategy: str,
        gateway: str | None,
        resources: Sequence[str],
        issue_text: Mapping[str, str],
        n: int = 3,
    ) -> list[dict[str, Any]]:
        found = self.by_environment.get(environment)
        if found is None or not len(found.execution_id):
            return []
        wanted = _mask(resources, self.vocabulary)
        both = np.bitwise_count(found.resources & wanted).astype(np.float64)
        either = np.bitwise_count(found.resources | wanted).astype(np.float64)
        score = (
            _WEIGHTS["pattern"] * (found.pattern_id == pattern_id)
            + _WEIGHTS["strategy"] * (found.strategy == strategy)
            + _WEIGHTS["gateway"] * (found.gateway == gateway)
            + _WEIGHTS["resources"]
            * np.divide(both, either, out=np.zeros_like(both), where=either > 0)
        )
        # rows are newest first, so a stable sort on -score keeps newer failures ahead
        best = np.argsort(-score, kind="stable")[:n]
        return [
            {
                "execution_id": str(found.execution_id[i]),
                "started_at": found.started_at[i],
                "pattern_id": str(found.pattern_id[i]),
                "gateway_host": str(found.gateway[i]),
                "deployment_strategy": str(found.strategy[i]),
                "status": str(found.status[i]),
                "issues": [issue_text.get(x, x) for x in found.issue_ids[i]][:3],
                "similarity": round(float(score[i]) / _TOP_SCORE, 3),
            }
            for i in best
        ]


def _mask(resources: Sequence[str], vocabulary: Mapping[str, int]) -> int:
    mask = 0
    for name in resources:
        bit = vocabulary.get(name)
        if bit is not None:
            mask |= 1 << bit
    return mask
