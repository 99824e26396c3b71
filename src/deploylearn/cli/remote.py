"""``--server URL`` and ``--token`` of the ``ign deploy`` questions: ask a running ``ign serve``
instead of opening a store (``deploylearn.client``).

Which one answers is decided once per command, and never silently: ``--server`` with
``--store`` on the command line is refused, as is ``--token`` or ``--no-model`` without a
server to send it to. A value from the environment gives way to an option given on the command
line (``DEPLOYLEARN_STORE`` set for ``ign train`` does not stop ``--server``); both only from
the environment is refused, since neither can be said to be meant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from deploylearn.cli import common
from deploylearn.errors import InputFileError

if TYPE_CHECKING:
    from deploylearn.client import ServiceClient
    from deploylearn.learner import DeploymentPatternLearner

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="DEPLOYLEARN_SERVER",
        help="Ask the ign serve at this http(s) URL (e.g. http://127.0.0.1:8765) instead of "
        "opening a store; the answer is the same. Not with --store.",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="DEPLOYLEARN_TOKEN",
        help="Bearer token (read scope) for --server; prefer the environment variable, "
        "since a command line is visible to other users.",
        show_default=False,
    ),
]


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` came from the command line (not the environment or default).
    By the source's name: typer vendors click, so its ``ParameterSource`` is not click's."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def server_for(
    ctx: typer.Context,
    server: str | None,
    store: str | None,
    token: str | None,
    *,
    no_model: bool = False,
) -> str | None:
    """The service URL to ask, or None to answer from the store; contradictory options are an
    ``InputFileError`` naming them (exit 2)."""
    store_given = _given(ctx, "store") or common.store_on_command_line
    server_given = _given(ctx, "server")
    if server and store:
        if server_given and store_given:
            raise InputFileError(
                "--server and --store: give one (the service answers from its own store)"
            )
        if not server_given and not store_given:
            raise InputFileError(
                "DEPLOYLEARN_SERVER and DEPLOYLEARN_STORE are both set: give --server or "
                "--store to say which answers, or unset one"
            )
        server = server if server_given else None
    if not server:
        if token and _given(ctx, "token"):
            raise InputFileError("--token: only with --server (DEPLOYLEARN_SERVER)")
        return None
    if no_model:
        raise InputFileError(
            "--no-model: not with --server (the service decides whether its champion serves)"
        )
    from deploylearn.client import server_url

    return server_url(server, "--server")


def asker(
    store: str | None, server: str | None, token: str | None, *, use_model: bool = True
) -> DeploymentPatternLearner | ServiceClient:
    """What answers: a client of the service at ``server``, else a learner over ``store``."""
    if server is not None:
        from deploylearn.client import ServiceClient

        return ServiceClient(server, token)
    from deploylearn.learner import DeploymentPatternLearner

    return DeploymentPatternLearner.open(store, use_model=use_model, create=False)
