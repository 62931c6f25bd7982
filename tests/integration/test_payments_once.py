"""One charge per order: concurrent pays, duplicate callbacks and reused provider references.

Each order is paid by several threads at the same instant (a double-click, a retrying client);
afterwards the journal must hold exactly one charge per order and net to what the order says,
on every engine (tests/engines.py).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import NamedTuple

import pytest
from sqlalchemy import select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import Order, OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.services.orders import Buy
from flashsale.services.payments import SandboxProvider
from flashsale.services.settlement import Paid, PayRequest
from flashsale.store.tables import PaymentRow
from tests.conftest import T0
from tests.engines import drain_orders
from tests.factories import open_sale, release_together, stress_size
from tests.integration.money_support import keep_stray_charge

ORDERS = stress_size(200, 1000)
PAYERS = 3

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py


def _unpaid_orders(platform: Platform, clock: ManualClock, count: int) -> list[Order]:
    item_id = open_sale(platform, quota=count, per_user_limit=1, payment_window_s=15 * 60)
    clock.set(T0.timestamp() + 1)
    orders = [platform.orders.buy(Buy(f"u{n}", item_id, 1, f"k{n}")).order for n in range(count)]
    drain_orders(platform)
    return orders


class Entry(NamedTuple):
    order_id: str
    kind: str
    status: str
    provider_ref: str
    amount_cents: int


def _journal(platform: Platform) -> dict[str, list[Entry]]:
    columns = (PaymentRow.order_id, PaymentRow.kind, PaymentRow.status, PaymentRow.provider_ref)
    with platform.deps.uow() as uow:
        rows = uow.db.execute(select(*columns, PaymentRow.amount_cents).order_by(PaymentRow.id)).all()
    by_order: dict[str, list[Entry]] = defaultdict(list)
    for row in rows:
        by_order[row.order_id].append(Entry(*row))
    return by_order


def _net(rows: list[Entry]) -> int:
    return sum(r.amount_cents if r.kind == "charge" else -r.amount_cents for r in rows)


def test_concurrent_pays_charge_each_order_exactly_once(platform: Platform, clock: ManualClock) -> None:
    orders = _unpaid_orders(platform, clock, ORDERS)

    def pay(order: Order) -> Order | ErrorCode:
        try:
            return platform.orders.pay(order.id, order.user_id)
        except FlashSaleError as exc:
            return exc.code

    answers = release_together([lambda o=o: pay(o) for o in orders for _ in range(PAYERS)])

    # Every click is answered with the paid order, or told a payment is already under way.
    outcomes = Counter(a.status if isinstance(a, Order) else a for a in answers)
    assert set(outcomes) <= {OrderStatus.PAID, ErrorCode.PAYMENT_IN_PROGRESS}, outcomes
    journal = _journal(platform)
    for order in orders:
        stored = platform.orders.get(order.id)
        rows = journal[order.id]
        assert stored.status is OrderStatus.PAID
        assert [r.kind for r in rows] == ["charge"], (order.id, [(r.kind, r.provider_ref) for r in rows])
        assert _net(rows) == stored.total_cents
        assert stored.payment_ref == rows[0].provider_ref
    assert audit_payments(platform.deps.sessions).clean


def test_concurrent_callbacks_with_different_references_apply_one_and_refund_the_rest(
    platform: Platform, clock: ManualClock
) -> None:
    """A provider that really did charge three times: one charge pays, two go back at once."""
    orders = _unpaid_orders(platform, clock, 40)
    assert platform.settings.payment_secret is not None
    provider = SandboxProvider(platform.settings.payment_secret)
    signed = [(o, provider.charge(o)) for o in orders for _ in range(PAYERS)]

    def deliver(body: bytes, signature: str) -> Order | ErrorCode:
        try:
            return platform.orders.handle_payment_callback("sandbox", body, signature)
        except FlashSaleError as exc:
            return exc.code

    release_together([lambda s=s: deliver(s.body, s.signature) for _, s in signed])

    journal = _journal(platform)  # read after every callback returned: nothing waits for a restart
    for order in orders:
        stored = platform.orders.get(order.id)
        rows = journal[order.id]
        charges = [r for r in rows if r.kind == "charge"]
        refunds = [r for r in rows if r.kind == "refund"]
        assert stored.status is OrderStatus.PAID
        assert len(charges) == PAYERS and len(refunds) == PAYERS - 1
        assert all(r.status == "done" for r in refunds)
        assert {r.provider_ref for r in refunds} == {r.provider_ref for r in charges} - {stored.payment_ref}
        assert _net(rows) == stored.total_cents
    assert audit_payments(platform.deps.sessions).clean


def _signed(platform: Platform, order: Order, ref: str, amount: int) -> tuple[bytes, str]:
    assert platform.settings.payment_secret is not None
    provider = SandboxProvider(platform.settings.payment_secret)
    body = json.dumps(
        {"order_id": order.id, "provider_ref": ref, "amount_cents": amount, "status": "succeeded"},
        sort_keys=True,
    ).encode()
    return body, provider._sign(body)


def test_a_reused_provider_reference_is_one_charge(platform: Platform, clock: ManualClock) -> None:
    """1 cent with reference R (refunded as a mismatch), then the full price with the same R."""
    (order,) = _unpaid_orders(platform, clock, 1)
    with pytest.raises(FlashSaleError) as first:
        platform.orders.handle_payment_callback("sandbox", *_signed(platform, order, "R", 1))
    assert first.value.code is ErrorCode.PAYMENT_MISMATCH

    with pytest.raises(FlashSaleError) as second:
        platform.orders.handle_payment_callback("sandbox", *_signed(platform, order, "R", order.total_cents))
    assert second.value.code is ErrorCode.PAYMENT_MISMATCH

    assert platform.orders.get(order.id).status is OrderStatus.UNPAID
    assert _net(_journal(platform)[order.id]) == 0
    # A fresh charge still pays it, and a refund afterwards is recorded and nets to zero.
    paid = platform.orders.pay(order.id, order.user_id)
    assert paid.status is OrderStatus.PAID
    assert _net(_journal(platform)[order.id]) == paid.total_cents
    refunded = platform.orders.refund(order.id)
    assert refunded.status is OrderStatus.REFUNDED
    assert _net(_journal(platform)[order.id]) == 0
    assert audit_payments(platform.deps.sessions).clean


def test_a_repeated_callback_of_a_refunded_charge_does_not_pay_again(
    platform: Platform, clock: ManualClock
) -> None:
    (order,) = _unpaid_orders(platform, clock, 1)
    callback = _signed(platform, order, "R1", order.total_cents)
    assert platform.orders.handle_payment_callback("sandbox", *callback).status is OrderStatus.PAID
    platform.orders.refund(order.id)
    again = platform.orders.handle_payment_callback("sandbox", *callback)
    assert again.status is OrderStatus.REFUNDED
    assert _net(_journal(platform)[order.id]) == 0
    assert audit_payments(platform.deps.sessions).clean


def test_pay_with_an_idempotency_key_replays_and_refuses_another_order(
    platform: Platform, clock: ManualClock
) -> None:
    first, second = _unpaid_orders(platform, clock, 2)
    paid = platform.orders.pay(first.id, first.user_id, idempotency_key="pay-1")
    assert paid.status is OrderStatus.PAID
    assert platform.orders.pay(first.id, first.user_id, idempotency_key="pay-1") == paid
    with pytest.raises(FlashSaleError) as mismatch:
        platform.orders.pay(second.id, first.user_id, idempotency_key="pay-1")
    assert mismatch.value.code in (ErrorCode.IDEMPOTENCY_MISMATCH, ErrorCode.ORDER_NOT_FOUND)
    assert [r.kind for r in _journal(platform)[first.id]] == ["charge"]


def test_the_audit_finds_a_seeded_discrepancy(platform: Platform, clock: ManualClock) -> None:
    paid, unpaid = _unpaid_orders(platform, clock, 2)
    platform.orders.pay(paid.id, paid.user_id)
    assert audit_payments(platform.deps.sessions).clean
    keep_stray_charge(platform, unpaid.id, 500)
    report = audit_payments(platform.deps.sessions)
    assert not report.clean
    assert [d.order_id for d in report.discrepancies] == [unpaid.id]
    assert report.discrepancies[0].net_cents == 500 and report.discrepancies[0].expected_cents == 0


def _answer(outcome: Paid | Exception) -> OrderStatus | ErrorCode:
    if isinstance(outcome, FlashSaleError):
        return outcome.code
    assert isinstance(outcome, Paid), outcome
    return outcome.order.status


def test_batched_pays_racing_single_pays_charge_each_order_exactly_once(
    platform: Platform, clock: ManualClock
) -> None:
    """`pay_many` (the crowd's batches) and `pay` race over the same orders: one charge each."""
    orders = _unpaid_orders(platform, clock, ORDERS)
    batches = [orders[n : n + 16] for n in range(0, len(orders), 16)]
    shifted = [orders[n : n + 16] for n in range(8, len(orders), 16)] + [orders[:8]]  # each order twice more
    desk = platform.orders.payments

    def pay_batch(batch: list[Order]) -> list[OrderStatus | ErrorCode]:
        return [_answer(a) for a in desk.pay_many([PayRequest(o.id, o.user_id) for o in batch])]

    def pay_one(order: Order) -> list[OrderStatus | ErrorCode]:
        return [_answer(a) for a in desk.pay_many([PayRequest(order.id, order.user_id)])]

    calls = [lambda b=b: pay_batch(b) for b in batches + shifted] + [lambda o=o: pay_one(o) for o in orders]
    answers = Counter(a for batch in release_together(calls) for a in batch)
    assert set(answers) <= {OrderStatus.PAID, ErrorCode.PAYMENT_IN_PROGRESS}, answers
    journal = _journal(platform)
    for order in orders:
        stored = platform.orders.get(order.id)
        rows = journal[order.id]
        assert stored.status is OrderStatus.PAID
        assert [r.kind for r in rows] == ["charge"], (order.id, [(r.kind, r.provider_ref) for r in rows])
        assert stored.payment_ref == rows[0].provider_ref and _net(rows) == stored.total_cents
    assert audit_payments(platform.deps.sessions).clean


def test_pay_many_answers_each_request_as_pay_alone_would(platform: Platform, clock: ManualClock) -> None:
    """Fresh, repeated, paid, cancelled, expired, other shoppers' and unknown orders, and keys, in a batch."""
    fresh, twice, paid, cancelled, late, keyed = _unpaid_orders(platform, clock, 6)
    platform.orders.pay(paid.id, paid.user_id)
    platform.orders.cancel(cancelled.id, cancelled.user_id)
    desk = platform.orders.payments
    batch = [
        PayRequest(fresh.id, fresh.user_id),
        PayRequest(twice.id, twice.user_id),
        PayRequest(twice.id, twice.user_id),
        PayRequest(paid.id, paid.user_id),
        PayRequest(cancelled.id, cancelled.user_id),
        PayRequest(fresh.id, "someone-else"),
        PayRequest("no-such-order", fresh.user_id),
        PayRequest(keyed.id, keyed.user_id, idempotency_key="pay-1"),
    ]
    answers = desk.pay_many(batch)
    assert [_answer(a) for a in answers] == [
        OrderStatus.PAID,
        OrderStatus.PAID,
        OrderStatus.PAID,
        OrderStatus.PAID,
        ErrorCode.INVALID_TRANSITION,
        ErrorCode.ORDER_NOT_FOUND,
        ErrorCode.ORDER_NOT_FOUND,
        OrderStatus.PAID,
    ]
    assert [a.replayed for a in answers if isinstance(a, Paid)] == [False] * 5
    # The key replays; a key used for another order is refused; a hold past its window is not paid.
    clock.advance(15 * 60 + 1)
    again = desk.pay_many(
        [
            PayRequest(keyed.id, keyed.user_id, idempotency_key="pay-1"),
            PayRequest(late.id, keyed.user_id, idempotency_key="pay-1"),
            PayRequest(late.id, late.user_id),
        ]
    )
    assert isinstance(again[0], Paid) and again[0].replayed and again[0].order.status is OrderStatus.PAID
    assert [_answer(a) for a in again[1:]] == [ErrorCode.IDEMPOTENCY_MISMATCH, ErrorCode.ORDER_EXPIRED]
    journal = _journal(platform)
    assert all([r.kind for r in journal[o.id]] == ["charge"] for o in (fresh, twice, paid, keyed))
    assert not journal[cancelled.id] and not journal[late.id]
    assert audit_payments(platform.deps.sessions).clean
