"""The five answers and the ingest report as typed models: the contracts that the Python API,
``--json`` and the HTTP API give. One module per answer; each model is the exact JSON shape the
facade returns (``model.model_dump(mode="json")``), so a field cannot appear, vanish or change
type without a model (and its JSON Schema) saying so."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = ["Answer", "Interval", "JsonValue", "KnobValue", "omitted_when_none"]

# A configuration knob's value as a person writes it: a flag, a number or a level name.
KnobValue = bool | int | float | str
# A (low, high) credible or confidence interval; a JSON array of two numbers.
Interval = tuple[float, float]


class Answer(BaseModel):
    """Base of every answer model. Unknown fields are errors and instances are read-only, so
    a model is the whole contract. Not strict: a client validates an answer's JSON back into
    its model (``Recommendations.model_validate(json.loads(text))``), arrays and all."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_none(value: object) -> bool:
    return value is None


def omitted_when_none(description: str) -> Any:
    """A field whose key is absent from the JSON (rather than ``null``) when it has no value:
    the answers have always left such keys out, and clients test for the key."""
    return Field(default=None, exclude_if=_is_none, description=description)
