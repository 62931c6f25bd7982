"""The `flashsale` command: builds the Typer app from one module per command group."""

from __future__ import annotations

import typer

from flashsale.cli import (
    coupons,
    db,
    demo,
    draws,
    engagement,
    jobs,
    margin,
    messages,
    payments,
    plan,
    rehearse,
    report,
    serve,
    tokens,
)

app = typer.Typer(
    name="flashsale",
    help="Flash-sale platform: campaigns, timed sessions, an oversell-proof stock ledger, orders.",
    no_args_is_help=True,
    add_completion=False,
)
for commands in (demo.app, serve.app, tokens.app, jobs.app, report.app, margin.app, rehearse.app):
    app.add_typer(commands)
app.add_typer(db.app, name="db")
app.add_typer(payments.app, name="payments")
app.add_typer(draws.app, name="draws")
app.add_typer(coupons.app, name="coupons")
app.add_typer(plan.app, name="plan")
app.add_typer(messages.app, name="messages")
app.add_typer(engagement.groups, name="groups")
app.add_typer(engagement.referral, name="referral")
