"""The champion serving the store, as ``/v1/model`` and the dashboard's model page give it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from deploylearn.learner import DeploymentPatternLearner


class ModelStatus(BaseModel):
    """The champion serving this store (null fields: none, or refused for this store)."""

    provenance: str = Field(description="verified, unverified, refused or none")
    version: str | None
    run_id: str | None
    trained_until: str | None
    blend: dict[str, Any] | None
    warning: str | None


def model_status(learner: DeploymentPatternLearner) -> ModelStatus:
    """From the serving state (builds it on first use)."""
    advisor = learner.advisor()
    models, provenance = advisor.models, advisor.provenance
    return ModelStatus(
        provenance=provenance.status if provenance else "none",
        version=models.version if models else None,
        run_id=models.run_id if models else None,
        trained_until=models.trained_until if models else None,
        blend=advisor.meta().blend.model_dump() if models else None,
        warning=provenance.warning if provenance else None,
    )
