"""``HistorySnapshot``: the store's history folded into per-key counts once, for fast serving.

Training features (``features.point_in_time_features``) scan the whole history for every
query, which is right for a training frame and far too slow for a request. At serving time
every candidate starts at the same instant ``at``, so the history collapses to a handful of
numbers per key (pattern, gateway, environment, pattern x environment, pattern x resource):
outcomes known before ``at``, those known in the last window, the last start and the last
known failure. ``candidate_features`` turns those into exactly the columns a training row at
``at`` would have (a test holds it equal to ``features_for_candidates``), in microseconds
per candidate instead of a pass over a million rows.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from deploylearn.domain.records import DeploymentPattern
from deploylearn.domain.vocabulary import Label
from deploylearn.features._columns import (
    MICROS_PER_DAY,
    column_name,
    explode_resources,
    micros,
)
from deploylearn.features.config import CATEGORICAL_COLUMNS, knob_table
from deploylearn.features.embeddings import embedding_lookup
from deploylearn.features.history import (
    DEFAULT_WINDOW_DAYS,
    HISTORY_KEYS,
    LAST_RUNS,
    PATTERN_RESOURCE,
    RESOURCE_SET,
    add_count_columns,
    resource_sets,
)
from deploylearn.serving.key_stats import (
    NO_STATS,
    NO_TIME,
    HistoryRow,
    KeyStats,
    Tail,
    add_to_tail,
    history_rows,
)

_NONE = "none"
_column_name = functools.lru_cache(maxsize=65536)(column_name)  # hot on the request path
_NO_FIRST = np.iinfo(np.int64).max  # first_start of an empty history
_BUNDLE_SEP = "\x1f"  # joins a bundle's names for grouping (never inside a name)


@dataclass
class HistorySnapshot:
    """Per-key history as of ``at`` plus the lookups candidate generation needs."""

    at: pd.Timestamp
    window_days: float
    patterns: dict[str, DeploymentPattern]
    stats: dict[str, dict[tuple[Any, ...], KeyStats]]
    first_start: int
    pattern_first_start: dict[str, int]
    knobs: pd.DataFrame
    # environment -> pattern_id -> resource bundle -> [successes, failures, runs]
    bundles: dict[str, dict[str, dict[frozenset[str], list[float]]]]
    decayed: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    half_life_days: float | None = None
    global_counts: tuple[float, float] = (0.0, 0.0)
    rows: int = 0
    _layouts: dict[tuple[str, ...], FeatureLayout] = field(default_factory=dict, repr=False)
    _knob_array: np.ndarray | None = field(default=None, repr=False)
    newest: int = NO_TIME  # the latest start or completion of any row (microseconds)
    # What ``fold`` needs to stay exact: each key's latest LAST_RUNS outcomes, the outcomes
    # inside the recent window (a heap by known time: they leave it as ``at`` moves on), and
    # rows with a start or an outcome not yet known at ``at`` ([row, start folded]).
    _tails: dict[str, dict[tuple[Any, ...], list[Tail]]] = field(default_factory=dict, repr=False)
    _recent: list[tuple[int, str, HistoryRow]] = field(default_factory=list, repr=False)
    _pending: list[tuple[HistoryRow, bool]] = field(default_factory=list, repr=False)
    _outcomes: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    _new_outcomes: list[tuple[Any, Any, int, bool]] = field(default_factory=list, repr=False)
    _embedding_cache: dict[int, tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]] = field(
        default_factory=dict, repr=False
    )

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        frame: pd.DataFrame,
        patterns: Sequence[DeploymentPattern],
        *,
        at: datetime | pd.Timestamp | None = None,
        window_days: float = DEFAULT_WINDOW_DAYS,
        half_life_days: float | None = None,
    ) -> HistorySnapshot:
        """Fold ``Store.executions_frame()`` into counts as of ``at`` (default: now).

        Only what was known strictly before ``at`` counts, by the training rules: an outcome
        at its completion time, a start at its start time. ``half_life_days`` also folds
        time-decayed pattern x environment counts for the serving blend.
        """
        when = _utc(at or datetime.now(UTC))
        t = int(when.value // 1000)
        if len(frame):  # the training order: ties in outcome time keep this order
            frame = frame.sort_values(["started_at", "execution_id"], kind="stable")
            frame = frame.reset_index(drop=True)
        start, known = _times(frame)
        outcome = frame["outcome"].astype(object).to_numpy() if len(frame) else np.zeros(0)
        success = (outcome == "success") & (known < t)
        failure = (outcome == "failure") & (known < t)
        window = int(window_days * MICROS_PER_DAY)
        recent = known >= t - window
        started = start < t
        events = pd.DataFrame(
            {
                "s": success.astype(np.float64),
                "f": failure.astype(np.float64),
                "rs": (success & recent).astype(np.float64),
                "rf": (failure & recent).astype(np.float64),
                "start": np.where(started, start, NO_TIME),
                "fail": np.where(failure, known, NO_TIME),
            }
        )
        stats: dict[str, dict[tuple[Any, ...], KeyStats]] = {}
        tails: dict[str, dict[tuple[Any, ...], list[Tail]]] = {}
        derived = {RESOURCE_SET: resource_sets(frame["resources_deployed"])}
        order = (start, frame["execution_id"].astype(object).to_numpy())
        for prefix, keys in HISTORY_KEYS.items():
            columns = [(derived[k] if k in derived else frame[k]).astype(object) for k in keys]
            stats[prefix], tails[prefix] = _with_last_outcomes(
                _fold(events, columns, started), columns, known, success, failure, order
            )
        rows, code, names = explode_resources(frame["resources_deployed"])
        pair_events = events.iloc[rows].reset_index(drop=True)
        pair_keys = [
            frame["pattern_id"].astype(object).iloc[rows].reset_index(drop=True),
            pd.Series(np.asarray(names, dtype=object)[code] if len(code) else [], dtype=object),
        ]
        stats[PATTERN_RESOURCE] = _fold(pair_events, pair_keys, started[rows])
        pattern_first: dict[str, int] = {}
        if len(frame):
            firsts = pd.Series(start).groupby(frame["pattern_id"].astype(object).values).min()
            pattern_first = {str(k): int(v) for k, v in firsts.items()}
        snapshot = cls(
            at=when,
            window_days=window_days,
            patterns={p.pattern_id: p for p in patterns},
            stats=stats,
            first_start=int(start.min()) if len(start) else _NO_FIRST,
            pattern_first_start=pattern_first,
            knobs=knob_table(patterns),
            bundles=_bundles(frame, success, failure),
            half_life_days=half_life_days,
            global_counts=(float(success.sum()), float(failure.sum())),
            rows=len(frame),
            newest=int(max(start.max(), known.max())) if len(frame) else NO_TIME,
        )
        outcome_rows = success | failure
        snapshot._outcomes = pd.DataFrame(
            {
                "pattern": frame["pattern_id"].astype(object).to_numpy()[outcome_rows],
                "env": frame["target_environment"].astype(object).to_numpy()[outcome_rows],
                "known": known[outcome_rows],
                "success": success[outcome_rows],
            }
        )
        snapshot._tails = tails
        in_window = np.flatnonzero(outcome_rows & recent)
        snapshot._recent = [
            (r.known, r.execution_id, r) for r in history_rows(frame, in_window, start, known)
        ]
        heapq.heapify(snapshot._recent)
        has_outcome = (outcome == "success") | (outcome == "failure")
        later = np.flatnonzero(~started | (has_outcome & (known >= t)))
        snapshot._pending = [(r, r.start < t) for r in history_rows(frame, later, start, known)]
        if half_life_days is not None:
            snapshot.decayed = snapshot.decayed_table(half_life_days)
        return snapshot

    # -- keeping up with writes ---------------------------------------------------------------
    def fold(self, frame: pd.DataFrame, at: datetime | pd.Timestamp) -> None:
        """Add rows just written (``Store.executions_frame_of`` of their ids) and move the
        snapshot to ``at`` (not before its own), as a fresh ``build`` at ``at`` would count
        them: outcomes and starts known by then, the recent window slid, decay aged."""
        when = _utc(at)
        if when < self.at:
            raise ValueError(f"at: {when} is before the snapshot's {self.at}")
        if len(frame):
            frame = frame.sort_values(["started_at", "execution_id"], kind="stable")
            frame = frame.reset_index(drop=True)
            start, known = _times(frame)
            for row in history_rows(frame, np.arange(len(frame)), start, known):
                self._register(row)
                self._pending.append((row, False))
        self._advance(when)

    def set_patterns(self, patterns: Sequence[DeploymentPattern]) -> None:
        """The store's patterns now (writes created some): the knob table is rebuilt as
        ``build`` makes it (new knob columns too, so cached layouts and arrays are dropped)."""
        self.patterns = {p.pattern_id: p for p in patterns}
        self.knobs = knob_table(patterns)
        self._knob_array = None
        self._layouts.clear()

    def _register(self, row: HistoryRow) -> None:
        """What a row counts for whatever ``at`` is: its keys, runs, first start."""
        for prefix, key in zip(HISTORY_KEYS, row.keys, strict=True):
            self.stats[prefix].setdefault(key, NO_STATS)
        for pair in row.pairs:
            self.stats[PATTERN_RESOURCE].setdefault(pair, NO_STATS)
        by_bundle = self.bundles.setdefault(row.environment, {}).setdefault(row.pattern, {})
        by_bundle.setdefault(frozenset(row.resources), [0.0, 0.0, 0.0])[2] += 1.0
        self.first_start = min(self.first_start, row.start)
        self.pattern_first_start[str(row.pattern)] = min(
            self.pattern_first_start.get(str(row.pattern), row.start), row.start
        )
        self.rows += 1
        self.newest = max(self.newest, row.start, row.known)

    def _advance(self, when: pd.Timestamp) -> None:
        previous, self.at = self.t, when
        t, window = self.t, int(self.window_days * MICROS_PER_DAY)
        if self.half_life_days is not None and t > previous:
            factor = float(_decay(self.half_life_days, (t - previous) / MICROS_PER_DAY))
            if factor != 1.0:
                self.decayed = {k: (s * factor, f * factor) for k, (s, f) in self.decayed.items()}
        waiting: list[tuple[HistoryRow, bool]] = []
        for row, started in self._pending:
            if not started and row.start < t:
                self._add_start(row)
                started = True
            known = row.outcome is not None and row.known < t
            if known:
                self._add_outcome(row, t, window)
            if not started or (row.outcome is not None and not known):
                waiting.append((row, started))
        self._pending = waiting
        while self._recent and self._recent[0][0] < t - window:
            self._leave_window(heapq.heappop(self._recent)[2])

    def _add_start(self, row: HistoryRow) -> None:
        for prefix, key in zip(HISTORY_KEYS, row.keys, strict=True):
            table = self.stats[prefix]
            table[key] = table[key].started(row.start)
        pairs = self.stats[PATTERN_RESOURCE]
        for pair in row.pairs:
            pairs[pair] = pairs[pair].started(row.start)

    def _add_outcome(self, row: HistoryRow, t: int, window: int) -> None:
        success, recent = row.outcome == "success", row.known >= t - window
        for prefix, key in zip(HISTORY_KEYS, row.keys, strict=True):
            table = self.stats[prefix]
            tail = self._tails.setdefault(prefix, {}).setdefault(key, [])
            add_to_tail(tail, row.tail_entry)
            table[key] = table[key].with_outcome(success, row.known, recent).with_tail(tail)
        pairs = self.stats[PATTERN_RESOURCE]
        for pair in row.pairs:
            pairs[pair] = pairs[pair].with_outcome(success, row.known, recent)
        counts = self.bundles[row.environment][row.pattern][frozenset(row.resources)]
        counts[0 if success else 1] += 1.0
        s, f = self.global_counts
        self.global_counts = (s + success, f + (not success))
        self._new_outcomes.append((row.pattern, row.environment, row.known, success))
        if self.half_life_days is not None:
            key = (str(row.pattern), str(row.environment))
            weight = float(_decay(self.half_life_days, (t - row.known) / MICROS_PER_DAY))
            ds, df = self.decayed.get(key, (0.0, 0.0))
            self.decayed[key] = (ds + weight, df) if success else (ds, df + weight)
        if recent:
            heapq.heappush(self._recent, (row.known, row.execution_id, row))

    def _leave_window(self, row: HistoryRow) -> None:
        success = row.outcome == "success"
        for prefix, key in zip(HISTORY_KEYS, row.keys, strict=True):
            table = self.stats[prefix]
            table[key] = table[key].left_window(success)
        pairs = self.stats[PATTERN_RESOURCE]
        for pair in row.pairs:
            pairs[pair] = pairs[pair].left_window(success)

    # -- lookups ----------------------------------------------------------------------------
    def key(self, prefix: str, *values: Any) -> KeyStats:
        return self.stats[prefix].get(tuple(values), NO_STATS)

    def decayed_table(self, half_life_days: float) -> dict[tuple[str, str], tuple[float, float]]:
        """Per (pattern, environment): outcomes weighted 2^(-age / half-life) at ``at``
        (``inf`` or 0: no decay). For the blend, and for tuning its half-life."""
        if self._new_outcomes:  # fold keeps its outcomes as tuples: join them once, here
            new = pd.DataFrame(self._new_outcomes, columns=list(self._outcomes.columns))
            self._outcomes = pd.concat([self._outcomes, new], ignore_index=True)
            self._new_outcomes = []
        return _decayed(self._outcomes, self.t, half_life_days)

    @property
    def t(self) -> int:
        """``at`` in microseconds since the epoch (the unit of every stored time)."""
        return int(self.at.value // 1000)

    def decayed_counts(self, pattern_id: str, environment: str) -> tuple[float, float]:
        """Time-decayed (successes, failures) of a pattern in an environment."""
        return self.decayed.get((pattern_id, environment), (0.0, 0.0))

    def context_counts(
        self, environment: str, resources: Sequence[str], pattern_id: str | None = None
    ) -> tuple[float, float, float]:
        """(successes, failures, runs) of runs in ``environment`` deploying all ``resources``."""
        wanted = frozenset(resources)
        s = f = n = 0.0
        by_pattern = self.bundles.get(environment, {})
        groups = [by_pattern.get(pattern_id, {})] if pattern_id else by_pattern.values()
        for bundles in groups:
            for bundle, (bs, bf, bn) in bundles.items():
                if wanted <= bundle:
                    s, f, n = s + bs, f + bf, n + bn
        return s, f, n

    def environments(self) -> list[str]:
        return sorted(self.bundles)

    # -- features ---------------------------------------------------------------------------
    def candidate_features(
        self,
        candidates: pd.DataFrame,
        feature_names: Sequence[str],
        node_embeddings: pd.DataFrame | None = None,
        knob_rows: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Model input for executions starting at ``at``; same contract as
        ``features.features_for_candidates`` (columns fixed by ``feature_names``).

        ``knob_rows`` (index = candidate index) gives knob columns for candidates whose
        pattern the snapshot does not know (a planned, never-seen configuration).
        """
        matrix = self.candidate_matrix(candidates, feature_names, node_embeddings, knob_rows)
        return pd.DataFrame(matrix, columns=list(feature_names), index=candidates.index)

    def candidate_matrix(
        self,
        candidates: pd.DataFrame,
        feature_names: Sequence[str],
        node_embeddings: pd.DataFrame | None = None,
        knob_rows: pd.DataFrame | None = None,
    ) -> np.ndarray:
        """``candidate_features`` as a float32 array (the request path: no pandas per column)."""
        layout = self.layout(feature_names)
        n = len(candidates)
        out = np.full((n, len(layout.names)), np.nan, dtype=np.float32)
        out[:, layout.one_hot] = 0.0
        t = self.t
        cols: dict[str, np.ndarray] = {}
        pattern = candidates["pattern_id"].astype(object).to_numpy()
        bundles: dict[tuple[str, ...], list[str]] = {}  # rows repeat one bundle per request
        resources = []
        for r in candidates["resources_deployed"]:
            key = tuple(r)
            bundle = bundles.get(key)
            if bundle is None:
                bundle = bundles[key] = sorted(set(r))
            resources.append(bundle)
        derived = {RESOURCE_SET: np.array(["|".join(r) for r in resources], dtype=object)}
        for prefix, keys in HISTORY_KEYS.items():
            values = [
                derived[k] if k in derived else candidates[k].astype(object).to_numpy()
                for k in keys
            ]
            self._key_columns(cols, prefix, values, t)
        _pair_columns(cols, self, pattern, resources, t)
        cols["n_resources"] = np.array([len(r) for r in resources], dtype=np.float64)
        automation = candidates.get("automation_triggered", pd.Series([False] * n))
        cols["automation_triggered"] = (
            pd.Series(list(automation)).astype("boolean").fillna(False).to_numpy(dtype=float)
        )
        cols["hour"] = np.full(n, float(self.at.hour))
        cols["weekday"] = np.full(n, float(self.at.day_of_week))
        cols["days_since_first_record"] = np.full(
            n, (t - min(self.first_start, t)) / MICROS_PER_DAY
        )
        cols["pattern_age_days"] = np.array(
            [
                (t - min(self.pattern_first_start.get(str(p), t), t)) / MICROS_PER_DAY
                for p in pattern
            ]
        )
        for name, array in cols.items():
            position = layout.position.get(name)
            if position is not None:
                out[:, position] = array
        self._fill_knobs(out, layout, pattern, candidates.index, knob_rows)
        bundle_rows: dict[tuple[str, ...], list[int]] = {}
        for i, bundle in enumerate(resources):
            bundle_rows.setdefault(tuple(bundle), []).append(i)
        for names, rows in bundle_rows.items():  # rows repeat per gateway: set by bundle
            for name in names:
                position = layout.position.get(_column_name("resource", name))
                if position is not None:
                    out[rows, position] = 1.0
        for column in CATEGORICAL_COLUMNS:
            values = candidates[column] if column in candidates else [None] * n
            level_rows: dict[Any, list[int]] = {}
            for i, value in enumerate(values):
                level = _NONE if value is None or value != value else value
                level_rows.setdefault(level, []).append(i)
            for level, rows in level_rows.items():
                position = layout.position.get(_column_name(column, level))
                if position is not None:
                    out[rows, position] = 1.0
        if node_embeddings is not None:
            self._fill_embeddings(out, layout, node_embeddings, candidates, resources)
        return out

    def gateway_matrix(
        self,
        candidates: pd.DataFrame,
        gateways: Sequence[str | None],
        feature_names: Sequence[str],
        node_embeddings: pd.DataFrame | None = None,
    ) -> np.ndarray:
        """``candidate_matrix`` of ``candidates`` on each of ``gateways`` in turn (rows
        gateway-major, as concatenating one copy per gateway would be). Only a gateway's own
        columns (its keys' history, its embedding) are computed per gateway: a recommendation
        scores every pattern on a dozen gateways, and the rest of a row is the same on each."""
        n = len(candidates)
        first = self.candidate_matrix(
            candidates.assign(gateway_host=gateways[0]), feature_names, node_embeddings
        )
        if len(gateways) == 1:
            return first
        layout = self.layout(feature_names)
        out = np.tile(first, (len(gateways), 1))
        own = {
            RESOURCE_SET: np.array(
                ["|".join(sorted(set(r))) for r in candidates["resources_deployed"]], dtype=object
            ),
            "pattern_id": candidates["pattern_id"].astype(object).to_numpy(),
        }
        target = layout.embedding("gateway") if node_embeddings is not None else None
        vectors: dict[str, np.ndarray] = {}
        if target is not None and node_embeddings is not None:
            vectors = self._embedding_lookups(node_embeddings)[Label.GATEWAY]
        t = self.t
        for i, host in enumerate(gateways[1:], start=1):
            block = out[i * n : (i + 1) * n]
            cols: dict[str, np.ndarray] = {}
            own["gateway_host"] = np.full(n, host, dtype=object)
            for prefix, keys in HISTORY_KEYS.items():
                if "gateway_host" in keys:
                    self._key_columns(cols, prefix, [own[k] for k in keys], t)
            for name, array in cols.items():
                position = layout.position.get(name)
                if position is not None:
                    block[:, position] = array
            if target is not None:
                vector = vectors.get(str(host))
                block[:, target] = np.nan if vector is None else vector[: len(target)]
        return out

    def _key_columns(
        self, cols: dict[str, np.ndarray], prefix: str, values: list[np.ndarray], t: int
    ) -> None:
        """The prefix's history columns for rows whose key columns are ``values``."""
        table = self.stats[prefix]
        distinct: dict[tuple[Any, ...], int] = {}  # rows repeat keys (per gateway, ...)
        inverse = np.fromiter(
            (distinct.setdefault(key, len(distinct)) for key in zip(*values, strict=True)),
            dtype=np.intp,
            count=len(values[0]),
        )
        found = [table.get(key, NO_STATS) for key in distinct]
        _history_columns(cols, prefix, found, t, inverse)

    def layout(self, feature_names: Sequence[str]) -> FeatureLayout:
        """Where each of a model's features sits in its input (cached per model)."""
        key = tuple(feature_names)
        layout = self._layouts.get(key)
        if layout is None:
            layout = FeatureLayout.of(key, list(self.knobs.columns))
            self._layouts[key] = layout
        return layout

    def _fill_knobs(
        self,
        out: np.ndarray,
        layout: FeatureLayout,
        pattern: np.ndarray,
        index: pd.Index,
        knob_rows: pd.DataFrame | None,
    ) -> None:
        if not len(layout.knob_source):
            return
        rows = self.knobs.index.get_indexer(pattern)
        values = self.knob_values[:, layout.knob_source]
        found = rows >= 0
        out[np.ix_(found, layout.knob_target)] = values[rows[found]]
        if knob_rows is not None and (~found).any():
            extra = knob_rows.reindex(index[~found]).reindex(columns=self.knobs.columns)
            out[np.ix_(~found, layout.knob_target)] = extra.to_numpy(np.float64)[
                :, layout.knob_source
            ]

    @property
    def knob_values(self) -> np.ndarray:
        """``knobs`` as a float array (rows: patterns in ``knobs.index`` order)."""
        if self._knob_array is None:
            self._knob_array = self.knobs.to_numpy(dtype=np.float64)
        return self._knob_array

    def _fill_embeddings(
        self,
        out: np.ndarray,
        layout: FeatureLayout,
        node_embeddings: pd.DataFrame,
        candidates: pd.DataFrame,
        resources: list[list[str]],
    ) -> None:
        """Pattern, gateway and mean-resource vectors (NaN where a node has no embedding)."""
        lookups = self._embedding_lookups(node_embeddings)
        for prefix, label, column in (
            ("pattern", Label.PATTERN, "pattern_id"),
            ("gateway", Label.GATEWAY, "gateway_host"),
        ):
            target = layout.embedding(prefix)
            if target is None:
                continue
            distinct: dict[str, int] = {}  # rows repeat patterns and gateways
            inverse = np.fromiter(
                (distinct.setdefault(str(k), len(distinct)) for k in candidates[column]),
                dtype=np.intp,
                count=len(candidates),
            )
            vectors = [lookups[label].get(key) for key in distinct]
            has = np.array([v is not None for v in vectors], dtype=bool)
            if not has.any():
                continue
            width = len(target)
            table = np.zeros((len(vectors), width), dtype=np.float32)
            for j, vector in enumerate(vectors):
                if vector is not None:
                    table[j] = vector[:width]
            rows = np.flatnonzero(has[inverse])
            out[np.ix_(rows, target)] = table[inverse[rows]]
        target = layout.embedding("resources")
        if target is None:
            return
        means: dict[tuple[str, ...], np.ndarray | None] = {}  # one mean per distinct bundle
        for i, bundle in enumerate(resources):
            key = tuple(bundle)
            if key not in means:
                vectors = [lookups[Label.RESOURCE_TYPE].get(r) for r in bundle]
                present = [v for v in vectors if v is not None]
                complete = bool(bundle) and len(present) == len(vectors)
                means[key] = np.mean(np.stack(present), axis=0) if complete else None
            mean = means[key]
            if mean is not None:
                out[i, target] = mean[: len(target)]

    def _embedding_lookups(self, node_embeddings: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
        cached = self._embedding_cache.get(id(node_embeddings))
        if cached is None or cached[0] is not node_embeddings:
            lookups: dict[str, dict[str, np.ndarray]] = {
                label: embedding_lookup(node_embeddings, label)
                for label in (Label.PATTERN, Label.GATEWAY, Label.RESOURCE_TYPE)
            }
            cached = (node_embeddings, lookups)
            self._embedding_cache[id(node_embeddings)] = cached
        return cached[1]


@dataclass(frozen=True)
class FeatureLayout:
    """Where each feature goes in the model's column order (computed once per model)."""

    names: tuple[str, ...]
    position: dict[str, int]
    one_hot: np.ndarray
    knob_source: np.ndarray  # knob table columns ...
    knob_target: np.ndarray  # ... and where they land
    embeddings: dict[str, np.ndarray]

    @classmethod
    def of(cls, names: tuple[str, ...], knob_columns: list[str]) -> FeatureLayout:
        position = {name: i for i, name in enumerate(names)}
        prefixes = ("resource__", *(f"{c}__" for c in CATEGORICAL_COLUMNS))
        pairs = [(j, position[c]) for j, c in enumerate(knob_columns) if c in position]
        embeddings = {}
        for prefix in ("pattern", "gateway", "resources"):
            found: list[int] = []
            while f"emb_{prefix}_{len(found)}" in position:
                found.append(position[f"emb_{prefix}_{len(found)}"])
            if found:
                embeddings[prefix] = np.array(found)
        return cls(
            names=names,
            position=position,
            one_hot=np.array([i for i, c in enumerate(names) if c.startswith(prefixes)], int),
            knob_source=np.array([j for j, _ in pairs], dtype=int),
            knob_target=np.array([i for _, i in pairs], dtype=int),
            embeddings=embeddings,
        )

    def embedding(self, prefix: str) -> np.ndarray | None:
        return self.embeddings.get(prefix)


def _fold(
    events: pd.DataFrame, keys: list[pd.Series], started: np.ndarray
) -> dict[tuple[Any, ...], KeyStats]:
    """Sum the outcome columns and take the latest times per key."""
    if not len(events):
        return {}
    grouped = events.assign(
        **{f"k{i}": k.where(k.notna(), None).to_numpy() for i, k in enumerate(keys)}
    ).groupby([f"k{i}" for i in range(len(keys))], dropna=False, sort=False)
    table = grouped.agg(
        s=("s", "sum"),
        f=("f", "sum"),
        rs=("rs", "sum"),
        rf=("rf", "sum"),
        start=("start", "max"),
        fail=("fail", "max"),
    )
    out: dict[tuple[Any, ...], KeyStats] = {}
    for key, row in zip(table.index, table.itertuples(index=False), strict=True):
        key_tuple = key if isinstance(key, tuple) else (key,)
        out[tuple(None if k != k else k for k in key_tuple)] = KeyStats(
            float(row.s), float(row.f), float(row.rs), float(row.rf), int(row.start), int(row.fail)
        )
    return out


def _with_last_outcomes(
    stats: dict[tuple[Any, ...], KeyStats],
    keys: list[pd.Series],
    known: np.ndarray,
    success: np.ndarray,
    failure: np.ndarray,
    order: tuple[np.ndarray, np.ndarray],
) -> tuple[dict[tuple[Any, ...], KeyStats], dict[tuple[Any, ...], list[Tail]]]:
    """Add each key's latest known outcome and its latest ``LAST_RUNS`` outcomes, ordered as
    ``history._as_of`` orders them (by outcome time, ties in frame order); also return those
    outcomes per key (``order``: each row's start and execution id), for ``fold``."""
    has = success | failure
    if not has.any():
        return stats, {}
    names = [f"k{i}" for i in range(len(keys))]
    columns = {
        name: k.where(k.notna(), None).to_numpy()[has]
        for name, k in zip(names, keys, strict=True)
    }
    table = pd.DataFrame(columns).assign(
        known=known[has],
        start=order[0][has],
        eid=order[1][has],
        s=success[has].astype(np.float64),
    )
    table = table.sort_values("known", kind="stable")
    tail = table.groupby(names, dropna=False, sort=False).tail(LAST_RUNS)
    tails: dict[tuple[Any, ...], list[Tail]] = {}
    key_columns = [tail[name].tolist() for name in names]
    entries = zip(*(tail[c].tolist() for c in ("known", "start", "eid", "s")), strict=True)
    for key, entry in zip(zip(*key_columns, strict=True), entries, strict=True):
        tails.setdefault(tuple(None if k != k else k for k in key), []).append(entry)
    out = dict(stats)
    for name, entries_of_key in tails.items():
        out[name] = out.get(name, KeyStats()).with_tail(entries_of_key)
    return out, tails


def _history_columns(
    cols: dict[str, np.ndarray],
    prefix: str,
    found: list[KeyStats],
    t: int,
    rows: np.ndarray | None = None,
) -> None:
    """The prefix's columns from the stats of distinct keys; ``rows[i]``: row i's key."""

    def per_row(values: list[float]) -> np.ndarray:
        array = np.array(values, dtype=np.float64)
        return array if rows is None else array[rows]

    add_count_columns(
        cols,
        prefix,
        successes=per_row([k.successes for k in found]),
        failures=per_row([k.failures for k in found]),
        recent_successes=per_row([k.recent_successes for k in found]),
        recent_failures=per_row([k.recent_failures for k in found]),
        since_previous=per_row([_since(t, k.last_start) for k in found]),
        since_failure=per_row([_since(t, k.last_failure) for k in found]),
        last_outcome=per_row([k.last_outcome for k in found]),
        last_successes=per_row([k.last_successes for k in found]),
        last_runs=per_row([k.last_runs for k in found]),
    )


def _pair_columns(
    cols: dict[str, np.ndarray],
    snapshot: HistorySnapshot,
    pattern: np.ndarray,
    resources: list[list[str]],
    t: int,
) -> None:
    """Per candidate, the pattern x resource stats folded like ``history._aggregate_pairs``."""
    names = ("successes", "failures", "rate_min", "rate_mean", "log_runs_min", "since_failure_s")
    out = np.full((len(pattern), len(names)), np.nan)
    # A request's rows repeat (pattern, bundle) once per gateway: fold each pair once.
    folded: dict[tuple[Any, tuple[str, ...]], tuple[float, ...]] = {}
    for i, (p, bundle) in enumerate(zip(pattern, resources, strict=True)):
        if not bundle:
            continue
        key = (p, tuple(bundle))
        values = folded.get(key)
        if values is None:
            values = folded[key] = _pair_values(snapshot, p, bundle, t)
        out[i] = values
    for j, name in enumerate(names):
        cols[f"{PATTERN_RESOURCE}_{name}"] = out[:, j]


def _pair_values(
    snapshot: HistorySnapshot, pattern: Any, bundle: list[str], t: int
) -> tuple[float, ...]:
    """One (pattern, bundle)'s pattern x resource columns, in ``_pair_columns``' order."""
    # Plain floats: a bundle holds a few resources, and numpy's per-call cost dominated.
    # Counts are whole numbers, so the sums are exact whichever way they are added.
    found = [snapshot.key(PATTERN_RESOURCE, pattern, r) for r in bundle]
    rates = [(k.successes + 1.0) / (k.successes + k.failures + 2.0) for k in found]
    since = [_since(t, k.last_failure) for k in found]
    known = [x for x in since if not np.isnan(x)]
    return (
        float(sum(k.successes for k in found)),
        float(sum(k.failures for k in found)),
        min(rates),
        float(np.mean(rates)),
        float(np.log1p(min(k.successes + k.failures for k in found))),  # log1p is monotone
        min(known) if known else np.nan,
    )


def _utc(at: datetime | pd.Timestamp) -> pd.Timestamp:
    when = pd.Timestamp(at)
    return when.tz_localize(UTC) if when.tzinfo is None else when.tz_convert(UTC)


def _times(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's start and the time its outcome became known (its completion; its start if it
    has none or completed before it started), in microseconds."""
    if not len(frame):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    start = micros(frame["started_at"])
    known = micros(frame["completed_at"])
    return start, np.where((known == NO_TIME) | (known < start), start, known)


def _since(t: int, event: int) -> float:
    return np.nan if event == NO_TIME else (t - event) / 1e6


def _bundles(
    frame: pd.DataFrame, success: np.ndarray, failure: np.ndarray
) -> dict[str, dict[str, dict[frozenset[str], list[float]]]]:
    """environment -> pattern -> resource bundle -> [successes, failures, runs]."""
    out: dict[str, dict[str, dict[frozenset[str], list[float]]]] = {}
    if not len(frame):
        return out
    bundle = frame["resources_deployed"].map(lambda r: _BUNDLE_SEP.join(sorted(set(r))))
    table = (
        pd.DataFrame(
            {
                "env": frame["target_environment"].astype(object).to_numpy(),
                "pattern": frame["pattern_id"].astype(object).to_numpy(),
                "bundle": bundle.to_numpy(),
                "s": success.astype(np.float64),
                "f": failure.astype(np.float64),
                "n": 1.0,
            }
        )
        .groupby(["env", "pattern", "bundle"], sort=False)
        .sum()
    )
    for (env, pattern, names), row in zip(table.index, table.itertuples(index=False), strict=True):
        resources = frozenset(names.split(_BUNDLE_SEP)) if names else frozenset()
        out.setdefault(env, {}).setdefault(pattern, {})[resources] = [row.s, row.f, row.n]
    return out


def _decay(half_life_days: float, age_days: np.ndarray | float) -> Any:
    """2^(-age / half-life); 1 when the half-life is 0 or infinite (no decay)."""
    finite = 0 < half_life_days < float("inf")
    return np.exp2(-np.asarray(age_days) / half_life_days) if finite else np.ones_like(age_days)


def _decayed(
    outcomes: pd.DataFrame, t: int, half_life_days: float
) -> dict[tuple[str, str], tuple[float, float]]:
    if not len(outcomes):
        return {}
    age = (t - outcomes["known"].to_numpy()) / MICROS_PER_DAY
    weight = _decay(half_life_days, age)
    success = outcomes["success"].to_numpy(dtype=bool)
    table = (
        pd.DataFrame(
            {
                "pattern": outcomes["pattern"].to_numpy(),
                "env": outcomes["env"].to_numpy(),
                "s": np.where(success, weight, 0.0),
                "f": np.where(success, 0.0, weight),
            }
        )
        .groupby(["pattern", "env"], sort=False)
        .sum()
    )
    return {
        (str(p), str(e)): (float(row.s), float(row.f))
        for (p, e), row in zip(table.index, table.itertuples(index=False), strict=True)
    }
