"""``ign serve`` (the HTTP API) and ``ign token create|list|revoke`` (its bearer tokens).

Registered in ``cli/app.py``. The service binds to 127.0.0.1 unless ``--host`` says otherwise;
every route but health and readiness needs a token (``ign token create``).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from deploylearn.cli.common import JsonOption, StoreOption, err, out, print_json, show

token_app = typer.Typer(help="Bearer tokens for ign serve (stored hashed).", no_args_is_help=True)
ScopeOption = Annotated[
    list[str],
    typer.Option(
        "--scope", "-s", help="read (the answers) or write (recording; implies read); repeatable."
    ),
]


def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8765,
    max_body_mb: Annotated[
        float, typer.Option(min=0.01, help="Largest request body accepted (413 above).")
    ] = 8.0,
    model_check_seconds: Annotated[
        float,
        typer.Option(
            min=0.0, help="How often to look for a newly promoted champion (0: never)."
        ),
    ] = 30.0,
    store: StoreOption = None,
) -> None:
    """Serve the API over HTTP: record executions and deployment events (CDEvents, GitHub
    deployment_status webhooks signed with DEPLOYLEARN_GITHUB_WEBHOOK_SECRET),
    recommendations, predict (the CI gate), adaptations, rollback scenarios, analytics,
    patterns, model status.

    OpenAPI at /v1/openapi.json, docs at /v1/docs, the web dashboard at /ui (a read token
    signs in). Stops on Ctrl-C.
    """
    from deploylearn.cli import common
    from deploylearn.learner import DeploymentPatternLearner
    from deploylearn.service.server import run

    with DeploymentPatternLearner.open(store, create=True) as learner:
        learner.store.init_schema()
        if not any(t.active for t in learner.api_tokens()):
            err.print("warning: no active token yet: every answer needs one (ign token create)")
        out.print(
            f"serving http://{host}:{port}/v1 (docs at /v1/docs, dashboard at /ui); Ctrl-C stops"
        )
        run(
            learner,
            host=host,
            port=port,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            model_check=model_check_seconds,
            log_level="info" if common.verbose_output else "warning",
        )


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who uses it (audited as token:NAME).")],
    scope: ScopeOption,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token and print it, the only time it is shown (the store keeps its hash)."""
    from deploylearn.domain.tokens import SCOPES
    from deploylearn.learner import DeploymentPatternLearner

    bad = [s for s in scope if s not in SCOPES]
    if bad or not scope:
        raise typer.BadParameter(f"--scope: {bad or 'none'} not among {', '.join(SCOPES)}")
    with DeploymentPatternLearner.open(store, create=True) as learner:
        learner.store.init_schema()
        token = learner.create_api_token(name, scope)  # type: ignore[arg-type]  # checked
    if as_json:
        print_json({"name": name, "scopes": sorted(set(scope)), "token": token})
        return
    out.print(token, highlight=False, markup=False)  # alone on stdout, for scripts


@token_app.command("list")
def token_list(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Every token: name, scopes, when and by whom created, whether revoked (never the token)."""
    from deploylearn.learner import DeploymentPatternLearner

    with DeploymentPatternLearner.open(store, create=False) as learner:
        tokens = learner.api_tokens()
    if as_json:
        print_json([t.model_dump(mode="json", exclude={"token_sha256"}) for t in tokens])
        return
    table = Table(title="API tokens")
    for column in ("name", "scopes", "created", "by", "revoked"):
        table.add_column(column)
    for t in tokens:
        table.add_row(
            t.name,
            ", ".join(t.scopes),
            t.created_at.isoformat(timespec="seconds"),
            t.created_by,
            t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else "",
        )
    show(table)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    store: StoreOption = None,
) -> None:
    """Revoke a token (a running service refuses it within 2 s)."""
    from deploylearn.errors import InputFileError
    from deploylearn.learner import DeploymentPatternLearner

    with DeploymentPatternLearner.open(store, create=False) as learner:
        if not learner.revoke_api_token(name):
            raise InputFileError(f"name: no active token {name!r}")
    out.print(f"token {name!r} revoked")
