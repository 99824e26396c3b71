"""Run the API under uvicorn, one process (the embedded store has one writer process)."""

from __future__ import annotations

import os

import uvicorn

from deploylearn.learner import DeploymentPatternLearner
from deploylearn.service.app import create_app
from deploylearn.service.events import GITHUB_SECRET_ENV
from deploylearn.service.limits import DEFAULT_MAX_BODY_BYTES


def run(
    learner: DeploymentPatternLearner,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    model_check: float = 30.0,
    log_level: str = "info",
) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM); requests in flight finish first. The
    GitHub webhook secret is read from ``DEPLOYLEARN_GITHUB_WEBHOOK_SECRET`` here, once."""
    secret = os.environ.get(GITHUB_SECRET_ENV) or None
    app = create_app(
        learner,
        max_body_bytes=max_body_bytes,
        github_webhook_secret=secret,
        model_check=model_check,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
