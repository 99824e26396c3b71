"""One training run at a time: an advisory lock file held for the whole run.

``fcntl.flock`` is released by the kernel when the process dies, so a crashed run never leaves
a stale lock behind (a PID file would). POSIX only, like the nightly schedulers it serves.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploylearn.errors import DeploylearnError


class TrainingLockedError(DeploylearnError):
    """Another training run holds the lock; try again when it has finished."""


@contextmanager
def training_lock(path: Path) -> Iterator[Path]:
    """Hold ``path`` exclusively for the block, or raise ``TrainingLockedError`` at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(handle, 64, 0).decode(errors="replace").strip() or "unknown"
            raise TrainingLockedError(
                f"another training run (pid {holder}) holds {path}; try again later"
            ) from exc
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(handle, 0)
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)
