"""`flashsale margin CAMPAIGN`: each item's worst-case price after every stackable coupon, and its margin."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import sessionmaker

from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.domain.errors import FlashSaleError
from flashsale.services.margin import ItemMargin, campaign_margins
from flashsale.store import db as store_db

app = typer.Typer()


@app.command()
def margin(
    campaign: Annotated[int, typer.Argument(help="The campaign's id.", min=1)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the items as JSON.")] = False,
) -> None:
    """Check the campaign's prices before it opens (活动价格计算): exits 1 when an item loses money.

    Per flash item: the lowest unit price its flash price and every coupon that may stack on it can
    reach (the price engine, with other goods filling a cart up to each 满减 threshold), minus the
    product's cost, shipping cost and the platform's fee. Set costs with PUT
    /admin/products/{id}/costs. Reads the database only.
    """
    url = Settings().resolved_database_url()
    store_db.upgrade(url)
    engine = store_db.make_engine(url)
    reads = store_db.make_read_engine(url, engine)
    try:
        items = campaign_margins(sessionmaker(reads), campaign)
    except FlashSaleError as exc:
        refuse(exc.message, code=1)
    finally:
        reads.dispose()
        engine.dispose()
    if as_json:
        typer.echo(json.dumps([_as_dict(i) for i in items], indent=2, ensure_ascii=False))
    else:
        _print(items)
    if any(i.margin.loss for i in items):
        raise typer.Exit(1)


def _as_dict(item: ItemMargin) -> dict[str, object]:
    m = item.margin
    return {
        "item_id": m.item.item_id,
        "session_id": item.session_id,
        "sku": m.item.sku,
        "product": item.product_name,
        "flash_price_cents": m.item.flash_price_cents,
        "worst_price_cents": m.worst_price_cents,
        "offers": list(m.offers),
        "cost_cents": m.item.costs.cost_cents,
        "shipping_cost_cents": m.item.costs.shipping_cost_cents,
        "platform_fee_cents": m.fee_cents,
        "margin_cents": m.margin_cents,
        "loss": m.loss,
    }


def _yuan(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def _print(items: list[ItemMargin]) -> None:
    table = Table("item", "sku", "flash", "worst", "coupons", "cost", "ship", "fee", "margin", "")
    for i in items:
        m = i.margin
        table.add_row(
            str(m.item.item_id),
            m.item.sku,
            _yuan(m.item.flash_price_cents),
            _yuan(m.worst_price_cents),
            ", ".join(m.offers) or "-",
            _yuan(m.item.costs.cost_cents),
            _yuan(m.item.costs.shipping_cost_cents),
            _yuan(m.fee_cents),
            _yuan(m.margin_cents),
            "[red]LOSS[/]" if m.loss else "",
        )
    Console().print(table)
    losses = sum(i.margin.loss for i in items)
    Console().print(f"{len(items)} items, {losses} lose money at their worst-case price")
