"""``FailureIndex``: past failures per environment, searchable in a millisecond.

"The most similar past failures" of a planned deployment: in the same environment, a failure
scores 3 for the same pattern, 1.5 for the same strategy, 1 for the same gateway and the
Jaccard overlap of the resources (0–1); the best scores win, newer first among equals. Only
the newest ``MAX_PER_ENVIRONMENT`` failures of each environment are kept: old failures of a
pattern still in use are rarely the ones worth reading first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from deploylearn.features._columns import micros

MAX_PER_ENVIRONMENT = 20_000
_WEIGHTS = {"pattern": 3.0, "strategy": 1.5, "gateway": 1.0, "resources": 1.0}
_TOP_SCORE = sum(_WEIGHTS.values())


@dataclass(frozen=True)
class _Failures:
    """One environment's kept failures, newest first (by start, then execution id)."""

    execution_id: np.ndarray
    pattern_id: np.ndarray
    strategy: np.ndarray
    gateway: np.ndarray
    resources: np.ndarray  # uint64 bit masks over FailureIndex.vocabulary
    started_at: list[str]  # ISO 8601
    status: np.ndarray
    issue_ids: list[list[str]]
    started: np.ndarray  # microseconds, for merging in new failures
    bundles: list[list[str]]  # the resources themselves, to re-mask on a new vocabulary

    @classmethod
    def of(cls, rows: pd.DataFrame, vocabulary: Mapping[str, int]) -> _Failures:
        """From frame rows sorted newest first."""
        bundles = [list(r) for r in rows["resources_deployed"]]
        return cls(
            execution_id=rows["execution_id"].to_numpy(dtype=object),
            pattern_id=rows["pattern_id"].to_numpy(dtype=object),
            strategy=rows["deployment_strategy"].to_numpy(dtype=object),
            gateway=rows["gateway_host"].to_numpy(dtype=object),
            resources=_masks(bundles, vocabulary),
            started_at=[t.isoformat() for t in pd.to_datetime(rows["started_at"], utc=True)],
            status=rows["status"].to_numpy(dtype=object),
            issue_ids=[list(v or []) for v in rows["issue_ids"]],
            started=micros(rows["started_at"]),
            bundles=bundles,
        )

    def merged(self, new: _Failures, vocabulary: Mapping[str, int]) -> _Failures:
        """Both sets in one, newest first, the newest ``MAX_PER_ENVIRONMENT`` kept."""
        started = np.concatenate([self.started, new.started])
        ids = np.concatenate([self.execution_id, new.execution_id])
        keep = np.lexsort((ids.astype(str), started))[::-1][:MAX_PER_ENVIRONMENT]
        bundles = [(self.bundles + new.bundles)[i] for i in keep]
        return _Failures(
            execution_id=ids[keep],
            pattern_id=np.concatenate([self.pattern_id, new.pattern_id])[keep],
            strategy=np.concatenate([self.strategy, new.strategy])[keep],
            gateway=np.concatenate([self.gateway, new.gateway])[keep],
            resources=_masks(bundles, vocabulary),
            started_at=[(self.started_at + new.started_at)[i] for i in keep],
            status=np.concatenate([self.status, new.status])[keep],
            issue_ids=[(self.issue_ids + new.issue_ids)[i] for i in keep],
            started=started[keep],
            bundles=bundles,
        )


@dataclass(frozen=True)
class FailureIndex:
    by_environment: dict[str, _Failures]
    vocabulary: dict[str, int]
    names: frozenset[str] = frozenset()  # every resource of a failure started before ``before``
    before: pd.Timestamp | None = None
    pending: pd.DataFrame | None = None  # failures that start at or after ``before``

    @classmethod
    def build(cls, frame: pd.DataFrame, before: pd.Timestamp) -> FailureIndex:
        """Failures of ``Store.executions_frame()`` that started before ``before``."""
        failed = frame[frame["outcome"] == "failure"]
        due = failed["started_at"] < before
        index = cls({}, {}, before=before, pending=failed[~due])
        return index._with(failed[due])

    def fold(self, frame: pd.DataFrame, before: pd.Timestamp) -> FailureIndex:
        """Add rows just written and move ``before`` on (not back), as ``build`` would."""
        parts = [p for p in (self.pending, frame[frame["outcome"] == "failure"]) if p is not None]
        failed = pd.concat(parts) if len(parts) > 1 else parts[0]
        due = failed["started_at"] < before
        later = replace(self, before=before, pending=failed[~due])
        return later._with(failed[due]) if due.any() else later

    def _with(self, failed: pd.DataFrame) -> FailureIndex:
        names = self.names | {str(r) for rs in failed["resources_deployed"] for r in rs}
        vocabulary = {name: i for i, name in enumerate(sorted(names)[:64])}
        remask = vocabulary != self.vocabulary
        out = {
            env: replace(kept, resources=_masks(kept.bundles, vocabulary)) if remask else kept
            for env, kept in self.by_environment.items()
        }
        for env, rows in failed.groupby("target_environment", sort=False):
            rows = rows.sort_values(["started_at", "execution_id"], ascending=False)
            new = _Failures.of(rows.head(MAX_PER_ENVIRONMENT), vocabulary)
            kept = out.get(str(env))
            out[str(env)] = new if kept is None else kept.merged(new, vocabulary)
        return replace(self, by_environment=out, vocabulary=vocabulary, names=frozenset(names))

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


def _masks(bundles: Sequence[Sequence[str]], vocabulary: Mapping[str, int]) -> np.ndarray:
    return np.array([_mask(r, vocabulary) for r in bundles], dtype=np.uint64)


def _mask(resources: Sequence[str], vocabulary: Mapping[str, int]) -> int:
    mask = 0
    for name in resources:
        bit = vocabulary.get(name)
        if bit is not None:
            mask |= 1 << bit
    return mask
