"""`flashsale expire`: background jobs run once, by hand."""

from __future__ import annotations

import typer

from flashsale.bootstrap import build
from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.store.lease import LeaseTaken

app = typer.Typer()


@app.command()
def expire() -> None:
    """Expire every unpaid hold past its payment window; print how many."""
    try:
        platform = build(Settings())
    except LeaseTaken as exc:
        refuse(f"{exc}: the running server's own expiry job sweeps already", code=1)
    try:
        expired = 0
        while swept := platform.orders.expire_due():
            expired += swept
    finally:
        platform.close()
    typer.echo(f"{expired} holds expired")
