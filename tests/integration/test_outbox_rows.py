"""The outbox rows a unit of work writes (`order_events`): on every engine, each event as it was recorded."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.services.orders import Buy
from flashsale.store.tables import EventRow
from tests.conftest import T0, Sale
from tests.engines import POSTGRES, POSTGRES_REDIS, SQLITE, drain_orders

pytestmark = pytest.mark.engines(SQLITE, POSTGRES, POSTGRES_REDIS)


def test_a_batch_of_orders_writes_each_event_with_its_payload(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    # PostgreSQL gets a batch's events as one statement of arrays (JSON payloads among them).
    clock.set(T0.timestamp() + 1)
    answers = platform.orders.buy_many([Buy(f"u{n}", sale.earbuds_id, 1, f"k{n}") for n in range(3)])
    orders = [a.order for a in answers if not isinstance(a, Exception)]
    assert len(orders) == 3
    drain_orders(platform)
    placed = select(EventRow.order_id, EventRow.created_at, EventRow.payload).where(
        EventRow.kind == "HoldPlaced"
    )
    with platform.deps.read() as r:
        rows = {order_id: (created_at, payload) for order_id, created_at, payload in r.db.execute(placed)}
    for order in orders:
        created_at, payload = rows[order.id]
        assert created_at == order.created_at
        assert payload == {
            "order_id": order.id,
            "item_id": sale.earbuds_id,
            "user_id": order.user_id,
            "qty": 1,
            "at": order.created_at.timestamp(),
            "expires_at": order.expires_at.timestamp(),
            "total_cents": order.total_cents,
        }
