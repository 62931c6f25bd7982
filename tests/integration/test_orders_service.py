"""OrderService.buy when a double-click's replay overtakes the original request on its way to the store."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event, func, select

from flashsale.bootstrap import Platform
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold, HoldState
from flashsale.domain.orders import Order, OrderStatus
from flashsale.services.orders import Buy, Purchase
from flashsale.store.tables import EventRow, OrderRow
from tests.conftest import Sale
from tests.engines import IN_PROCESS

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py
# The Redis engine answers a purchase before its order row exists (the order writer stores it
# behind, tests/integration/test_order_writer.py): no purchase of it writes, stalls or commits.
write_through = pytest.mark.engines(*IN_PROCESS, reason="the purchase itself writes the order row")


@write_through
def test_a_replay_that_records_the_order_first_does_not_cost_the_original_its_hold(
    platform: Platform, sale: Sale
) -> None:
    """The original click reserves, then stalls before writing its order; the second click of the
    double-click (same key) is answered as a replay and writes the order itself. When the original
    resumes and finds the row there, the hold it reserved is that very order: it must stay held.
    """
    cmd = Buy(user_id="ann", item_id=sale.earbuds_id, qty=2, request_id="double-click")
    reserved, replay_done = threading.Event(), threading.Event()
    results: list[Purchase] = []

    priced = platform.orders.priced

    def stall_the_original(hold: Hold) -> Order:
        # The original prices its order right after the ledger said yes, before it takes the store.
        if threading.current_thread() is original and not reserved.is_set():
            reserved.set()
            assert replay_done.wait(10)
        return priced(hold)

    original = threading.Thread(target=lambda: results.append(platform.orders.buy(cmd)))
    platform.orders.priced = stall_the_original  # type: ignore[method-assign]
    try:
        original.start()
        assert reserved.wait(10)
        replay = platform.orders.buy(cmd)
        replay_done.set()
        original.join(10)
    finally:
        del platform.orders.priced

    assert replay.replayed and [r.order.id for r in results] == [replay.order.id]
    hold = platform.ledger.get_hold(replay.order.id)
    assert hold is not None and hold.state is HoldState.HELD
    assert platform.ledger.stock(sale.earbuds_id).held == 2
    assert platform.orders.get(replay.order.id).status is OrderStatus.UNPAID
    with platform.deps.uow() as uow:
        assert uow.db.scalar(select(func.count()).select_from(OrderRow)) == 1
        placed = uow.db.scalar(
            select(func.count()).select_from(EventRow).where(EventRow.kind == "HoldPlaced")
        )
        assert placed == 1


def test_a_sequential_double_click_gets_the_same_order_once(platform: Platform, sale: Sale) -> None:
    cmd = Buy(user_id="ann", item_id=sale.phone_id, qty=1, request_id="k")

    first = platform.orders.buy(cmd)
    again = platform.orders.buy(cmd)

    assert not first.replayed and again.replayed and again.order == first.order
    assert platform.ledger.stock(sale.phone_id).held == 1


@write_through
def test_a_batch_of_purchases_is_written_in_one_transaction(
    platform: Platform, sale: Sale, clock: Any
) -> None:
    """Group commit: every fresh order of a `buy_many` batch is committed together, once."""
    clock.advance(1)
    commits: list[int] = []

    def count(_conn: Any) -> None:
        commits.append(1)

    event.listen(platform.engine, "commit", count)
    try:
        cmds = [Buy(f"g{n}", sale.earbuds_id, 1, "k") for n in range(15)] + [
            Buy("g0", sale.earbuds_id, 1, "k"),  # a replay inside the same batch
            Buy("g1", sale.earbuds_id, 5, "other"),  # over the limit: refused
        ]
        outcomes = platform.orders.buy_many(cmds)
    finally:
        event.remove(platform.engine, "commit", count)
    fresh = [o for o in outcomes if isinstance(o, Purchase) and not o.replayed]
    assert len(fresh) == 15 and len(commits) == 1
    assert isinstance(outcomes[15], Purchase) and outcomes[15].replayed
    first = outcomes[0]
    assert isinstance(first, Purchase) and outcomes[15].order.id == first.order.id
    assert isinstance(outcomes[16], FlashSaleError) and outcomes[16].code is ErrorCode.LIMIT_EXCEEDED
    with platform.deps.uow() as uow:
        assert uow.db.scalar(select(func.count()).select_from(OrderRow)) == 15


@write_through
def test_a_batch_whose_transaction_fails_releases_every_hold(
    platform: Platform, sale: Sale, clock: Any
) -> None:
    clock.advance(1)

    def refuse(*_: Any) -> None:
        raise RuntimeError("disk full")

    event.listen(platform.engine, "commit", refuse)
    try:
        outcomes = platform.orders.buy_many([Buy(f"f{n}", sale.earbuds_id, 1, "k") for n in range(5)])
    finally:
        event.remove(platform.engine, "commit", refuse)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    level = platform.ledger.stock(sale.earbuds_id)
    assert (level.available, level.held) == (level.quota, 0)  # no unit kept by an unwritten order
