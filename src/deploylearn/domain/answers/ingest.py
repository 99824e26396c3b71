"""``ign deploy ingest``: what one ingest of a file did."""

from pydantic import Field

from deploylearn.domain.answers import Answer


class IngestProblem(Answer):
    """Why one record was rejected (one record can have several)."""

    line: int | None = Field(description="Line in the file (for JSON arrays: the item, from 1)")
    field: str = Field(description="The field at fault")
    message: str


class IngestSummary(Answer):
    """The counts of an ingest: every record read is accepted, a duplicate or rejected."""

    source: str = Field(description="The file read, or <stdin>")
    read: int = Field(description="Records read: accepted + duplicates + rejected")
    accepted: int = Field(description="Newly written executions")
    duplicates: int = Field(description="Already stored with the same content: skipped")
    rejected: int = Field(description="Invalid, or a conflicting execution_id: not written")
    errors: list[IngestProblem] = Field(description="The first problems found (at most 1,000)")
