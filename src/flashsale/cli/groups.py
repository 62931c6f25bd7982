"""`flashsale groups settle`: settle group buys now (a running server's expiry sweeper does it too)."""

from __future__ import annotations

import typer

from flashsale.bootstrap import build
from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.store.lease import LeaseTaken

app = typer.Typer(
    help="Group buys (团购 / 拼单): settle groups that filled or timed out.", no_args_is_help=True
)


@app.command()
def settle(
    batch: int = typer.Option(100, min=1, max=10_000, help="Groups settled at most in this run."),
) -> None:
    """Close filled groups, and fail those past their deadline: release every hold, refund every payment.

    Idempotent: a run killed half-way (a failed group half refunded) is finished by the next.
    """
    try:
        platform = build(Settings())
    except LeaseTaken as exc:
        refuse(f"{exc}: the running server's expiry job settles groups already", code=1)
    try:
        settled = platform.groups.settle_due(batch)
    finally:
        platform.close()
    typer.echo(f"{settled} groups settled")
