"""Where MLflow keeps runs by default (no mlflow import: the CLI and the lock need it cheaply)."""

from __future__ import annotations

import os
from pathlib import Path


def tracking_root(start: Path | None = None) -> Path:
    """The enclosing repository (``.git`` or ``pyproject.toml``), else the working directory."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists() or (folder / "pyproject.toml").is_file():
            return folder
    return here


def mlruns_dir(root: Path | None = None) -> Path:
    """``<root>/mlruns``: the SQLite tracking database, artifacts and the training lock."""
    return (root or tracking_root()) / "mlruns"


def default_tracking_uri(root: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<root>/mlruns/mlflow.db``.

    MLflow 3.x refuses a plain file store unless told otherwise, and SQLite also gives the
    model registry (aliases) without a server.
    """
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    return f"sqlite:///{mlruns_dir(root) / 'mlflow.db'}"
