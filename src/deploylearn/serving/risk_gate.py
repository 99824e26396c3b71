"""The CI risk gate over a ``predict`` answer (``ign deploy predict --fail-below P``).

A gate that passes what nobody could judge is worse than none: besides a probability below
``P``, it fails when a planned deployment names an environment, strategy, gateway or resource
type the store has never seen (``serving.unknowns``), and when the registered champion was
refused because it learned from another store. ``allow_unknown`` gates on the probability
alone. Pure: the answer in, the verdict out.
"""

from __future__ import annotations

from deploylearn.domain.answers.prediction import PredictionAnswer, RiskGate
from deploylearn.domain.answers.served import UnknownValues
from deploylearn.serving.unknowns import GATING_FIELDS


def risk_gate(
    answer: PredictionAnswer, fail_below: float, *, allow_unknown: bool = False
) -> RiskGate:
    """``passed``, how many planned deployments are ``below`` or ``unknown``, and ``reasons``
    (one readable line per cause of failure)."""
    reasons: list[str] = []
    below = unknown = 0
    for i, p in enumerate(answer.predictions, 1):
        if p.success_probability < fail_below:
            below += 1
            reasons.append(f"#{i}: P(success) {p.success_probability:.3f} < {fail_below:g}")
        gating = {k: v for k, v in (p.unknown or {}).items() if k in GATING_FIELDS}
        if gating:
            unknown += 1
            if not allow_unknown:
                guesses = p.did_you_mean or {}
                reasons.append(f"#{i}: unknown context " + ", ".join(_shown(gating, guesses)))
    provenance = answer.model_provenance
    refused = provenance is not None and provenance.status == "refused"
    if refused and not allow_unknown:
        reasons.append("the registered champion learned from another store and was not applied")
    return RiskGate(
        fail_below=fail_below,
        allow_unknown=allow_unknown,
        passed=not reasons,
        below=below,
        unknown=unknown,
        model_refused=refused,
        reasons=reasons,
    )


def _shown(values: UnknownValues, guesses: dict[str, str]) -> list[str]:
    out = []
    for name in GATING_FIELDS:
        if name not in values:
            continue
        items = values[name] if isinstance(values[name], list) else [values[name]]
        for item in items:
            hint = f" (did you mean {guesses[item]!r}?)" if item in guesses else ""
            out.append(f"{name}={item!r}{hint}")
    return out
