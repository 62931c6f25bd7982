"""Driver-level inserts on SQLite (store/bulk.py) store exactly what SQLAlchemy would have stored."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.domain.events import HoldPlaced
from flashsale.domain.orders import Order, OrderStatus
from flashsale.store import bulk
from flashsale.store import repositories as repo
from flashsale.store.tables import EventRow, OrderRow
from tests.factories import T0, open_sale

CST = timezone(timedelta(hours=8))


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    platform = build(Settings(data_dir=tmp_path, database_url=None), clock=ManualClock(T0.timestamp()))
    yield platform
    platform.close()


def order(n: int, item_id: int, *, prefix: str = "") -> Order:
    at = datetime(2026, 11, 11, 0, 0, n % 60, 123_456 + n, tzinfo=CST)  # not UTC: converted on the way in
    return Order(
        id=f"{prefix}o{n}",
        user_id=f"{prefix}u{n}",
        item_id=item_id,
        qty=1 + n % 2,
        unit_price_cents=69_900,
        total_cents=69_900 * (1 + n % 2),
        status=OrderStatus.UNPAID,
        request_id=f"r{n}",
        created_at=at,
        expires_at=at + timedelta(minutes=15),
    )


def raw(platform: Platform, sql: str) -> list[tuple[object, ...]]:
    with platform.deps.sessions() as db:
        return [tuple(row) for row in db.execute(text(sql))]


def test_orders_are_stored_as_core_stores_them_and_duplicates_are_skipped(platform: Platform) -> None:
    item_id = open_sale(platform, quota=10, per_user_limit=1, payment_window_s=900)
    fast = [order(n, item_id) for n in range(bulk.CHUNK_ROWS + 7)]  # more than one chunk
    twins = [order(n, item_id, prefix="core-") for n in range(5)]  # the same values, stored by Core
    with platform.deps.sessions() as db:
        assert repo.insert_orders(db, fast) == {o.id for o in fast}
        db.execute(
            insert(OrderRow),
            [{c: getattr(o, c) for c in repo._ORDER_COLUMNS} | {"status": "UNPAID"} for o in twins],
        )
        # A clash on the id and one on (user, request id) are skipped; only the new order goes in.
        same_key = replace(order(9999, item_id), user_id="u3", request_id="r3")
        assert repo.insert_orders(db, [fast[0], same_key, order(2000, item_id)]) == {"o2000"}
        db.commit()
    columns = (
        "user_id, item_id, qty, unit_price_cents, total_cents, status, request_id, created_at, expires_at"
    )
    stored = {r[0]: r[1:] for r in raw(platform, f"SELECT id, {columns} FROM orders")}
    assert len(stored) == len(fast) + len(twins) + 1
    for n in range(5):
        mine, core = stored[f"o{n}"], stored[f"core-o{n}"]
        assert mine[1:] == core[1:] and core[0] == f"core-{mine[0]}"  # same text, whichever way it went in
    with platform.deps.read() as r:
        utc = replace(
            fast[3],
            created_at=fast[3].created_at.astimezone(UTC),
            expires_at=fast[3].expires_at.astimezone(UTC),
        )
        assert r.orders.get("o3") == utc  # read back through the ORM: the same order, in UTC


def test_outbox_events_are_stored_as_core_stores_them(platform: Platform) -> None:
    event = HoldPlaced(
        order_id="o1", item_id=7, user_id="u1", qty=2, at=1_700_000_000.25, expires_at=1.5, total_cents=3
    )
    with platform.deps.uow() as uow:
        uow.record(event)
        platform.deps.commit(uow)
    with platform.deps.sessions() as db:
        db.execute(
            insert(EventRow),
            [
                {
                    "order_id": "o2",
                    "kind": event.kind,
                    "payload": event.payload(),
                    "created_at": repo.from_epoch(event.at),
                }
            ],
        )
        db.commit()
    (fast, slow) = raw(platform, "SELECT kind, payload, created_at FROM order_events ORDER BY order_id")
    assert fast == slow
    assert fast[0] == "HoldPlaced"
    assert datetime.fromisoformat(str(fast[2])).replace(tzinfo=UTC).timestamp() == event.at
