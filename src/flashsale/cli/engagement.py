"""`flashsale groups settle`, `flashsale referral settle`: settle now (the server's sweeper does too)."""

from __future__ import annotations

import typer

from flashsale.bootstrap import Platform, build
from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.store.lease import LeaseTaken

groups = typer.Typer(
    help="Group buys (团购 / 拼单): settle groups that filled or timed out.", no_args_is_help=True
)


@groups.command()
def settle(
    batch: int = typer.Option(100, min=1, max=10_000, help="Groups settled at most in this run."),
) -> None:
    """Close filled groups, and fail those past their deadline: release every hold, refund every payment.

    Idempotent: a run killed half-way (a failed group half refunded) is finished by the next.
    """
    platform = _platform()
    try:
        settled = platform.groups.settle_due(batch)
    finally:
        platform.close()
    typer.echo(f"{settled} groups settled")


referral = typer.Typer(help="Referral rewards: give them once first orders are past the refund window.")


@referral.command(name="settle")
def settle_referrals(
    batch: int = typer.Option(500, min=1, max=100_000, help="Bindings looked at per step in this run."),
) -> None:
    """Qualify invitees by their first paid order; reward both sides once it is past the settle period, or
    void the referral if it was refunded. Idempotent: safe to repeat, or to kill and run again."""
    platform = _platform()
    try:
        settled = platform.referrals.settle(batch)
    finally:
        platform.close()
    typer.echo(f"{settled} referrals settled")


def _platform() -> Platform:
    try:
        return build(Settings())
    except LeaseTaken as exc:
        refuse(f"{exc}: the running server's expiry job settles these already", code=1)
