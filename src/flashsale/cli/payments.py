"""`flashsale payments audit`: does every order's money net to what the order says?"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import sessionmaker

from flashsale.config import Settings
from flashsale.services.audit import AuditReport, audit_payments
from flashsale.store import db as store_db

app = typer.Typer(help="Money: audit the payments journal against the orders.", no_args_is_help=True)

SHOWN = 50  # discrepancies listed in the table; --json lists them all


@app.command()
def audit(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check per order and in total that charges − refunds == what the order's status says.

    A PAID order must net to its total, every other order to zero; a refund decided but not yet
    sent counts as a discrepancy. Reads the database only (safe while the sale runs); exits 1 and
    names the orders when anything does not net.
    """
    url = Settings().resolved_database_url()
    store_db.upgrade(url)  # a fresh data dir audits an empty, migrated database
    engine = store_db.make_engine(url)
    reads = store_db.make_read_engine(url, engine)
    try:
        report = audit_payments(sessionmaker(reads))
    finally:
        reads.dispose()
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(_as_dict(report), indent=2))
    else:
        _print(report)
    if not report.clean:
        raise typer.Exit(1)


def _as_dict(report: AuditReport) -> dict[str, object]:
    return {
        "clean": report.clean,
        "orders_checked": report.orders_checked,
        "charged_cents": report.charged_cents,
        "refunded_cents": report.refunded_cents,
        "net_cents": report.net_cents,
        "expected_cents": report.expected_cents,
        "discrepancies": [
            {
                "order_id": m.order_id,
                "status": m.status.value,
                "total_cents": m.total_cents,
                "net_cents": m.net_cents,
                "expected_cents": m.expected_cents,
                "problem": m.problem(),
            }
            for m in report.discrepancies
        ],
    }


def _print(report: AuditReport) -> None:
    console = Console()
    console.print(
        f"{report.orders_checked} orders with money checked: charged {report.charged_cents}, "
        f"refunded {report.refunded_cents}, net {report.net_cents}, expected {report.expected_cents} (cents)"
    )
    if report.clean:
        console.print("[green]clean:[/] every order nets to what its status says")
        return
    table = Table(title=f"{len(report.discrepancies)} orders do not net")
    for column in ("order", "status", "total", "net", "expected", "problem"):
        table.add_column(column)
    for m in report.discrepancies[:SHOWN]:
        table.add_row(
            m.order_id,
            m.status.value,
            str(m.total_cents),
            str(m.net_cents),
            str(m.expected_cents),
            m.problem() or "",
        )
    console.print(table)
    if len(report.discrepancies) > SHOWN:
        console.print(f"… and {len(report.discrepancies) - SHOWN} more (--json lists all)")
    if not report.discrepancies:
        console.print("[red]the orders each net, but the totals do not[/]")
