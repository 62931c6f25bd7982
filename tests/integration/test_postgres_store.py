"""The system of record on PostgreSQL: migrations, the order path and its concurrency, same as on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.domain.errors import FlashSaleError
from flashsale.domain.orders import OrderStatus
from flashsale.services.orders import Buy
from flashsale.store.lease import LeaseTaken
from flashsale.store.tables import OrderRow
from tests.factories import open_sale
from tests.integration.servers import fresh_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database per test, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def pg_platform(pg_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Platform]:
    settings = Settings(
        data_dir=tmp_path, database_url=pg_url, jwt_secret="j" * 32, admin_token="a", payment_secret="p"
    )
    plat = build(settings, clock=clock)
    yield plat
    plat.close()


def _stored_units(plat: Platform, item_id: int) -> dict[str, int]:
    with plat.deps.uow() as uow:
        rows = uow.db.execute(
            select(OrderRow.status, func.sum(OrderRow.qty))
            .where(OrderRow.item_id == item_id)
            .group_by(OrderRow.status)
        ).all()
    return {status: int(units) for status, units in rows}


def test_crowd_on_postgres_sells_exactly_the_quota_and_the_rows_match_the_ledger(
    pg_platform: Platform,
) -> None:
    item_id = open_sale(pg_platform, quota=40, per_user_limit=2, payment_window_s=60)

    def attempt(n: int) -> str:
        try:
            order = pg_platform.orders.buy(Buy(f"u{n % 150}", item_id, 1 + n % 2, f"r{n}")).order
        except FlashSaleError as exc:
            return exc.code.value
        if n % 3:
            pg_platform.orders.pay(order.id, order.user_id)
        return "ok"

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(400)))

    level = pg_platform.ledger.stock(item_id)
    stored = _stored_units(pg_platform, item_id)
    assert level.conserved and level.available == 0
    assert stored.get(OrderStatus.PAID.value, 0) == level.sold
    assert stored.get(OrderStatus.UNPAID.value, 0) == level.held
    assert "ok" in outcomes and "SOLD_OUT" in outcomes
    with pg_platform.deps.uow() as uow:
        per_user = uow.db.execute(
            select(OrderRow.user_id, func.sum(OrderRow.qty)).group_by(OrderRow.user_id)
        ).all()
    assert all(units <= 2 for _, units in per_user)


def test_restart_on_postgres_rebuilds_the_ledger_from_the_orders(
    pg_platform: Platform, clock: ManualClock
) -> None:
    item_id = open_sale(pg_platform, quota=5, per_user_limit=5, payment_window_s=60)
    paid = pg_platform.orders.buy(Buy("a", item_id, 2, "r1")).order
    pg_platform.orders.pay(paid.id, "a")
    pg_platform.orders.buy(Buy("b", item_id, 1, "r1"))
    settings = pg_platform.settings
    pg_platform.close()

    again = build(settings, clock=clock)
    try:
        level = again.ledger.stock(item_id)
        assert (level.sold, level.held, level.available) == (2, 1, 2)
        assert again.orders.buy(Buy("a", item_id, 2, "r1")).replayed
        clock.advance(60)
        assert again.orders.expire_due() == 1
        assert again.ledger.stock(item_id).available == 3
    finally:
        again.close()


def test_a_second_in_process_ledger_on_the_same_postgres_database_refuses_to_start(
    pg_platform: Platform, clock: ManualClock
) -> None:
    with pytest.raises(LeaseTaken, match="holds the ledger lease"):
        build(pg_platform.settings, clock=clock)
