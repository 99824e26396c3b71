"""Backtest of the serving layer against the synthetic world's oracle.

Two questions, answered on a time-ordered holdout (the model is trained on everything before
the cut, and each holdout day is served from a snapshot taken at the start of that day, so no
answer sees its own day's outcomes):

* **Recommendation regret.** For sampled holdout contexts (environment, gateway, resources,
  source environment, deployment type, time), every method picks one pattern among the same
  candidates (``Advisor`` tiers); regret = true P(success) of the best candidate minus that of
  the pick, from ``SyntheticWorld.success_probabilities``. Methods: ``deploylearn`` (the blend,
  as served), ``seed ranking`` (most successful matching pattern, the original system), and
  ``Wilson bound`` (the pattern with the highest Wilson 95 % lower bound of its success rate
  in the environment), side by side.
* **Predict as a gate.** Each holdout execution is scored as a planned deployment through
  ``Advisor.predict``; gating the riskiest 10 % and 20 % catches some share of the real
  failures, next to what gating by the true probabilities would catch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from deploylearn.domain.records import DeploymentPattern, parse_planned
from deploylearn.models.success import select_success_params
from deploylearn.pipeline import steps
from deploylearn.serving.advisor import Advisor
from deploylearn.serving.blend import BlendParams, posterior
from deploylearn.serving.models import ServingModels
from deploylearn.serving.stats import wilson_lower_bounds

METHODS = ("deploylearn", "seed ranking", "Wilson bound")


@dataclass(frozen=True)
class ServingBacktestSettings:
    holdout_fraction: float = 0.2
    contexts: int = 1500
    predictions: int = 4000
    gate_shares: tuple[float, ...] = (0.10, 0.20)
    blend: BlendParams = field(default_factory=BlendParams)
    success_params: dict[str, Any] = field(default_factory=dict)
    tune: bool = False  # choose parameters and feature sets (the ranking twin's too) as ign train
    embedding_dimension: int = 32
    seed: int = 0
    threads: int | None = None
    # blend variants scored on the same candidates, to choose k, half-life and ranking
    grid_prior_strengths: tuple[float, ...] = ()
    grid_half_lives: tuple[float, ...] = ()
    grid_ranks: tuple[str, ...] = ("mean", "q10")


@dataclass
class ServingBacktest:
    regret: pd.DataFrame  # one row per method
    picks: pd.DataFrame  # one row per context and method
    catch: pd.DataFrame  # one row per gate share
    settings: dict[str, Any]


def train_serving_models(
    history: steps.History, cut: pd.Timestamp, settings: ServingBacktestSettings
) -> ServingModels:
    """The success model as ``ign train`` would fit it on the rows before ``cut``."""
    tf = steps.build_features(
        history,
        embeddings="numpy",
        embedding_dimension=settings.embedding_dimension,
        random_seed=settings.seed,
        graph_until=cut,
    )
    train, _ = steps.split(tf, cut)
    params = dict(settings.success_params)
    if settings.tune and not params:
        params, _ = select_success_params(
            train.X, train.y, random_state=settings.seed, base={"n_threads": settings.threads}
        )
    model = steps.fit_success(train, params, random_state=settings.seed, n_threads=settings.threads)
    model.set_params(n_threads=None)
    return ServingModels(
        success=model,
        feature_names=tf.feature_names,
        version="backtest",
        run_id=None,
        blend=settings.blend,
        node_embeddings=tf.node_embeddings,
        trained_until=cut.isoformat(),
    )


def run_serving_backtest(
    history: steps.History,
    records: pd.DataFrame,
    world: Any,
    settings: ServingBacktestSettings,
    *,
    models: ServingModels | None = None,
    progress: Callable[[str], None] | None = None,
) -> ServingBacktest:
    """``records``: the generated records (seed keywords, one row each, with execution_id)."""
    say = progress or (lambda _: None)
    cut = steps.holdout_start(history, settings.holdout_fraction)
    if models is None:
        say("training the success model on the rows before the cut")
        models = train_serving_models(history, cut, settings)
    rng = np.random.default_rng(settings.seed)
    holdout = records[pd.to_datetime(records["started_at"], utc=True) >= cut]
    contexts = holdout.iloc[np.sort(rng.choice(len(holdout), settings.contexts, replace=False))]
    planned = holdout.iloc[
        np.sort(rng.choice(len(holdout), min(settings.predictions, len(holdout)), replace=False))
    ]
    picks: list[dict[str, Any]] = []
    scored: list[pd.DataFrame] = []
    for day, advisor, day_contexts, day_planned in _daily_advisors(
        history, contexts, planned, models
    ):
        say(f"serving {day:%Y-%m-%d}")
        tables = {h: advisor.snapshot.decayed_table(h) for h in settings.grid_half_lives}
        picks.extend(_picks(advisor, day_contexts, world, history.patterns, settings, tables))
        if len(day_planned):
            scored.append(_predictions(advisor, day_planned))
    pick_frame = pd.DataFrame(picks)
    regret = (
        pick_frame.groupby("method", sort=False)
        .agg(
            contexts=("regret", "size"),
            mean_regret=("regret", "mean"),
            p90_regret=("regret", lambda r: float(np.quantile(r, 0.9))),
            share_best=("regret", lambda r: float((r <= 1e-9).mean())),
            mean_true_p_pick=("true_p_pick", "mean"),
            mean_true_p_best=("true_p_best", "mean"),
        )
        .reset_index()
        .sort_values("mean_regret", kind="stable")
        .reset_index(drop=True)
    )
    predictions = pd.concat(scored, ignore_index=True)
    truth = world.success_probabilities(predictions["record"].tolist())
    catch = gate_catch_rates(
        predictions["success_probability"].to_numpy(),
        truth,
        predictions["failed"].to_numpy(),
        settings.gate_shares,
    )
    return ServingBacktest(
        regret=regret,
        picks=pick_frame,
        catch=catch,
        settings={
            "holdout_start": cut.isoformat(),
            "contexts": settings.contexts,
            "predictions": len(predictions),
            "prior_strength": settings.blend.prior_strength,
            "half_life_days": settings.blend.half_life_days,
        },
    )


def _daily_advisors(
    history: steps.History,
    contexts: pd.DataFrame,
    planned: pd.DataFrame,
    models: ServingModels,
) -> Iterator[tuple[pd.Timestamp, Advisor, pd.DataFrame, pd.DataFrame]]:
    """One advisor per holdout day, built from the history before that day started."""
    context_day = pd.to_datetime(contexts["started_at"], utc=True).dt.floor("D")
    planned_day = pd.to_datetime(planned["started_at"], utc=True).dt.floor("D")
    for day in sorted(set(context_day) | set(planned_day)):
        before = history.frame[history.frame["started_at"] < day]
        advisor = Advisor.build(before, history.patterns, models=models, at=day)
        yield day, advisor, contexts[context_day == day], planned[planned_day == day]


def _picks(
    advisor: Advisor,
    contexts: pd.DataFrame,
    world: Any,
    patterns: list[DeploymentPattern],
    settings: ServingBacktestSettings,
    tables: dict[float, dict[tuple[str, str], tuple[float, float]]],
) -> list[dict[str, Any]]:
    by_id = {p.pattern_id: p for p in patterns}
    out: list[dict[str, Any]] = []
    for row in contexts.itertuples(index=False):
        env, resources = row.target_environment, sorted(row.resources_deployed)
        source = _text(row.source_environment)
        answer = advisor.recommend(
            env,
            resources,
            gateway_host=row.gateway_host,
            limit=1_000,
            source_environment=source,
            deployment_type=row.deployment_type,
            explain=False,  # the ranking does not depend on the explanations
        )
        ranked = answer.recommendations
        if len(ranked) < 2:
            continue  # no choice to make
        ids = [r.pattern_id for r in ranked]
        candidates = [
            {
                "target_environment": env,
                "gateway_host": row.gateway_host,
                "deployment_strategy": by_id[p].deployment_strategy,
                "resources_deployed": resources,
                "configuration_used": by_id[p].configuration_template,
                "started_at": row.started_at,
                "source_environment": source,
                "deployment_type": row.deployment_type,
            }
            for p in ids
        ]
        true_p = world.success_probabilities(candidates)
        stats = [advisor.snapshot.key("pattern_environment", p, env) for p in ids]
        seed_score = np.array([advisor.snapshot.key("pattern", p).successes for p in ids])
        wilson = wilson_lower_bounds(
            np.array([s.successes for s in stats]), np.array([s.runs for s in stats])
        )
        choices = {
            "deploylearn": 0,  # the served ranking's first answer
            "seed ranking": int(np.argmax(seed_score)),
            "Wilson bound": int(np.argmax(wilson)),
        }
        model_p = np.array([r.model_probability for r in ranked])
        for h, table in tables.items():
            counts = np.array([table.get((p, env), (0.0, 0.0)) for p in ids]).reshape(-1, 2)
            for k in settings.grid_prior_strengths:
                post = posterior(model_p, counts[:, 0], counts[:, 1], k)
                for rank in settings.grid_ranks:
                    score = post.mean if rank == "mean" else post.quantile(0.10)[0]
                    choices[f"blend k={k:g} h={h:g} {rank}"] = int(np.argmax(score))
        best = float(true_p.max())
        for method, index in choices.items():
            out.append(
                {
                    "method": method,
                    "started_at": row.started_at,
                    "target_environment": env,
                    "candidates": len(ids),
                    "pick": ids[index],
                    "true_p_pick": float(true_p[index]),
                    "true_p_best": best,
                    "regret": best - float(true_p[index]),
                }
            )
    return out


def _text(value: Any) -> str | None:
    """A DataFrame of records turns a missing source environment into NaN; undo that."""
    return value if isinstance(value, str) else None


def _predictions(advisor: Advisor, planned: pd.DataFrame) -> pd.DataFrame:
    records = [
        {**r, "source_environment": _text(r["source_environment"])}
        for r in planned.to_dict(orient="records")
    ]
    items = [
        parse_planned(
            {
                "target_environment": r["target_environment"],
                "gateway_host": r["gateway_host"],
                "deployment_strategy": r["deployment_strategy"],
                "resources_deployed": r["resources_deployed"],
                "configuration_used": r["configuration_used"],
                "source_environment": r["source_environment"],
                "deployment_type": r["deployment_type"],
                "automation_triggered": r["automation_triggered"],
                "started_at": r["started_at"],
            }
        )
        for r in records
    ]
    answer = advisor.predict(items)
    return pd.DataFrame(
        {
            "success_probability": [p.success_probability for p in answer.predictions],
            "failed": [
                not (r["status"] == "completed" and not r["rollback_triggered"]) for r in records
            ],
            "record": records,
        }
    )


def gate_catch_rates(
    predicted: np.ndarray, truth: np.ndarray, failed: np.ndarray, shares: tuple[float, ...]
) -> pd.DataFrame:
    """Share of all failures among the riskiest ``share`` of deployments, by the predicted and
    by the true probabilities (ties broken by order, so both gate exactly as many runs)."""
    rows = []
    total = max(int(failed.sum()), 1)
    for share in shares:
        k = round(share * len(predicted))
        by_model = np.argsort(predicted, kind="stable")[:k]
        by_truth = np.argsort(truth, kind="stable")[:k]
        rows.append(
            {
                "gated_share": share,
                "gated": k,
                "failures": int(failed.sum()),
                "caught_by_model": float(failed[by_model].sum() / total),
                "caught_by_true_p": float(failed[by_truth].sum() / total),
                "caught_at_random": share,
            }
        )
    return pd.DataFrame(rows)
