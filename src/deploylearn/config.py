"""Settings read once from the environment and passed down (nothing reads it at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from deploylearn.store import default_store_url
from deploylearn.store.base import process_actor


@dataclass(frozen=True)
class Settings:
    """``DEPLOYLEARN_STORE``, ``DEPLOYLEARN_SECRET_KEY``, ``DEPLOYLEARN_ACTOR`` (for audit)
    and ``MLFLOW_TRACKING_URI`` (where serving finds the champion; None: the default
    ``tracking.paths.default_tracking_uri``)."""

    store_url: str
    secret_key: str | None = None
    actor: str = "unknown"
    tracking_uri: str | None = None

    @classmethod
    def from_env(cls, store_url: str | None = None) -> Settings:
        return cls(
            store_url=store_url or default_store_url(),
            secret_key=os.environ.get("DEPLOYLEARN_SECRET_KEY") or None,
            actor=process_actor(),
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or None,
        )
