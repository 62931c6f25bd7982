"""The whole order path under a crowd, on SQLite: buy, pay, cancel, expire and buy again.

After every phase the stored orders must agree with the ledger (PAID units == sold, live UNPAID
units == held), units are conserved, and no buyer holds or owns more than the limit.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from sqlalchemy import select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import HoldState
from flashsale.domain.orders import Order, OrderStatus
from flashsale.services.orders import Buy, Purchase
from flashsale.store.tables import EventRow, OrderRow, PaymentRow
from tests.factories import Request, crowd, open_sale, release_together, single_unit_buyers, stress_size
from tests.integration.ledger_store_checks import assert_store_matches_ledger

pytestmark = pytest.mark.stress

QUOTA, LIMIT = 150, 2
WINDOW_S = 15 * 60
BUYERS = stress_size(1000, 5000)
RACE_ROUNDS = stress_size(10, 100)
REFUSALS = {ErrorCode.SOLD_OUT, ErrorCode.INSUFFICIENT_STOCK, ErrorCode.LIMIT_EXCEEDED}

Answer = Purchase | ErrorCode


def buy_together(platform: Platform, item_id: int, clicks: Sequence[Request]) -> list[Answer]:
    """Send every click through OrderService.buy from its own thread, all released at once."""

    def click(req: Request) -> Answer:
        try:
            return platform.orders.buy(Buy(req.user_id, item_id, req.qty, req.request_id))
        except FlashSaleError as exc:
            return exc.code

    return release_together([lambda req=req: click(req) for req in clicks])


def new_orders(clicks: Sequence[Request], answers: Sequence[Answer]) -> list[Purchase]:
    """Check each answer is an order, a replay of the same order, or a fair refusal; return new orders."""
    fresh = [a for a in answers if isinstance(a, Purchase) and not a.replayed]
    by_key = {(p.order.user_id, p.order.request_id): p.order.id for p in fresh}
    assert len(by_key) == len(fresh), "one request id made two orders"
    for req, answer in zip(clicks, answers, strict=True):
        if isinstance(answer, ErrorCode):
            assert answer in REFUSALS, answer
            continue
        assert (answer.order.user_id, answer.order.qty) == (req.user_id, req.qty)
        assert by_key[(req.user_id, req.request_id)] == answer.order.id
    return fresh


def test_a_crowd_buys_pays_cancels_expires_and_buys_again_with_store_and_ledger_in_step(
    platform: Platform, clock: ManualClock
) -> None:
    item_id = open_sale(platform, quota=QUOTA, per_user_limit=LIMIT, payment_window_s=WINDOW_S)
    rng = random.Random(7)
    first = crowd(rng, buyers=BUYERS, limit=LIMIT, prefix="a")
    assert single_unit_buyers(first) >= QUOTA  # so the quota must sell out

    orders = [p.order for p in new_orders(first, buy_together(platform, item_id, first))]

    assert sum(o.qty for o in orders) == QUOTA
    assert assert_store_matches_ledger(platform, item_id, limit=LIMIT).available == 0

    # Half pay and a quarter cancel, all at once; the other quarter forget about it.
    to_pay, to_cancel, forgotten = orders[::2], orders[1::4], orders[3::4]
    with ThreadPoolExecutor(16) as pool:
        paid = list(pool.map(lambda o: platform.orders.pay(o.id, o.user_id), to_pay))
        cancelled = list(pool.map(lambda o: platform.orders.cancel(o.id, o.user_id), to_cancel))
    assert {o.status for o in paid} == {OrderStatus.PAID}
    assert {o.status for o in cancelled} == {OrderStatus.CANCELLED}
    level = assert_store_matches_ledger(platform, item_id, limit=LIMIT)
    assert level.available == sum(o.qty for o in to_cancel)

    clock.advance(WINDOW_S)
    assert platform.orders.expire_due() == len(forgotten)
    level = assert_store_matches_ledger(platform, item_id, limit=LIMIT)
    assert (level.held, level.sold) == (0, sum(o.qty for o in paid))

    # A second crowd, plus every first-wave buyer trying once more: the limit still counts what they paid.
    second = crowd(rng, buyers=BUYERS, limit=LIMIT, prefix="b")
    second += [Request(o.user_id, 1, "again") for o in orders]
    assert single_unit_buyers(second) >= level.available
    again = new_orders(second, buy_together(platform, item_id, second))

    level = assert_store_matches_ledger(platform, item_id, limit=LIMIT)
    assert level.available == 0 and level.held == sum(p.order.qty for p in again)
    with platform.deps.uow() as uow:
        stored = uow.db.scalars(select(OrderRow.id).where(OrderRow.item_id == item_id)).all()
    assert sorted(stored) == sorted(o.id for o in [*orders, *(p.order for p in again)])


def pay_each(platform: Platform, orders: Sequence[Order]) -> int:
    """Pay the orders one after another; one whose hold expired first is refused with ORDER_EXPIRED."""
    paid = 0
    for order in orders:
        try:
            platform.orders.pay(order.id, order.user_id)
            paid += 1
        except FlashSaleError as exc:
            assert exc.code is ErrorCode.ORDER_EXPIRED, exc
    return paid


def tick_and_expire(platform: Platform, clock: ManualClock, *, steps: int) -> int:
    """Move the clock 10 ms at a time, writing expiries down after each tick, like the sweeper."""
    written = 0
    for _ in range(steps):
        clock.advance(0.01)
        written += platform.orders.expire_due()
    return written


def assert_each_order_ended_paid_or_expired(platform: Platform, order_ids: Sequence[str]) -> None:
    """Check every order is PAID (one charge, one OrderPaid) or EXPIRED, as its hold says.

    An expired order may have been charged by a payment that lost the race: that charge must have
    been refunded, so no money is kept for an order that did not sell.
    """
    with platform.deps.uow() as uow:
        status = {row.id: row.status for row in uow.db.execute(select(OrderRow.id, OrderRow.status))}
        kinds: dict[str, list[str]] = defaultdict(list)
        for order_id, kind in uow.db.execute(select(EventRow.order_id, EventRow.kind)):
            kinds[order_id].append(kind)
        charges = Counter(uow.db.scalars(select(PaymentRow.order_id).where(PaymentRow.kind == "charge")))
        refunds = Counter(uow.db.scalars(select(PaymentRow.order_id).where(PaymentRow.kind == "refund")))
    for order_id in order_ids:
        hold = platform.ledger.get_hold(order_id)
        assert hold is not None
        if status[order_id] == OrderStatus.PAID:
            assert hold.state is HoldState.SOLD and charges[order_id] == 1 and refunds[order_id] == 0
            assert sorted(kinds[order_id]) == ["HoldPlaced", "OrderPaid"]
        else:
            assert status[order_id] == OrderStatus.EXPIRED, status[order_id]
            assert hold.state is HoldState.EXPIRED and charges[order_id] == refunds[order_id] <= 1
            assert sorted(kinds[order_id]) == ["HoldPlaced", "OrderExpired"]


def test_a_payment_racing_the_expiry_of_its_hold_ends_paid_or_expired_never_both(
    platform: Platform, clock: ManualClock
) -> None:
    """Holds a hair before their deadline; pay() races clock ticks + expire_due(): each ends one way."""
    item_id = open_sale(platform, quota=RACE_ROUNDS * 20, per_user_limit=1, payment_window_s=60)
    placed: list[Order] = []
    for round_no in range(RACE_ROUNDS):
        orders = []
        for n in range(20):  # deadlines 10 ms apart, so the race cuts through the batch
            orders.append(platform.orders.buy(Buy(f"r{round_no}-u{n}", item_id, 1, "k")).order)
            clock.advance(0.01)
        clock.set(orders[0].expires_at.timestamp() - 0.05)

        release_together(
            [partial(pay_each, platform, orders), partial(tick_and_expire, platform, clock, steps=30)]
        )
        clock.advance(1)
        platform.orders.expire_due()
        placed += orders

    assert_each_order_ended_paid_or_expired(platform, [o.id for o in placed])
    level = assert_store_matches_ledger(platform, item_id, limit=1)
    assert level.held == 0
