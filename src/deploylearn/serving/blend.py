"""The serving blend of DESIGN.md: a Beta posterior whose prior is the model's probability.

For a pattern with time-decayed successes s and failures f in the requested environment and a
prior probability p (the champion model's calibrated P(success | pattern, context), or without
a model the hierarchical empirical rate), the posterior is Beta(k·p + s, k·(1−p) + f).

* ``confidence_score`` is the posterior's lower ``CONFIDENCE_QUANTILE`` quantile: the success
  probability we are 90 % sure the pattern reaches. **Answers are ranked by it** (ties by the
  mean), so a pattern must earn its place with evidence, and an untried one needs a model that
  is sure of it.
* ``success_probability`` is the posterior mean, the best estimate of the true probability.
* ``credible_interval`` is the central ``INTERVAL`` of the posterior.

k (prior strength, in pseudo-runs) and the decay half-life are read from the champion's MLflow
run params, which ``ign train`` logs from the defaults below. The defaults and the ranking rule
were chosen by ``benchmarks/serving_backtest.py --grid`` on a tuning world (seed 1, 50,000
executions): ranking by the 10 % quantile gave a mean top-1 regret of 0.0111 against 0.0144 by
the mean; k in 10–30 and half-lives of 365 days or more were within 0.0002 of each other,
shorter half-lives worse (180 d: 0.0122). See docs/serving.md for the figures on other seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

CONFIDENCE_QUANTILE = 0.10
INTERVAL = (0.05, 0.95)
DEFAULT_PRIOR_STRENGTH = 10.0
DEFAULT_HALF_LIFE_DAYS = 365.0
MIN_CONTEXT_RUNS = 20


@dataclass(frozen=True)
class BlendParams:
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS


@dataclass(frozen=True)
class Posterior:
    """Vectorized Beta posteriors, one per candidate."""

    alpha: np.ndarray
    beta: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)

    def quantile(self, q: float | Sequence[float]) -> np.ndarray:
        """Shape (len(q), candidates); a scalar ``q`` gives one row."""
        return np.asarray(beta.ppf(np.atleast_1d(q)[:, None], self.alpha, self.beta))


def posterior(
    prior: np.ndarray, successes: np.ndarray, failures: np.ndarray, prior_strength: float
) -> Posterior:
    """Beta(k·p + s, k·(1−p) + f), with p clipped away from 0 and 1 so it stays proper."""
    p = np.clip(np.asarray(prior, dtype=np.float64), 1e-4, 1 - 1e-4)
    k = float(prior_strength)
    return Posterior(
        k * p + np.asarray(successes, float), k * (1 - p) + np.asarray(failures, float)
    )


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


def wilson_lower_bound(successes: np.ndarray, runs: np.ndarray, z: float = 1.96) -> np.ndarray:
    """The Wilson score interval's lower end (0 with no runs): a frequentist ranking baseline."""
    n = np.asarray(runs, dtype=np.float64)
    s = np.asarray(successes, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, s / n, 0.0)
        centre = p + z * z / (2 * n)
        spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low = (centre - spread) / (1 + z * z / n)
    return np.where(n > 0, low, 0.0)
