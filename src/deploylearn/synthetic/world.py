"""A seeded synthetic history of Ignition deployments whose success model is known exactly.

Why: every metric the project reports (calibration, regret against the best pattern, the
value of learning from failures) needs ground truth that real history cannot give. The world
draws contexts the way teams really deploy (habits, maintenance windows, promotion chains),
scores each with a logistic oracle (``model.py``), draws the outcome, and writes records in
the seed's ``record_deployment_execution`` keywords, with the noise real data has: hand-edited
knobs, volatile build metadata, leaked secrets, failure messages with variable parts.

Determinism: the stream is cut into fixed internal chunks of ``CHUNK`` executions; chunk ``j``
draws from its own generator seeded by ``(seed, 1, j)`` and covers the ``j``-th slice of the
time-quantile range. So the sequence depends on ``seed``, ``start``, ``days`` and
``n_executions`` only, never on ``batch_size``, and a batch needs only its own chunks.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from deploylearn.synthetic import catalogue as cat
from deploylearn.synthetic import model as mdl
from deploylearn.synthetic import text as txt

if TYPE_CHECKING:
    import pandas as pd

CHUNK = 8192  # part of the determinism contract: changing it changes every stream
EDIT_RATE, DROP_RATE, ADD_RATE = 0.05, 0.015, 0.015
SECRET_RATE, LOG_LEAK_RATE = 0.03, 0.02
HEALTH_REASON_RATE, LESSON_RATE, SUCCESS_LESSON_RATE = 0.15, 0.25, 0.01
ROLLBACK_BASE = -0.3
ROLLBACK_STRATEGY = np.array([1.0, 0.0, 0.8, -1.5, 0.3])  # per STRATEGIES
ROLLBACK_THRESHOLD_SLOPE = 6.0
ROLLBACK_OK_BASE, ROLLBACK_OK_BACKUP, ROLLBACK_OK_DB = 0.2, 1.5, -0.5
ROLLBACK_OK_STRATEGY = np.array([1.0, 0.0, 0.6, -0.8, 0.3])
DURATION_STRATEGY = np.array([720.0, 600.0, 1200.0, 180.0, 900.0])  # median seconds
_CAUSE_NAMES = np.array([*mdl.CAUSES, ""], dtype=object)
FLAKY = {"production": -1.2, "staging": -0.7, "test": -0.6}
DRIFT_GATEWAY_OFFSET = -1.4


def _cum(weights: np.ndarray) -> np.ndarray:
    """Row-normalized cumulative weights without the final 1.0, for ``_draw``."""
    w = np.asarray(weights, dtype=float)
    c = np.cumsum(w, axis=-1) / w.sum(axis=-1, keepdims=True)
    return cast(np.ndarray, c[..., :-1])


def _draw(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Categorical draw per row: ``cum`` is (rows, k-1) already indexed by each row's key."""
    if cum.ndim == 1:
        return np.searchsorted(cum, u, side="right")
    return cast(np.ndarray, (u[:, None] >= cum).sum(axis=1))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return cast(np.ndarray, 1.0 / (1.0 + np.exp(-x)))


def _json_value(name: str, value: float) -> Any:
    """A knob as the type a person would write it (bool, int seconds, float ratio, policy)."""
    if name == "security_policy":
        return "strict" if value > 0.5 else "standard"
    if name in cat.BOOL_KNOBS:
        return bool(value > 0.5)
    if name == "rollback_threshold":
        return round(float(value), 2)
    return round(float(value))


@dataclass
class WorldBatch:
    """One slice of the stream: records plus the truth they were drawn from (aligned)."""

    records: list[dict[str, Any]]
    true_success_probability: np.ndarray
    template_index: np.ndarray  # index into ``SyntheticWorld.templates`` (hidden truth)
    failure_cause: list[str]  # the oracle term that caused a failure, "" on success
    start_index: int = 0

    def __len__(self) -> int:
        return len(self.records)

    def truth_frame(self) -> pd.DataFrame:
        """Per-execution ground truth as a DataFrame (for evaluation notebooks)."""
        import pandas as pd

        ids = [r["execution_id"] for r in self.records]
        return pd.DataFrame(
            {
                "execution_id": ids,
                "template_id": [cat.TEMPLATES[i].template_id for i in self.template_index],
                "true_success_probability": self.true_success_probability,
                "failure_cause": self.failure_cause,
            }
        )


@dataclass
class _Part:
    records: list[dict[str, Any]]
    p: np.ndarray
    template: np.ndarray
    cause: list[str]


def _template_tables() -> dict[str, Any]:
    """Per-template arrays the chunk generator indexes into (built once per process)."""
    n = len(cat.TEMPLATES)
    knobs = np.stack([mdl.knob_vector(t.configuration) for t in cat.TEMPLATES])
    strategy = np.array([cat.STRATEGY_INDEX[t.strategy] for t in cat.TEMPLATES])
    editable: list[list[int]] = []
    droppable: list[list[str]] = []
    addable: list[list[str]] = []
    for t in cat.TEMPLATES:
        cfg = t.configuration
        editable.append([cat.KNOB_INDEX[k] for k in cfg if k in cat.EDITABLE_KNOBS])
        droppable.append([k for k, v in cfg.items() if v == cat.KNOB_DEFAULTS[k]])
        addable.append([k for k in cat.KNOBS if k not in cfg])
    width = max(len(e) for e in editable)
    edit_cols = np.zeros((n, width), dtype=np.int64)
    for i, cols in enumerate(editable):
        edit_cols[i, : len(cols)] = cols
    habits = np.zeros((len(cat.TEAMS) * len(cat.ENVIRONMENTS), n))
    for ti, team in enumerate(cat.TEAMS):
        for ei, env_class in enumerate(cat.ENV_CLASS):
            for tid, weight in team.habits[env_class].items():
                habits[ti * len(cat.ENVIRONMENTS) + ei, cat.TEMPLATE_INDEX[tid]] = weight
    return {
        "knobs": knobs,
        "strategy": strategy,
        "edit_cols": edit_cols,
        "n_edit": np.array([len(e) for e in editable]),
        "droppable": droppable,
        "n_drop": np.array([len(d) for d in droppable]),
        "addable": addable,
        "n_add": np.array([len(a) for a in addable]),
        "habit_cum": _cum(habits),
        "configs": [t.configuration for t in cat.TEMPLATES],
    }


_TABLES: dict[str, Any] = {}


def _tables() -> dict[str, Any]:
    if not _TABLES:
        _TABLES.update(_template_tables())
    return _TABLES


@dataclass
class SyntheticWorld:
    """A reproducible deployment history with a known success model (see docs/synthetic-world.md).

    ``generate`` streams records; ``success_probability`` is the oracle for any candidate,
    including configurations the world never generated; ``best_pattern`` is the argmax over the
    world's templates, so regret of a recommender is ``p(best) - p(pick)``.
    """

    seed: int = 0
    start: datetime = field(default_factory=lambda: datetime(2025, 1, 1, tzinfo=UTC))
    days: float = 365
    id_prefix: str = "demo"

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ValueError(f"seed: must be a non-negative integer, got {self.seed!r}")
        if self.start.tzinfo is None:
            raise ValueError("start: must be timezone-aware (UTC)")
        if not self.days > 0:
            raise ValueError(f"days: must be positive, got {self.days!r}")
        self.seed = int(self.seed)
        self.start = self.start.astimezone(UTC).replace(microsecond=0)
        self._start_s = self.start.timestamp()
        self._span_s = float(self.days) * 86400.0
        self._build_hidden()
        self._build_clock()
        self._build_tables()

    # ------------------------------------------------------------------ catalogue
    @property
    def environments(self) -> tuple[str, ...]:
        return cat.ENVIRONMENTS

    @property
    def gateways(self) -> dict[str, list[str]]:
        return {env: list(hosts) for env, hosts in cat.GATEWAYS.items()}

    @property
    def strategies(self) -> tuple[str, ...]:
        return cat.STRATEGIES

    @property
    def resource_types(self) -> tuple[str, ...]:
        return cat.RESOURCE_TYPES

    @property
    def deployment_types(self) -> tuple[str, ...]:
        return cat.DEPLOYMENT_TYPES

    @property
    def templates(self) -> tuple[cat.Template, ...]:
        return cat.TEMPLATES

    @property
    def teams(self) -> tuple[cat.Team, ...]:
        return cat.TEAMS

    # ------------------------------------------------------------------ hidden truth
    def _build_hidden(self) -> None:
        rng = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(0,)))
        )
        offset = np.append(rng.normal(0.0, 0.1, len(cat.ALL_GATEWAYS)), 0.0)
        flaky: dict[str, str] = {}
        for env, value in FLAKY.items():
            hosts = cat.GATEWAYS[env]
            host = hosts[int(rng.integers(len(hosts)))]
            flaky[host] = env
            offset[cat.GATEWAY_INDEX[host]] = value
        prod_rest = [h for h in cat.GATEWAYS["production"] if h not in flaky]
        drift_host = prod_rest[int(rng.integers(len(prod_rest)))]
        offset[cat.GATEWAY_INDEX[drift_host]] = 0.0
        day = 86400.0
        upgrade_at = self._start_s + math.floor(self._span_s * rng.uniform(0.4, 0.5) / day) * day
        upgrade_at += 2 * 3600.0  # a night-time upgrade window
        drift_at = self._start_s + math.floor(self._span_s * rng.uniform(0.55, 0.65) / day) * day
        self._flaky = flaky
        self._drift_host = drift_host
        self._hidden = mdl.Hidden(
            gateway_offset=offset,
            drift_gateway=cat.GATEWAY_INDEX[drift_host],
            drift_gateway_offset=DRIFT_GATEWAY_OFFSET,
            drift_gateway_at=drift_at,
            upgrade_at=upgrade_at,
            start=self._start_s,
            span=self._span_s,
        )

    def truth(self) -> dict[str, Any]:
        """What a learner must never see, for evaluation and tests only."""
        h = self._hidden
        return {
            "gateway_offset": {
                g: float(h.gateway_offset[i]) for i, g in enumerate(cat.ALL_GATEWAYS)
            },
            "flaky_gateways": dict(self._flaky),
            "drift_gateway": self._drift_host,
            "drift_gateway_offset": h.drift_gateway_offset,
            "drift_gateway_at": datetime.fromtimestamp(h.drift_gateway_at, UTC),
            "upgrade_at": datetime.fromtimestamp(h.upgrade_at, UTC),
            "intercept": mdl.INTERCEPT,
        }

    # ------------------------------------------------------------------ clock
    def _build_clock(self) -> None:
        """Hourly intensity (working hours busy, nights and weekends quiet, slow growth)."""
        n_bins = max(1, math.ceil(self._span_s / 3600.0))
        centers = self._start_s + (np.arange(n_bins) + 0.5) * 3600.0
        work = mdl.working_hours(centers)
        day = np.floor_divide(centers, 86400.0)
        weekend = (day + 3) % 7 >= 5
        weight = np.where(work, 1.0, np.where(weekend, 0.12, 0.18))
        weight *= 1.0 + 0.3 * (np.arange(n_bins) / n_bins)
        width = np.full(n_bins, 3600.0)
        width[-1] = self._span_s - 3600.0 * (n_bins - 1)
        weight *= width / 3600.0
        self._clock_cum = np.concatenate([[0.0], np.cumsum(weight)])
        self._clock_cum /= self._clock_cum[-1]
        self._clock_edges = np.concatenate([[0.0], np.cumsum(width)])

    def _times(self, q: np.ndarray) -> np.ndarray:
        """Inverse of the cumulative intensity: quantiles -> seconds after start."""
        cum = self._clock_cum
        b = np.clip(np.searchsorted(cum, q, side="right") - 1, 0, len(cum) - 2)
        within = (q - cum[b]) / (cum[b + 1] - cum[b])
        edges = self._clock_edges
        t = edges[b] + within * (edges[b + 1] - edges[b])
        return cast(np.ndarray, np.minimum(t, self._span_s - 1.0))

    # ------------------------------------------------------------------ static tables
    def _build_tables(self) -> None:
        n_env = len(cat.ENVIRONMENTS)
        self._env_cum_work = _cum(np.array(cat.ENV_MIX_WORK))
        self._env_cum_off = _cum(np.array(cat.ENV_MIX_OFF))
        self._team_cum = _cum(np.array(cat.TEAM_SHARE))
        self._dtype_cum = _cum(np.array(cat.DTYPE_MIX))
        gw_weight = np.zeros((n_env, len(cat.ALL_GATEWAYS)))
        for g, env in enumerate(cat.GATEWAY_ENV):
            first = cat.GATEWAYS[cat.ENVIRONMENTS[env]][0] == cat.ALL_GATEWAYS[g]
            gw_weight[env, g] = 1.3 if first else 1.0
        self._gw_cum = _cum(gw_weight)
        self._bundle_cum = _cum(np.array([b.weights for b in cat.BUNDLES]).T)
        self._bundle_mask = np.array(
            [sum(cat.RESOURCE_BIT[r] for r in b.resources) for b in cat.BUNDLES], dtype=np.int64
        )
        self._users = [u for t in cat.TEAMS for u in t.users]
        self._user_offset = np.cumsum([0] + [len(t.users) for t in cat.TEAMS])[:-1]
        self._team_users = np.array([len(t.users) for t in cat.TEAMS])
        self._automation = np.array([t.automation_rate for t in cat.TEAMS])
        self._skip = np.array(cat.SKIP_PROMOTION)
        self._names = [
            [[f"{cat.ENV_TITLE[e]} {b.title} {cat.DTYPE_TITLE[d]}" for d in range(6)]
             for b in cat.BUNDLES]
            for e in range(n_env)
        ]

    # ------------------------------------------------------------------ generation
    def generate(self, n_executions: int = 1_000, batch_size: int = 20_000) -> Iterator[WorldBatch]:
        """Stream ``n_executions`` time-ordered executions in batches of ``batch_size``.

        Only the batch being filled (plus one internal chunk) is in memory at a time.
        """
        if n_executions < 0:
            raise ValueError(f"n_executions: must be >= 0, got {n_executions}")
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        n = int(n_executions)
        buf: list[dict[str, Any]] = []
        p_parts: list[np.ndarray] = []
        tpl_parts: list[np.ndarray] = []
        causes: list[str] = []
        batch_start = 0
        for j, a in enumerate(range(0, n, CHUNK)):
            part = self._chunk(j, a, min(a + CHUNK, n), n)
            offset = 0
            while offset < len(part.records):
                take = min(batch_size - len(buf), len(part.records) - offset)
                buf.extend(part.records[offset : offset + take])
                p_parts.append(part.p[offset : offset + take])
                tpl_parts.append(part.template[offset : offset + take])
                causes.extend(part.cause[offset : offset + take])
                offset += take
                if len(buf) == batch_size:
                    yield WorldBatch(buf, np.concatenate(p_parts), np.concatenate(tpl_parts),
                                     causes, batch_start)
                    batch_start += len(buf)
                    buf, p_parts, tpl_parts, causes = [], [], [], []
        if buf:
            yield WorldBatch(buf, np.concatenate(p_parts), np.concatenate(tpl_parts), causes,
                             batch_start)

    def _chunk(self, j: int, a: int, b: int, n: int) -> _Part:
        """Executions ``a..b-1`` of ``n``: all randomness from the chunk's own generator."""
        tb = _tables()
        rng = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(1, j)))
        )
        m = b - a
        # when, where, who
        q = np.sort(rng.uniform(a / n, b / n, m))
        t_rel = np.floor(self._times(q)).astype(np.int64)
        t_abs = self._start_s + t_rel.astype(float)
        work = mdl.working_hours(t_abs)
        u = rng.random((m, 16))
        env = np.where(work, _draw(self._env_cum_work, u[:, 0]), _draw(self._env_cum_off, u[:, 0]))
        team = _draw(self._team_cum[env], u[:, 1])
        user = self._user_offset[team] + np.minimum(
            (u[:, 2] * self._team_users[team]).astype(np.int64), self._team_users[team] - 1
        )
        automated = u[:, 3] < self._automation[team]
        gateway = _draw(self._gw_cum[env], u[:, 4])
        dtype = _draw(self._dtype_cum[env], u[:, 5])
        skip = (u[:, 6] < self._skip[dtype]) | (env == cat.DEV)
        via_qa = (env == cat.STAGING) & (u[:, 7] < 0.25)
        bundle = _draw(self._bundle_cum[env], u[:, 8])
        extra = u[:, 9] < cat.EXTRA_RESOURCE_RATE
        extra_bit = np.left_shift(1, (u[:, 10] * len(cat.RESOURCE_TYPES)).astype(np.int64))
        mask = self._bundle_mask[bundle] | np.where(extra, extra_bit, 0)
        # what: the team's habitual template, plus hand edits and knob noise
        tpl = _draw(tb["habit_cum"][team * len(cat.ENVIRONMENTS) + env], u[:, 11])
        knobs = tb["knobs"][tpl].copy()
        r = rng.integers(0, 2**31 - 1, size=(m, 3))
        noise = u[:, 12]
        edit = (noise < EDIT_RATE) & (tb["n_edit"][tpl] > 0)
        drop = (noise >= EDIT_RATE) & (noise < EDIT_RATE + DROP_RATE) & (tb["n_drop"][tpl] > 0)
        add = (noise >= EDIT_RATE + DROP_RATE) & (noise < EDIT_RATE + DROP_RATE + ADD_RATE) & (
            tb["n_add"][tpl] > 0
        )
        edit_rows = np.flatnonzero(edit)
        edit_col = tb["edit_cols"][tpl[edit_rows], r[edit_rows, 0] % tb["n_edit"][tpl[edit_rows]]]
        old = knobs[edit_rows, edit_col]
        sign = np.where(u[edit_rows, 13] < 0.5, -1.0, 1.0)
        factor = 1.0 + sign * (0.03 + 0.05 * u[edit_rows, 14])
        is_rt = edit_col == cat.KNOB_INDEX["rollback_threshold"]
        step = np.where(is_rt, 0.01, np.where(old >= 100, 5.0, 1.0))
        new = np.round(old * factor / step) * step
        new = np.where(new == old, old + sign * step, new)
        new = np.where(is_rt, np.clip(new, 0.5, 0.99), new)
        # the matrix must hold exactly what the record will say, so round as JSON will
        knobs[edit_rows, edit_col] = [
            round(float(x), 2) if rt_ else float(x) for x, rt_ in zip(new, is_rt, strict=True)
        ]
        # the oracle
        feats = mdl.Features(
            env=env, gateway=gateway, strategy=tb["strategy"][tpl], dtype=dtype, resources=mask,
            skipped=skip & (env != cat.DEV), knobs=knobs, t=t_abs,
        )
        comps = mdl.logit_components(feats, self._hidden)
        p = mdl.probability(comps)
        success = u[:, 15] < p
        cause_cum = np.cumsum(mdl.cause_weights(comps), axis=1)
        v = rng.random((m, 8))
        cause = (cause_cum <= (v[:, 0] * cause_cum[:, -1])[:, None]).sum(axis=1)
        cause = np.minimum(cause, len(mdl.CAUSES) - 1)
        strat = feats.strategy
        backup = knobs[:, cat.KNOB_INDEX["backup_enabled"]] > 0.5
        has_db = (mask & cat.RESOURCE_BIT["database"]) != 0
        rt = knobs[:, cat.KNOB_INDEX["rollback_threshold"]]
        rb_p = _sigmoid(
            ROLLBACK_BASE + ROLLBACK_STRATEGY[strat] + ROLLBACK_THRESHOLD_SLOPE * (rt - 0.9)
        )
        rollback = ~success & (v[:, 1] < rb_p)
        ok_p = _sigmoid(ROLLBACK_OK_BASE + ROLLBACK_OK_BACKUP * backup + ROLLBACK_OK_STRATEGY[strat]
                        + ROLLBACK_OK_DB * has_db)
        rollback_ok = rollback & (v[:, 2] < ok_p)
        # how long, how heavy
        n_res = mdl.POPCOUNT[mask]
        vt = knobs[:, cat.KNOB_INDEX["validation_timeout"]]
        base = DURATION_STRATEGY[strat] * (1 + 0.3 * (n_res - 1)) * np.where(has_db, 1.5, 1.0)
        dur = base * rng.lognormal(0.0, 0.35, m) + 0.5 * vt
        failed_only = ~success & ~rollback
        dur = np.where(failed_only, dur * (0.15 + 0.65 * v[:, 3]), dur)
        vt_cause = ~success & (cause == mdl.CAUSE_INDEX["validation_timeout"])
        dur = np.where(vt_cause, np.maximum(dur, vt + 1 + 29 * v[:, 4]), dur)
        rb_dur = rng.lognormal(np.log(240.0) + np.log(2.0) * has_db, 0.5)
        dur = np.where(rollback, dur * (0.4 + 0.5 * v[:, 5]) + rb_dur, dur)
        dur_s = np.maximum(dur, 5.0).astype(np.int64)
        cpu = np.round(np.clip(rng.normal(25.0 + 8.0 * n_res, 8.0), 2.0, 99.0), 1)
        mem = rng.lognormal(np.log(600.0 + 150.0 * n_res), 0.25).astype(np.int64)
        net_median = (5.0 + 20.0 * n_res) * np.where(has_db, 3.0, 1.0)
        net = np.round(rng.lognormal(np.log(net_median), 0.5), 1)
        requested = t_rel - rng.integers(5, 900, m)
        secret = v[:, 6] < SECRET_RATE
        leak = v[:, 7] < LOG_LEAK_RATE
        extra_u = rng.random((m, 3))
        commits = rng.bytes(20 * m).hex()
        tokens = rng.bytes(8 * m).hex()
        records = self._records(
            a=a, m=m, t_rel=t_rel, requested=requested, dur_s=dur_s, env=env, user=user,
            automated=automated, gateway=gateway, dtype=dtype, skip=skip, via_qa=via_qa,
            bundle=bundle, mask=mask, tpl=tpl, knobs=knobs, edit_rows=edit_rows,
            edit_col=edit_col, drop=drop, add=add, r=r, success=success, cause=cause,
            rollback=rollback, rollback_ok=rollback_ok, rb_dur=rb_dur, cpu=cpu, mem=mem, net=net,
            secret=secret, leak=leak, extra_u=extra_u, commits=commits, tokens=tokens,
        )
        cause_names = _CAUSE_NAMES[np.where(success, len(mdl.CAUSES), cause)].tolist()
        return _Part(records, p, tpl, cause_names)

    def _records(self, **arrays: Any) -> list[dict[str, Any]]:
        """Build the chunk's dicts with the cyclic GC paused.

        Millions of fresh acyclic dicts and lists otherwise trigger a GC pass every few
        hundred records, which nearly halves throughput; nothing here can form a cycle.
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._build_records(**arrays)
        finally:
            if was_enabled:
                gc.enable()

    def _build_records(self, *, a: int, m: int, t_rel: np.ndarray, requested: np.ndarray,
                       dur_s: np.ndarray, env: np.ndarray, user: np.ndarray,
                       automated: np.ndarray, gateway: np.ndarray, dtype: np.ndarray,
                       skip: np.ndarray, via_qa: np.ndarray, bundle: np.ndarray,
                       mask: np.ndarray, tpl: np.ndarray, knobs: np.ndarray,
                       edit_rows: np.ndarray, edit_col: np.ndarray, drop: np.ndarray,
                       add: np.ndarray, r: np.ndarray, success: np.ndarray, cause: np.ndarray,
                       rollback: np.ndarray, rollback_ok: np.ndarray, rb_dur: np.ndarray,
                       cpu: np.ndarray, mem: np.ndarray, net: np.ndarray, secret: np.ndarray,
                       leak: np.ndarray, extra_u: np.ndarray, commits: str,
                       tokens: str) -> list[dict[str, Any]]:
        """Turn the chunk's arrays into seed-keyword dicts (the Python-speed part).

        Everything that can be decided per array is decided before the loop, so the loop only
        assembles strings and dicts.
        """
        tb = _tables()
        start64 = np.datetime64(int(self._start_s), "s")
        start_iso = np.datetime_as_string(start64 + t_rel, unit="s").tolist()
        end_iso = np.datetime_as_string(start64 + t_rel + dur_s, unit="s").tolist()
        req_iso = np.datetime_as_string(start64 + requested, unit="s").tolist()
        start_s = int(self._start_s)
        fromts = datetime.fromtimestamp
        utc = UTC
        # config noise per row: 0 none, 1 hand edit, 2 dropped knob, 3 added knob
        noise_kind = np.zeros(m, dtype=np.int64)
        noise_kind[drop] = 2
        noise_kind[add] = 3
        noise_kind[edit_rows] = 1
        edits = {
            int(i): (cat.KNOBS[c], _json_value(cat.KNOBS[c], knobs[i, c]))
            for i, c in zip(edit_rows.tolist(), edit_col.tolist(), strict=True)
        }
        # source environment: index into (environments..., None)
        pred = np.array([cat.ENV_INDEX[p] if p else -1 for p in cat.PREDECESSOR])
        source_idx = np.where(skip, -1, np.where(via_qa, cat.QA, pred[env]))
        source_names: list[str | None] = [*cat.ENVIRONMENTS, None]
        # execution name form: 0-1 catalogue name, 2 "... line k", 3 "... (plant X)"
        form = (r[:, 2] % 4).tolist()
        lesson_ok = (extra_u[:, 0] < SUCCESS_LESSON_RATE).tolist()
        health = (extra_u[:, 1] < HEALTH_REASON_RATE).tolist()
        lesson_fail = (extra_u[:, 2] < LESSON_RATE).tolist()
        configs = tb["configs"]
        droppable, addable = tb["droppable"], tb["addable"]
        defaults = cat.KNOB_DEFAULTS
        hosts = cat.ALL_GATEWAYS
        envs = cat.ENVIRONMENTS
        dtypes = cat.DEPLOYMENT_TYPES
        dtype_words = [d.replace("_", " ") for d in dtypes]
        bundles = [b.title for b in cat.BUNDLES]
        users = self._users
        names = self._names
        strategies = [t.strategy for t in cat.TEMPLATES]
        mask_res = mdl.MASK_RESOURCES
        causes = mdl.CAUSES
        reasons_by_cause = txt.REASONS
        lessons_by_cause = txt.LESSONS
        db_bit = cat.RESOURCE_BIT["database"]
        prefix = f"{self.id_prefix}-{self.seed}-"
        build0 = 4000 + a // 5
        records: list[dict[str, Any]] = []
        append = records.append
        cols = zip(
            t_rel.tolist(), dur_s.tolist(), env.tolist(), user.tolist(), automated.tolist(),
            gateway.tolist(), dtype.tolist(), source_idx.tolist(), bundle.tolist(),
            mask.tolist(), tpl.tolist(), r[:, 1].tolist(), r[:, 2].tolist(), success.tolist(),
            cause.tolist(), rollback.tolist(), rollback_ok.tolist(), rb_dur.tolist(),
            cpu.tolist(), mem.tolist(), net.tolist(), secret.tolist(), leak.tolist(),
            noise_kind.tolist(), form, start_iso, end_iso, req_iso,
            strict=True,
        )
        for i, (t0, d, e, us, auto, g, dt, src, bu, mk, tp, r1, r2, ok, ca, rb, rbok, rbd, c,
                mm, nw, sec, lk, nk, fm, s_iso, e_iso, q_iso) in enumerate(cols):
            host = hosts[g]
            strategy = strategies[tp]
            resources = mask_res[mk]
            dtype_name = dtypes[dt]
            user_id = users[us]
            cfg = dict(configs[tp])
            if nk:
                if nk == 1:
                    key, value = edits[i]
                    cfg[key] = value
                elif nk == 2:
                    del cfg[droppable[tp][r1 % len(droppable[tp])]]
                else:
                    key = addable[tp][r1 % len(addable[tp])]
                    cfg[key] = defaults[key]
            cfg["build_number"] = build0 + (i >> 2) + (r2 & 3)
            cfg["commit"] = commits[40 * i : 40 * i + 40]
            cfg["requested_at"] = q_iso + "Z"
            if sec:
                cfg["db_password" if mk & db_bit else "api_token"] = tokens[16 * i : 16 * i + 16]
            if fm < 2:
                name = names[e][bu][dt]
            elif fm == 2:
                name = f"{bundles[bu]} {dtype_words[dt]} line {1 + r1 % 8}"
            else:
                name = f"{bundles[bu]} {cat.DTYPE_TITLE[dt]} ({cat.PLANTS[r1 % 3]})"
            eid = f"{prefix}{a + i:08d}"
            log = (f"{s_iso}Z INFO deployment {eid} started by {user_id}"
                   f" ({'ci' if auto else 'manual'})\n{s_iso}Z INFO strategy={strategy}"
                   f" gateway={host} resources={','.join(resources)}\n")
            if lk:
                log += (f"{s_iso}Z DEBUG connecting jdbc:postgresql://db-{host.split('.')[1]}"
                        f".local:5432/ignition user=ignition"
                        f" password={tokens[16 * i : 16 * i + 12]}\n")
            perf: dict[str, Any] = {"cpu_percent": c, "memory_mb": mm, "network_mb": nw}
            if ok:
                reasons: list[str] = []
                lessons = [txt.SUCCESS_LESSONS[r1 % 3]] if lesson_ok[i] else []
                log += f"{e_iso}Z INFO deployment completed in {d}s"
                status = "completed"
            else:
                cause_name = causes[ca]
                ctx = (host, strategy, dtype_name, resources, knobs[i].tolist(), r1,
                       cat.PREDECESSOR[e] or "development")
                reasons = [reasons_by_cause[cause_name](ctx)]
                if health[i]:
                    reasons.append(txt.health_reason(host, r2))
                lessons = [lessons_by_cause[cause_name]] if lesson_fail[i] else []
                log += f"{e_iso}Z ERROR {reasons[0]}"
                if rb:
                    if not rbok:
                        reasons.append(txt.rollback_reason(host, resources, r1))
                    perf["rollback_duration_s"] = int(rbd)
                    log += (f"\n{e_iso}Z WARN rollback {'succeeded' if rbok else 'failed'}"
                            f" after {int(rbd)}s")
                    status = "rolled_back"
                else:
                    status = "failed"
            append({
                "execution_id": eid,
                "execution_name": name,
                "deployment_type": dtype_name,
                "target_environment": envs[e],
                "source_environment": source_names[src],
                "gateway_host": host,
                "deployment_strategy": strategy,
                "resources_deployed": list(resources),
                "configuration_used": cfg,
                "status": status,
                "started_at": fromts(start_s + t0, utc),
                "completed_at": fromts(start_s + t0 + d, utc),
                "failure_reasons": reasons,
                "rollback_triggered": rb,
                "rollback_successful": rbok if rb else None,
                "user_id": user_id,
                "automation_triggered": auto,
                "execution_log": log,
                "performance_data": perf,
                "lessons_learned": lessons,
            })
        return records

    # ------------------------------------------------------------------ the oracle
    def _features(
        self,
        rows: Sequence[tuple[str, str, str, Iterable[str], Mapping[str, Any], datetime,
                             str | None, str]],
    ) -> mdl.Features:
        n = len(rows)
        env = np.empty(n, dtype=np.int64)
        gw = np.empty(n, dtype=np.int64)
        strat = np.empty(n, dtype=np.int64)
        dtype = np.empty(n, dtype=np.int64)
        mask = np.empty(n, dtype=np.int64)
        skipped = np.empty(n, dtype=bool)
        knobs = np.empty((n, len(cat.KNOBS)))
        t = np.empty(n)
        for i, (e, g, s, res, cfg, at, src, dt) in enumerate(rows):
            env[i] = mdl.lookup(cat.ENV_INDEX, e, "target_environment", cat.ENVIRONMENTS)
            gw[i] = cat.GATEWAY_INDEX.get(str(g).strip().lower(), -1)
            strat[i] = mdl.lookup(cat.STRATEGY_INDEX, s, "deployment_strategy", cat.STRATEGIES)
            dtype[i] = mdl.lookup(cat.DTYPE_INDEX, dt, "deployment_type", cat.DEPLOYMENT_TYPES)
            bits = 0
            resources = [res] if isinstance(res, str) else list(res)
            if not resources:
                raise ValueError("resources_deployed: must name at least one resource")
            for r_ in resources:
                bits |= 1 << mdl.lookup(
                    cat.RESOURCE_INDEX, r_, "resources_deployed", cat.RESOURCE_TYPES
                )
            mask[i] = bits
            if src is not None:
                src = cat.ENVIRONMENTS[
                    mdl.lookup(cat.ENV_INDEX, src, "source_environment", cat.ENVIRONMENTS)
                ]
            skipped[i] = env[i] != cat.DEV and src not in cat.VALID_SOURCES[env[i]]
            knobs[i] = mdl.knob_vector(cfg or {})
            if not isinstance(at, datetime) or at.tzinfo is None:
                raise ValueError(f"at: must be a timezone-aware datetime, got {at!r}")
            t[i] = at.timestamp()
        return mdl.Features(env, gw, strat, dtype, mask, skipped, knobs, t)

    def success_probability(
        self,
        target_environment: str,
        gateway_host: str,
        deployment_strategy: str,
        resources_deployed: Iterable[str],
        configuration_used: Mapping[str, Any],
        at: datetime,
        source_environment: str | None = None,
        deployment_type: str = "update",
    ) -> float:
        """True P(success) of any candidate in any context at time ``at``.

        Unknown gateways get no hidden offset; unknown knobs, volatile and secret keys are
        ignored; absent knobs take their defaults (``catalogue.KNOB_DEFAULTS``).
        """
        f = self._features([(target_environment, gateway_host, deployment_strategy,
                              resources_deployed, configuration_used, at, source_environment,
                              deployment_type)])
        return float(mdl.probability(mdl.logit_components(f, self._hidden))[0])

    def success_probabilities(self, records: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """The oracle for many records (seed keywords; ``started_at`` is the time), vectorized."""
        rows = []
        for rec in records:
            at = rec["started_at"]
            if isinstance(at, str):
                at = datetime.fromisoformat(at.replace("Z", "+00:00"))
            rows.append((rec["target_environment"], rec["gateway_host"],
                         rec["deployment_strategy"], rec["resources_deployed"],
                         rec.get("configuration_used") or {}, at,
                         rec.get("source_environment"), rec.get("deployment_type", "update")))
        if not rows:
            return np.empty(0)
        return mdl.probability(mdl.logit_components(self._features(rows), self._hidden))

    def template_probabilities(
        self,
        target_environment: str,
        gateway_host: str,
        resources_deployed: Iterable[str],
        at: datetime,
        source_environment: str | None = None,
        deployment_type: str = "update",
    ) -> np.ndarray:
        """True P(success) of every template (aligned with ``templates``) in one context."""
        resources = list(resources_deployed)
        rows = [(target_environment, gateway_host, t.strategy, resources, t.configuration, at,
                 source_environment, deployment_type) for t in cat.TEMPLATES]
        return mdl.probability(mdl.logit_components(self._features(rows), self._hidden))

    def best_pattern(
        self,
        target_environment: str,
        gateway_host: str,
        resources_deployed: Iterable[str],
        at: datetime,
        source_environment: str | None = None,
        deployment_type: str = "update",
    ) -> tuple[str, dict[str, Any], float]:
        """``(strategy, configuration, p)`` of the best catalogue template in this context."""
        p = self.template_probabilities(target_environment, gateway_host, resources_deployed, at,
                                        source_environment, deployment_type)
        best = int(np.argmax(p))
        t = cat.TEMPLATES[best]
        return t.strategy, t.configuration, float(p[best])
