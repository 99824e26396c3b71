"""Where a training run came from, as MLflow tags, and readable metric names for its baselines.

A run must say which store it learned from (``Store.store_id``: serving refuses a champion
from another store), which deploylearn trained it and, when the code is a git checkout, which
commit (and whether it had uncommitted changes). The commit is the one holding the
``deploylearn`` package itself, not whatever repository the entry script sits in, which is
what MLflow's own ``mlflow.source.git.commit`` would record (so that tag is overridden).
"""

from __future__ import annotations

import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from deploylearn.features._columns import column_name
from deploylearn.tracking.champion import STORE_ID_TAG
from deploylearn.version import __version__

VERSION_TAG = "deploylearn.package_version"  # not .version: Registry.versions has one
GIT_COMMIT_TAG = "deploylearn.git_commit"
GIT_DIRTY_TAG = "deploylearn.git_dirty"
STORE_URL_TAG = "deploylearn.store_url"  # store URLs carry no password (stores redact them)
MLFLOW_GIT_COMMIT_TAG = "mlflow.source.git.commit"

# Baselines by display name (models.baselines.default_baselines) -> run metric prefix.
BASELINE_KEYS = {
    "global rate": "global_rate",
    "Beta posterior (pattern)": "beta_pattern",
    "Beta posterior (pattern x environment)": "beta_pattern_environment",
    "seed ranking (popularity, confidence 0.5/1.0)": "seed_ranking",
}
METRIC_KEYS = {"brier_score": "brier", "roc_auc": "auc", "log_loss": "log_loss", "ece": "ece"}


def run_tags(store_id: str | None, store_url: str) -> dict[str, str]:
    """Provenance tags of a training run (and of the versions it registers)."""
    tags = {VERSION_TAG: package_version(), STORE_URL_TAG: store_url}
    if store_id:
        tags[STORE_ID_TAG] = store_id
    commit = git_commit()
    if commit is not None:
        sha, dirty = commit
        tags |= {GIT_COMMIT_TAG: sha, MLFLOW_GIT_COMMIT_TAG: sha, GIT_DIRTY_TAG: str(dirty).lower()}
    return tags


def package_version() -> str:
    try:
        return version("deploylearn")
    except PackageNotFoundError:
        return __version__


def git_commit(folder: Path | None = None) -> tuple[str, bool] | None:
    """(HEAD commit, has uncommitted changes) of the git checkout that tracks the
    ``deploylearn`` package, or None (no git, an installed wheel, a timeout)."""
    here = folder or Path(__file__).resolve().parents[1]  # the deploylearn package
    git = shutil.which("git")
    if git is None:
        return None

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(
                [git, "-C", str(here), *args], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    # the package's own files must be tracked: a venv inside another repository is not ours
    if run("ls-files", "--error-unmatch", "__init__.py") is None:
        return None
    sha = run("rev-parse", "HEAD")
    if not sha:
        return None
    status = run("status", "--porcelain", "--untracked-files=no", "--", ".")
    return sha.strip(), bool(status and status.strip())


def baseline_metric_name(method: str, metric: str) -> str:
    """``baseline.<method>.<metric>`` with short names (``baseline.seed_ranking.brier``);
    a method not in ``BASELINE_KEYS`` gets its display name made safe."""
    key = BASELINE_KEYS.get(method) or column_name(method)
    return f"baseline.{key}.{METRIC_KEYS.get(metric, metric)}"
