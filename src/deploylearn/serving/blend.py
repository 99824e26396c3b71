"""The serving blend of DESIGN.md, now fitted per store: a Beta posterior whose prior is the
model's probability, used only where it helps.

For a pattern with time-decayed successes s and failures f in the requested environment and a
prior probability p (the champion's calibrated P(success | this run)), the posterior is
Beta(k·p + s, k·(1−p) + f). The model already sees point-in-time counts of the pattern, the
gateway and the context as features, so shrinking its answer toward raw counts again can only
help where the model under-uses them. Whether it does is a question for the store's own history:
``ign train`` backtests a grid of k (including k = ∞, no blend: the model's p is served as is)
and half-lives on the last forward fold of the training period (``choose_blend``), and logs
the choice (``blend.prior_strength``, ``blend.half_life_days``, ``evaluation/blend_tuning.csv``).
A finite k is kept only when its log loss beats no blend by more than twice the standard error
of the paired difference. There is no constant chosen on one synthetic world any more.

* ``success_probability`` is the posterior mean (p itself when k = ∞).
* ``credible_interval`` and ``confidence_score`` (the ``CONFIDENCE_QUANTILE`` quantile) describe
  uncertainty. With k = ∞ they come from Beta(m·p, m·(1−p)) with m = ``UNCERTAINTY_RUNS`` + the
  pattern's decayed runs in the environment: centred on p, narrower with evidence, wide for an
  untried configuration. That width is a stated convention, not a fitted quantity.
* Ranking (``rank_by``): by the mean, or risk-averse by the lower quantile; ``ign train``
  chooses the default by within-context AUC on the same fold (``choose_ranking``).

Without a champion, serving blends the hierarchical empirical rate with the pattern's counts
(``NO_MODEL``: k = 10 pseudo-runs, half-life 365 days), the Beta-posterior baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
from scipy.stats import beta

from deploylearn.models.metrics import EPS, within_group_auc

CONFIDENCE_QUANTILE = 0.10
INTERVAL = (0.05, 0.95)
MIN_EFFECT = 0.01  # a knob's effect on P(success) below this is not worth a sentence
NO_BLEND = math.inf
DEFAULT_PRIOR_STRENGTH = 10.0  # without a model: the empirical prior's weight
DEFAULT_HALF_LIFE_DAYS = 365.0
UNCERTAINTY_RUNS = 10.0  # the interval's pseudo-runs for the model's p when k = inf
MIN_CONTEXT_RUNS = 20
PRIOR_STRENGTH_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, NO_BLEND)
HALF_LIFE_GRID = (30.0, 90.0, 365.0, math.inf)
RANKINGS = ("mean", "lower_quantile")
MIN_RANKING_GAIN = 0.005  # context AUC the risk-averse rule must gain to become the default


@dataclass(frozen=True)
class BlendParams:
    """How serving turns the model's p and a pattern's counts into an answer."""

    prior_strength: float = NO_BLEND
    half_life_days: float = math.inf
    rank_by: str = "mean"

    @property
    def blends(self) -> bool:
        return math.isfinite(self.prior_strength)


NO_MODEL = BlendParams(DEFAULT_PRIOR_STRENGTH, DEFAULT_HALF_LIFE_DAYS, "lower_quantile")


@dataclass(frozen=True)
class Posterior:
    """Vectorized Beta posteriors, one per candidate."""

    alpha: np.ndarray
    beta: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return cast(np.ndarray, self.alpha / (self.alpha + self.beta))

    def quantile(self, q: float | Sequence[float]) -> np.ndarray:
        """Shape (len(q), candidates); a scalar ``q`` gives one row."""
        return np.asarray(beta.ppf(np.atleast_1d(q)[:, None], self.alpha, self.beta))


def posterior(
    prior: np.ndarray, successes: np.ndarray, failures: np.ndarray, prior_strength: float
) -> Posterior:
    """Beta(k·p + s, k·(1−p) + f), with p clipped away from 0 and 1 so it stays proper.

    k = inf (no blend): Beta(m·p, m·(1−p)), m = ``UNCERTAINTY_RUNS`` + s + f, whose mean is p.
    """
    p = np.clip(np.asarray(prior, dtype=np.float64), 1e-4, 1 - 1e-4)
    s, f = np.asarray(successes, float), np.asarray(failures, float)
    k = float(prior_strength)
    if not math.isfinite(k):
        m = UNCERTAINTY_RUNS + s + f
        return Posterior(m * p, m * (1 - p))
    return Posterior(k * p + s, k * (1 - p) + f)


def blended_mean(
    prior: np.ndarray, successes: np.ndarray, failures: np.ndarray, prior_strength: float
) -> np.ndarray:
    """The posterior mean alone (cheap: no quantiles)."""
    if not math.isfinite(prior_strength):
        return np.asarray(prior, dtype=np.float64)
    k = float(prior_strength)
    return cast(np.ndarray, (k * np.asarray(prior, float) + successes) / (k + successes + failures))


def decayed_counts_as_of(
    events: pd.DataFrame, queries: pd.DataFrame, half_life_days: float
) -> tuple[np.ndarray, np.ndarray]:
    """Point-in-time decayed (successes, failures) per query row.

    ``events``: ``key``, ``known`` (when the outcome became known), ``success`` (bool);
    ``queries``: ``key``, ``at``. Each query sees the events of its key known strictly before
    ``at``, weighted 2^(-(at - known) / half-life) (no decay for an infinite half-life): what
    the serving snapshot would fold for that key at that instant.
    """
    finite = math.isfinite(half_life_days) and half_life_days > 0
    ref = events["known"].max() if len(events) else pd.Timestamp(0, tz="UTC")

    def days(values: pd.Series) -> np.ndarray:
        return cast(np.ndarray, ((values - ref) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64))

    ev = events.sort_values("known", kind="stable").reset_index(drop=True)
    weight = np.exp2(days(ev["known"]) / half_life_days) if finite else np.ones(len(ev))
    ev = ev.assign(
        ws=np.where(ev["success"].to_numpy(bool), weight, 0.0),
        wf=np.where(ev["success"].to_numpy(bool), 0.0, weight),
    )
    ev[["ws", "wf"]] = ev.groupby("key", sort=False)[["ws", "wf"]].cumsum()
    q = queries.assign(_row=np.arange(len(queries))).sort_values("at", kind="stable")
    merged = pd.merge_asof(
        q,
        ev[["key", "known", "ws", "wf"]],
        left_on="at",
        right_on="known",
        by="key",
        allow_exact_matches=False,
    ).sort_values("_row")
    scale = np.exp2(-days(merged["at"]) / half_life_days) if finite else 1.0
    s = np.nan_to_num(merged["ws"].to_numpy(dtype=np.float64)) * scale
    f = np.nan_to_num(merged["wf"].to_numpy(dtype=np.float64)) * scale
    return s, f


def choose_blend(
    p: np.ndarray,
    y: np.ndarray,
    counts: dict[float, tuple[np.ndarray, np.ndarray]],
    prior_strengths: Sequence[float] = PRIOR_STRENGTH_GRID,
) -> tuple[BlendParams, pd.DataFrame]:
    """The (k, half-life) with the lowest log loss on held-out rows, if it beats no blend by
    more than twice the standard error of the paired difference; else no blend.

    ``counts`` maps a half-life to the rows' point-in-time decayed (successes, failures).
    """
    y = np.asarray(y, dtype=np.float64)

    def losses(q: np.ndarray) -> np.ndarray:
        q = np.clip(q, EPS, 1 - EPS)
        return cast(np.ndarray, -(y * np.log(q) + (1 - y) * np.log(1 - q)))

    base = losses(np.asarray(p, dtype=np.float64))
    rows = [{"prior_strength": NO_BLEND, "half_life_days": math.inf, **_scores(base, base, y, p)}]
    best = (0.0, BlendParams())
    for half_life, (s, f) in counts.items():
        for k in prior_strengths:
            if not math.isfinite(k):
                continue
            mean = blended_mean(p, s, f, k)
            rows.append(
                {
                    "prior_strength": k,
                    "half_life_days": half_life,
                    **_scores(losses(mean), base, y, mean),
                }
            )
            gain, se = rows[-1]["gain_vs_no_blend"], rows[-1]["gain_se"]
            if gain > 2 * se and gain > best[0]:
                best = (gain, BlendParams(k, half_life))
    return best[1], pd.DataFrame(rows)


def _scores(loss: np.ndarray, base: np.ndarray, y: np.ndarray, q: np.ndarray) -> dict[str, float]:
    diff = base - loss
    n = max(len(diff), 1)
    return {
        "log_loss": float(loss.mean()) if len(loss) else math.nan,
        "brier_score": float(np.mean((np.asarray(q) - y) ** 2)) if len(y) else math.nan,
        "gain_vs_no_blend": float(diff.mean()) if len(diff) else 0.0,
        "gain_se": float(diff.std(ddof=1) / math.sqrt(n)) if len(diff) > 1 else math.inf,
    }


def choose_ranking(
    y: np.ndarray,
    groups: Sequence[object],
    mean: np.ndarray,
    lower: np.ndarray,
) -> tuple[str, dict[str, float]]:
    """``mean`` unless ranking by the lower quantile orders outcomes within contexts better
    by at least ``MIN_RANKING_GAIN`` (within-context ROC AUC on held-out rows)."""
    by_mean = within_group_auc(y, mean, groups)
    by_lower = within_group_auc(y, lower, groups)
    scores = {"context_auc_mean": by_mean, "context_auc_lower_quantile": by_lower}
    if np.isfinite(by_lower) and np.isfinite(by_mean) and by_lower >= by_mean + MIN_RANKING_GAIN:
        return "lower_quantile", scores
    return "mean", scores


def empirical_prior(
    context: tuple[float, float], environment: tuple[float, float], overall: tuple[float, float]
) -> tuple[float, str]:
    """The hierarchical fallback: the context's rate if it has ``MIN_CONTEXT_RUNS`` outcomes,
    else the environment's, else the global one (0.5 with no outcome at all)."""
    for (s, f), name in ((context, "context"), (environment, "environment"), (overall, "global")):
        if s + f >= MIN_CONTEXT_RUNS or (name == "global" and s + f > 0):
            return s / (s + f), name
    return 0.5, "uninformative"


def empirical_prior_rates(
    context: tuple[np.ndarray, np.ndarray],
    environment: tuple[np.ndarray, np.ndarray],
    overall: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """``empirical_prior`` for many rows at once: (successes, failures) arrays per level."""
    (cs, cf), (es, ef), (gs, gf) = (
        (np.asarray(s, dtype=np.float64), np.asarray(f, dtype=np.float64))
        for s, f in (context, environment, overall)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.select(
            [cs + cf >= MIN_CONTEXT_RUNS, es + ef >= MIN_CONTEXT_RUNS, gs + gf > 0],
            [cs / (cs + cf), es / (es + ef), gs / (gs + gf)],
            default=0.5,
        )
