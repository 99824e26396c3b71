"""Environment profiles: what a request leaves unsaid, filled from the environment's habits.

A profile is derived from per-environment counts (gateways, source environments, deployment
types, automation, patterns), which a write updates by one each; so ``ProfileCounts.add`` keeps
a running service's profiles what a fresh build would give, without a pass over the history.
Ties rank by name, so both paths pick the same value whatever order rows arrived in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MAX_GATEWAYS = 12


@dataclass(frozen=True)
class EnvironmentProfile:
    """What a request leaves unsaid, filled from the environment's habits."""

    gateways: list[tuple[str, float]]  # (host, share of runs), most used first
    source_environment: str | None
    deployment_type: str | None
    automation_triggered: bool
    typical_knobs: pd.Series  # median knob values over the environment's runs


EMPTY_PROFILE = EnvironmentProfile(
    gateways=[],
    source_environment=None,
    deployment_type=None,
    automation_triggered=False,
    typical_knobs=pd.Series(dtype=np.float64),
)


@dataclass
class _Counts:
    gateways: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    patterns: Counter[str] = field(default_factory=Counter)
    automated: int = 0
    runs: int = 0


@dataclass
class ProfileCounts:
    """Per environment, how often each value occurred in its runs."""

    by_environment: dict[str, _Counts] = field(default_factory=dict)

    def add(self, frame: pd.DataFrame) -> set[str]:
        """Count ``Store.executions_frame()`` rows; returns the environments they touched."""
        touched: set[str] = set()
        if not len(frame):
            return touched
        for env, runs in frame.groupby("target_environment", sort=False):
            counts = self.by_environment.setdefault(str(env), _Counts())
            for name, target in (
                ("gateway_host", counts.gateways),
                ("source_environment", counts.sources),
                ("deployment_type", counts.types),
                ("pattern_id", counts.patterns),
            ):
                values = runs[name].dropna().astype(str).value_counts()
                target.update(dict(zip(values.index, values.to_numpy().tolist(), strict=True)))
            counts.automated += int(runs["automation_triggered"].astype(bool).sum())
            counts.runs += len(runs)
            touched.add(str(env))
        return touched

    def profile(self, env: str, knobs: pd.DataFrame) -> EnvironmentProfile:
        """The profile of ``env`` (``knobs``: the snapshot's knob table, patterns as rows)."""
        counts = self.by_environment.get(env)
        if counts is None:
            return EMPTY_PROFILE
        top = _ranked(counts.gateways)[:MAX_GATEWAYS]
        total = float(sum(c for _, c in top))
        return EnvironmentProfile(
            gateways=[(host, float(c) / total) for host, c in top],
            source_environment=_mode(counts.sources),
            deployment_type=_mode(counts.types),
            automation_triggered=2 * counts.automated >= counts.runs,
            typical_knobs=weighted_median(knobs, counts.patterns),
        )


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _mode(counts: Counter[str]) -> str | None:
    ranked = _ranked(counts)
    return ranked[0][0] if ranked else None


def weighted_median(knobs: pd.DataFrame, weights: Counter[str]) -> pd.Series:
    """Per knob column, the median over runs: each pattern's value counted once per run (NaN
    skipped; an even count averages the two middle values, as ``Series.median`` does)."""
    ids = [p for p in weights if p in knobs.index]
    out = np.full(len(knobs.columns), np.nan)
    if ids:
        values = knobs.loc[ids].to_numpy(dtype=np.float64)
        counts = np.array([weights[p] for p in ids], dtype=np.int64)
        for j in range(values.shape[1]):
            column = values[:, j]
            valid = ~np.isnan(column)
            if not valid.any():
                continue
            order = np.argsort(column[valid], kind="stable")
            sorted_values, cumulative = column[valid][order], np.cumsum(counts[valid][order])
            n = int(cumulative[-1])
            low = sorted_values[np.searchsorted(cumulative, (n - 1) // 2 + 1)]
            high = sorted_values[np.searchsorted(cumulative, n // 2 + 1)]
            out[j] = low if low == high else (low + high) / 2.0
    return pd.Series(out, index=knobs.columns, dtype=np.float64)
