"""Cancels in batches (`OrderService.cancel_many`, the `Cancels` batcher of HTTP and the demo):
each request is answered as `cancel` alone would answer it, and a batch racing pays and single
cancels over the same orders moves every order once, on every engine (tests/engines.py)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import Order, OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.services.orders import Buy, Cancel
from flashsale.store.tables import EventRow
from tests.conftest import T0
from tests.engines import drain_orders
from tests.factories import open_sale, release_together, stress_size

ORDERS = stress_size(120, 600)

pytestmark = pytest.mark.engines()


def _placed(platform: Platform, clock: ManualClock, count: int) -> tuple[int, list[Order]]:
    item_id = open_sale(platform, quota=count, per_user_limit=1, payment_window_s=15 * 60)
    clock.set(T0.timestamp() + 1)
    orders = [platform.orders.buy(Buy(f"u{n}", item_id, 1, f"k{n}")).order for n in range(count)]
    drain_orders(platform)
    return item_id, orders


def _answer(outcome: Order | Exception) -> OrderStatus | ErrorCode:
    if isinstance(outcome, FlashSaleError):
        return outcome.code
    assert isinstance(outcome, Order), outcome
    return outcome.status


def _cancelled_events(platform: Platform) -> Counter[str]:
    with platform.deps.uow() as uow:
        rows = uow.db.execute(select(EventRow.order_id).where(EventRow.kind == "OrderCancelled"))
        return Counter(order_id for (order_id,) in rows)


def test_cancel_many_answers_each_request_as_cancel_alone_would(
    platform: Platform, clock: ManualClock
) -> None:
    item_id, (fresh, twice, paid, cancelled, late) = _placed(platform, clock, 5)
    platform.orders.pay(paid.id, paid.user_id)
    platform.orders.cancel(cancelled.id, cancelled.user_id)
    batch = [
        Cancel(fresh.id, fresh.user_id),
        Cancel(twice.id, twice.user_id),
        Cancel(twice.id, twice.user_id),
        Cancel(paid.id, paid.user_id),
        Cancel(cancelled.id, cancelled.user_id),
        Cancel(fresh.id, "someone-else"),
        Cancel("no-such-order", fresh.user_id),
    ]
    answers = [_answer(a) for a in platform.orders.cancel_many(batch)]
    assert answers == [
        OrderStatus.CANCELLED,
        OrderStatus.CANCELLED,
        OrderStatus.CANCELLED,
        ErrorCode.INVALID_TRANSITION,
        OrderStatus.CANCELLED,
        ErrorCode.ORDER_NOT_FOUND,
        ErrorCode.ORDER_NOT_FOUND,
    ]
    clock.advance(15 * 60 + 1)  # `late` is past its window now
    (expired,) = platform.orders.cancel_many([Cancel(late.id, late.user_id)])
    # The same answers one by one, afterwards (a cancelled order answers itself unchanged).
    for request, answer in zip(
        [*batch, Cancel(late.id, late.user_id)], [*answers, _answer(expired)], strict=True
    ):
        try:
            alone: OrderStatus | ErrorCode = platform.orders.cancel(request.order_id, request.user_id).status
        except FlashSaleError as exc:
            alone = exc.code
        assert alone == answer, request
    assert _cancelled_events(platform) == {fresh.id: 1, twice.id: 1, cancelled.id: 1}
    level = platform.deps.ledger.stock(item_id)
    assert level.conserved and (level.sold, level.held) == (1, 0)


def test_batched_cancels_racing_pays_and_single_cancels_move_each_order_once(
    platform: Platform, clock: ManualClock
) -> None:
    item_id, orders = _placed(platform, clock, ORDERS)
    batches = [orders[n : n + 16] for n in range(0, len(orders), 16)]
    service = platform.orders

    def cancel_batch(batch: list[Order]) -> list[OrderStatus | ErrorCode]:
        return [_answer(a) for a in service.cancel_many([Cancel(o.id, o.user_id) for o in batch])]

    def cancel_one(order: Order) -> list[OrderStatus | ErrorCode]:
        return cancel_batch([order])

    def pay_one(order: Order) -> list[OrderStatus | ErrorCode]:
        try:
            return [service.pay(order.id, order.user_id).status]
        except FlashSaleError as exc:
            return [exc.code]

    calls = (
        [lambda b=b: cancel_batch(b) for b in batches]
        + [lambda o=o: cancel_one(o) for o in orders[::2]]
        + [lambda o=o: pay_one(o) for o in orders[::3]]
    )
    answers = Counter(a for outcome in release_together(calls) for a in outcome)
    expected = {
        OrderStatus.CANCELLED,
        OrderStatus.PAID,
        ErrorCode.INVALID_TRANSITION,
        ErrorCode.PAYMENT_IN_PROGRESS,
    }
    assert set(answers) <= expected, answers  # a pay that lost to a cancel: INVALID_TRANSITION
    stored = [service.get(o.id) for o in orders]
    statuses = Counter(o.status for o in stored)
    assert set(statuses) <= {OrderStatus.CANCELLED, OrderStatus.PAID}, statuses
    events = _cancelled_events(platform)
    assert set(events.values()) == {1} and set(events) == {
        o.id for o in stored if o.status is OrderStatus.CANCELLED
    }
    level = platform.deps.ledger.stock(item_id)
    assert level.conserved, level
    assert (level.sold, level.held) == (statuses[OrderStatus.PAID], 0)
    assert audit_payments(platform.deps.sessions).clean  # a charge that lost to a cancel went back
