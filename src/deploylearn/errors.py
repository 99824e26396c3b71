"""Every error deploylearn raises, under one base class so callers can catch them all.

Errors that describe bad input also subclass ``ValueError`` (as scikit-learn's
``NotFittedError`` does) so code that already catches ``ValueError`` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass


class DeploylearnError(Exception):
    """Base class of all deploylearn errors."""


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one field of one record; ``line`` is set when it came from a file."""

    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field}: {self.message}"


class InvalidRecordError(DeploylearnError, ValueError):
    """A record failed validation; ``problems`` names each bad field (and line, for files)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems) or "invalid record")

    def at_line(self, line: int) -> InvalidRecordError:
        """The same problems, located at ``line`` of an input file."""
        return InvalidRecordError([FieldProblem(p.field, p.message, line) for p in self.problems])


class ConflictError(DeploylearnError, ValueError):
    """An ``execution_id`` was reused for a different execution (a retry must be identical)."""


class UnknownExecutionError(DeploylearnError, ValueError):
    """No execution with this id in the store (delete, amend)."""


class UnknownPatternError(DeploylearnError, ValueError):
    """No pattern with this id in the store."""


class StoreError(DeploylearnError):
    """The store failed to read or write."""


class StoreUnavailableError(StoreError):
    """The store could not be reached or opened (wrong URL, server down, file locked)."""


class InvalidStoreUrlError(DeploylearnError, ValueError):
    """``DEPLOYLEARN_STORE`` or ``--store`` is not a URL deploylearn understands."""


class WorkerError(DeploylearnError):
    """A worker process preparing an ingest died; what was written before it stays written."""


class InputFileError(DeploylearnError, ValueError):
    """An input file cannot be read at all (missing, unknown format, unreadable header)."""


class SecretKeyError(DeploylearnError, ValueError):
    """``DEPLOYLEARN_SECRET_KEY`` is missing where needed, or is not the key this store's
    secrets are encrypted under (writes and decryption are refused)."""


class OutputFileError(DeploylearnError, ValueError):
    """An output file cannot be written (exists without ``--force``, unknown extension,
    unwritable directory)."""


class InvalidServerUrlError(DeploylearnError, ValueError):
    """``--server`` (``DEPLOYLEARN_SERVER``) is not an http(s) URL of a service."""


class ServerUnavailableError(StoreUnavailableError):
    """The service at ``--server`` could not be reached, did not answer in time, or said its
    store is unavailable (503): for a caller, the same as a store that cannot be opened."""


class ServerRefusedError(DeploylearnError, ValueError):
    """The service refused the question: the token (401 missing, unknown or revoked; 403
    without the scope) or the input (4xx naming the field)."""


class ServerError(DeploylearnError):
    """The service failed (5xx), or answered with something that is not the answer asked for
    (another deploylearn version, or not a deploylearn service)."""
