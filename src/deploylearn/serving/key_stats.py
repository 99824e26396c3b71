"""Per-key history counts, and the per-row steps that keep them exact as writes arrive.

``HistorySnapshot.build`` folds a whole history with vectorized group-bys; a running service
must not: ``HistorySnapshot.fold`` adds the rows just written with the steps here (an outcome,
a start, an outcome leaving the recent window), so one write costs microseconds per key
instead of a pass over the history. Both paths give the same counts
(tests/unit/test_incremental_serving.py holds them equal to a fresh build).
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deploylearn.features.history import HISTORY_KEYS, LAST_RUNS, RESOURCE_SET

NO_TIME = np.iinfo(np.int64).min

# One of a key's latest known outcomes, in the order training reads them: by the time the
# outcome became known, ties by start, then execution id (the frame's order).
Tail = tuple[int, int, str, float]  # (known, start, execution_id, 1.0 success / 0.0 failure)


@dataclass(frozen=True)
class KeyStats:
    """What was known about one key at ``at``: outcome counts, recent counts, last events."""

    successes: float = 0.0
    failures: float = 0.0
    recent_successes: float = 0.0
    recent_failures: float = 0.0
    last_start: int = NO_TIME  # microseconds; NO_TIME if the key never started before ``at``
    last_failure: int = NO_TIME  # when its latest failure became known
    last_outcome: float = np.nan  # 1/0 of its latest known outcome
    last_successes: float = 0.0  # successes among its latest LAST_RUNS known outcomes
    last_runs: float = 0.0

    @property
    def runs(self) -> float:
        return self.successes + self.failures

    def started(self, start: int) -> KeyStats:
        return self if self.last_start >= start else dataclasses.replace(self, last_start=start)

    def with_outcome(self, success: bool, known: int, recent: bool) -> KeyStats:
        """One more known outcome (``recent``: inside the window at the snapshot's instant)."""
        if success:
            return dataclasses.replace(
                self,
                successes=self.successes + 1.0,
                recent_successes=self.recent_successes + float(recent),
            )
        return dataclasses.replace(
            self,
            failures=self.failures + 1.0,
            recent_failures=self.recent_failures + float(recent),
            last_failure=max(self.last_failure, known),
        )

    def left_window(self, success: bool) -> KeyStats:
        """An outcome older than the window now: it no longer counts as recent."""
        if success:
            return dataclasses.replace(self, recent_successes=self.recent_successes - 1.0)
        return dataclasses.replace(self, recent_failures=self.recent_failures - 1.0)

    def with_tail(self, tail: Sequence[Tail]) -> KeyStats:
        return dataclasses.replace(
            self,
            last_outcome=tail[-1][3],
            last_successes=float(sum(entry[3] for entry in tail)),
            last_runs=float(len(tail)),
        )


NO_STATS = KeyStats()  # a key never seen (shared: KeyStats is frozen)


def add_to_tail(tail: list[Tail], entry: Tail) -> None:
    """Keep ``tail`` the key's latest ``LAST_RUNS`` outcomes, oldest first."""
    bisect.insort(tail, entry)
    if len(tail) > LAST_RUNS:
        del tail[0]


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One execution as the snapshot's steps need it (keys normalized as the build's)."""

    execution_id: str
    start: int  # microseconds
    known: int  # when its outcome became known (its start if no completion time)
    outcome: str | None  # "success", "failure" or None (no outcome)
    keys: tuple[tuple[Any, ...], ...]  # one per ``HISTORY_KEYS`` prefix, in its order
    pattern: Any
    environment: Any
    resources: tuple[str, ...]  # sorted, distinct

    @property
    def tail_entry(self) -> Tail:
        return (self.known, self.start, self.execution_id, float(self.outcome == "success"))

    @property
    def pairs(self) -> list[tuple[Any, str]]:
        """Its pattern x resource keys."""
        return [(self.pattern, r) for r in self.resources]


def history_rows(
    frame: pd.DataFrame, positions: np.ndarray, start: np.ndarray, known: np.ndarray
) -> list[HistoryRow]:
    """``HistoryRow``s of ``frame``'s rows at ``positions`` (``start``/``known``: the build's
    microsecond columns, aligned with ``frame``)."""
    if not len(positions):
        return []
    picked = frame.iloc[positions]
    resources = [tuple(sorted(set(r))) for r in picked["resources_deployed"]]
    derived: dict[str, list[Any]] = {RESOURCE_SET: ["|".join(r) for r in resources]}
    columns: dict[str, list[Any]] = {
        name: [None if v is None or v != v else v for v in picked[name].astype(object)]
        for name in {k for keys in HISTORY_KEYS.values() for k in keys} - set(derived)
    }
    columns.update(derived)
    outcome = picked["outcome"].astype(object).to_numpy()
    per_prefix = [
        list(zip(*(columns[k] for k in keys), strict=True)) for keys in HISTORY_KEYS.values()
    ]
    return [
        HistoryRow(
            execution_id=str(eid),
            start=int(start[p]),
            known=int(known[p]),
            outcome=o if o in ("success", "failure") else None,
            keys=tuple(keys[i] for keys in per_prefix),
            pattern=columns["pattern_id"][i],
            environment=columns["target_environment"][i],
            resources=resources[i],
        )
        for i, (p, eid, o) in enumerate(
            zip(positions, picked["execution_id"].astype(object), outcome, strict=True)
        )
    ]
