"""The five answers and the ingest report as typed models: the contracts that the Python API,
``--json`` and the HTTP API give. One module per answer; each model is the exact JSON shape the
facade returns (``model.model_dump(mode="json")``), so a field cannot appear, vanish or change
type without a model (and its JSON Schema) saying so."""

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    """Base of every answer model: unknown fields are errors, instances are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)
