"""The expiry sweeper follows the platform clock (here a ManualClock) for what is due, not the wall clock."""

from __future__ import annotations

import time

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.orders import OrderStatus
from flashsale.jobs.expiry import ExpirySweeper
from flashsale.services.orders import Buy
from flashsale.store.tables import OrderRow
from tests.conftest import Sale

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py

WINDOW_S = 15 * 60  # the sale's payment window


def hold_one(platform: Platform, sale: Sale, key: str = "k1") -> str:
    return platform.orders.buy(Buy(user_id="ann", item_id=sale.earbuds_id, qty=1, request_id=key)).order.id


def test_the_next_pass_is_timed_on_the_platform_clock(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    sweeper = ExpirySweeper(platform.orders, platform.ledger, clock, max_sleep_s=30.0)
    assert sweeper.delay() == 30.0  # nothing held
    hold_one(platform, sale)
    assert sweeper.delay() == 30.0  # due in 15 platform minutes: the longest sleep
    clock.advance(WINDOW_S - 0.25)
    assert sweeper.delay() == pytest.approx(0.25)
    clock.advance(1.0)
    assert sweeper.delay() == 0.0


def test_a_running_sweeper_writes_the_expiry_once_the_platform_clock_passes_the_deadline(
    platform: Platform, sale: Sale, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conftest clock stands weeks before today: timed on the wall clock, the hold would look overdue
    and the sweeper would spin; timed on the platform clock, it sleeps until the clock is moved."""
    order_id = hold_one(platform, sale)
    passes = 0
    expire_due = platform.orders.expire_due

    def counted(batch: int = 1000) -> int:
        nonlocal passes
        passes += 1
        return expire_due(batch)

    monkeypatch.setattr(platform.orders, "expire_due", counted)
    sweeper = ExpirySweeper(platform.orders, platform.ledger, clock, max_sleep_s=0.05)
    sweeper.start()
    try:
        time.sleep(0.5)
        assert platform.orders.get(order_id).status is OrderStatus.UNPAID
        assert passes <= 15  # about one pass per max_sleep_s, not a busy loop
        clock.advance(WINDOW_S)
        deadline = time.monotonic() + 5
        while sweeper.expired < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sweeper.stop()
    assert sweeper.expired == 1
    with platform.deps.uow() as uow:
        row = uow.db.get(OrderRow, order_id)
        assert row is not None and row.status == OrderStatus.EXPIRED.value
