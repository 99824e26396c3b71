"""Rank deployment patterns for a context by a Beta posterior that counts every outcome.

Without a trained model the prior mean is a hierarchical empirical rate (the context's rate if
it has ``MIN_CONTEXT_RUNS`` outcomes, else the environment's, else the global one) with prior
strength ``prior_strength``; a pattern with s successes and f failures in the context gets
Beta(k·p0 + s, k·(1−p0) + f). Patterns are ranked by the posterior's lower ``RANK_QUANTILE``
quantile, so a pattern must earn its place with evidence, not just one lucky run. The learning
issue replaces p0 with the champion model's calibrated probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from scipy.stats import beta

from deploylearn.records import DeploymentPattern

RANK_QUANTILE = 0.10
INTERVAL = (0.05, 0.95)
MIN_CONTEXT_RUNS = 20


@dataclass(frozen=True)
class Recommendation:
    pattern_id: str
    pattern_name: str
    deployment_strategy: str
    configuration_template: dict[str, Any]
    success_probability: float
    confidence_score: float
    credible_interval: tuple[float, float]
    success_rate: float | None
    success_count: int
    failure_count: int
    last_used: datetime | None
    prior_mean: float
    prior_source: str
    applicability_reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["credible_interval"] = list(self.credible_interval)
        data["last_used"] = self.last_used.isoformat() if self.last_used else None
        return data


def _rate(outcomes: pd.Series) -> tuple[float, int]:
    known = outcomes.dropna()
    return (float((known == "success").mean()) if len(known) else float("nan")), len(known)


def rank_patterns(
    frame: pd.DataFrame,
    patterns: Sequence[DeploymentPattern],
    *,
    target_environment: str,
    resource_types: Sequence[str],
    deployment_strategy: str | None = None,
    limit: int = 5,
    prior_strength: float = 10.0,
) -> list[Recommendation]:
    """Patterns used in ``target_environment`` on runs deploying all ``resource_types``."""
    wanted = set(resource_types)
    in_env = frame[frame["target_environment"] == target_environment]
    in_context = in_env[in_env["resources_deployed"].map(lambda r: wanted.issubset(r))]
    prior, source = _prior(frame, in_env, in_context, target_environment)
    if deployment_strategy:
        in_context = in_context[in_context["deployment_strategy"] == deployment_strategy]
    by_id = {p.pattern_id: p for p in patterns}
    answers: list[Recommendation] = []
    for pattern_id, runs in in_context.groupby("pattern_id", sort=False):
        pattern = by_id.get(str(pattern_id))
        if pattern is None:
            continue
        outcomes = runs["outcome"]
        s = int((outcomes == "success").sum())
        f = int((outcomes == "failure").sum())
        a, b = prior_strength * prior + s, prior_strength * (1 - prior) + f
        mean = a / (a + b)
        low, high = (float(x) for x in beta.ppf(INTERVAL, a, b))
        reasons = [
            f"used {s + f} times in {target_environment} with {', '.join(sorted(wanted))}",
            f"{s} successes and {f} failures counted (failures count against a pattern)",
            f"prior {prior:.2f} from the {source} success rate",
        ]
        if deployment_strategy:
            reasons.append(f"matches the requested strategy {deployment_strategy}")
        answers.append(
            Recommendation(
                pattern_id=pattern.pattern_id,
                pattern_name=pattern.pattern_name,
                deployment_strategy=pattern.deployment_strategy,
                configuration_template=pattern.configuration_template,
                success_probability=round(mean, 4),
                confidence_score=round(float(beta.ppf(RANK_QUANTILE, a, b)), 4),
                credible_interval=(round(low, 4), round(high, 4)),
                success_rate=round(s / (s + f), 4) if s + f else None,
                success_count=s,
                failure_count=f,
                last_used=runs["started_at"].max().to_pydatetime(),
                prior_mean=round(prior, 4),
                prior_source=source,
                applicability_reasons=reasons,
            )
        )
    answers.sort(key=lambda r: (-r.confidence_score, -r.success_probability, r.pattern_id))
    return answers[:limit]


def _prior(
    frame: pd.DataFrame, in_env: pd.DataFrame, in_context: pd.DataFrame, environment: str
) -> tuple[float, str]:
    for subset, name in ((in_context, "context"), (in_env, f"{environment} environment")):
        rate, n = _rate(subset["outcome"])
        if n >= MIN_CONTEXT_RUNS:
            return rate, name
    rate, n = _rate(frame["outcome"])
    return (rate, "global") if n else (0.5, "uninformative")
