"""The price book (services/pricebook.py): prices from memory, read again together once stale."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.services.pricebook import PriceBook
from tests.conftest import Sale


def test_stale_prices_are_read_again_together_in_one_query(
    platform: Platform, clock: ManualClock, sale: Sale
) -> None:
    # The buy path and the order writer price every order: asked once per item and interval, a
    # sale of a hundred items cost each of them fifty queries a second.
    # The platform's price book ages by real time: this one, built alike, by the test's clock.
    prices = PriceBook(platform.deps.reads or platform.deps.sessions, clock)
    prices.preload()  # as at start-up
    clock.advance(60)  # every entry is stale
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(platform.read_engine, "before_cursor_execute", note)
    try:
        phone, _ = prices.get(sale.phone_id)
        earbuds, _ = prices.get(sale.earbuds_id)
        again, _ = prices.get(sale.phone_id)
    finally:
        event.remove(platform.read_engine, "before_cursor_execute", note)
    assert (phone.id, earbuds.id, again.id) == (sale.phone_id, sale.earbuds_id, sale.phone_id)
    assert len(statements) == 1
