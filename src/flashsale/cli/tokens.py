"""`flashsale token`: bearer tokens for trying the API by hand."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from flashsale.auth import mint_shopper_token
from flashsale.config import Settings

app = typer.Typer()


@app.command()
def token(
    user_id: Annotated[str | None, typer.Argument(help="Shopper id the token speaks for.")] = None,
    ttl: Annotated[
        int | None, typer.Option(min=1, help="Lifetime in seconds [default: FLASHSALE_TOKEN_TTL_S].")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Print the operator token instead.")] = False,
) -> None:
    """Print a shopper token for USER_ID, or the operator token with --admin."""
    settings = Settings().with_secrets()  # the secrets a server on the same data dir uses
    if admin:
        typer.echo(settings.admin_token)
        return
    if user_id is None:
        raise typer.BadParameter("give a USER_ID, or --admin", param_hint="USER_ID")
    assert settings.jwt_secret is not None
    try:
        typer.echo(mint_shopper_token(settings.jwt_secret, user_id, ttl or settings.token_ttl_s, time.time()))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="USER_ID") from exc
