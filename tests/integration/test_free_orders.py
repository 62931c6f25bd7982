"""Countdown free orders (免单) on the two ends: one winner per slot under a paying crowd, each rebate
sent once, a refund after a rebate gives back only the rest, and the money always nets."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.free_orders import WinStatus
from flashsale.domain.orders import Order, OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.services.orders import Buy
from flashsale.services.payments import SandboxProvider
from flashsale.services.settlement import PayRequest
from flashsale.store.tables import EventRow, FreeOrderEntryRow, PaymentRow
from tests.conftest import T0, Sale
from tests.engines import POSTGRES_REDIS, SQLITE, drain_orders
from tests.factories import release_together

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)  # the two ends (see tests/engines.py)

CROWD = 40
PRICE = 19_900


class CountingProvider(SandboxProvider):
    """The sandbox, remembering every refund it was asked for (key, amount)."""

    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        self.refunds: list[tuple[str, int]] = []

    def refund(self, *, order_id: str, charge_ref: str, amount_cents: int, key: str | None = None) -> str:
        self.refunds.append((key or charge_ref, amount_cents))
        return super().refund(order_id=order_id, charge_ref=charge_ref, amount_cents=amount_cents, key=key)


@pytest.fixture
def provider(platform: Platform) -> CountingProvider:
    counting = CountingProvider("test-payment-secret")
    platform.orders.payments.providers["sandbox"] = counting
    return counting


@pytest.fixture
def item(platform: Platform, sale: Sale) -> int:
    """Socks in the 10:00 session, one per shopper, enough for the whole crowd."""
    cat = platform.catalog
    product = cat.create_product(sku="SOCKS", name="Socks", list_price_cents=29_900, stock=1000)
    return cat.create_item(
        session_id=sale.session_id,
        product_id=product.id,
        flash_price_cents=PRICE,
        quota=CROWD,
        per_user_limit=1,
    ).id


def bought(platform: Platform, clock: ManualClock, item: int, count: int, prefix: str = "u") -> list[Order]:
    clock.set(T0.timestamp() + 1)
    orders = [platform.orders.buy(Buy(f"{prefix}{n}", item, 1, f"k{n}")).order for n in range(count)]
    drain_orders(platform)
    return orders


def journal(platform: Platform, kind: str) -> list[tuple[str, int, str]]:
    with platform.deps.read() as r:
        rows = r.db.execute(
            select(PaymentRow.order_id, PaymentRow.amount_cents, PaymentRow.status).where(
                PaymentRow.kind == kind
            )
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def event_counts(platform: Platform) -> Counter[str]:
    with platform.deps.read() as r:
        return Counter(r.db.scalars(select(EventRow.kind)))


@pytest.mark.parametrize("batched", [False, True], ids=["pay", "pay_many"])
def test_a_paying_crowd_gives_each_slot_exactly_one_winner_and_each_rebate_once(
    platform: Platform, clock: ManualClock, sale: Sale, item: int, provider: CountingProvider, batched: bool
) -> None:
    rule = platform.free_orders.create_rule(
        name="1st, 2nd, 3rd, 7th and 33rd free",
        session_id=sale.session_id,
        item_id=item,
        ranks=[7, 33],
        first_n=3,
    )
    orders = bought(platform, clock, item, CROWD)

    def pay(order: Order) -> Order | ErrorCode:
        try:
            if batched:  # as the HTTP route and the demo pay: through the batch path (one per call here)
                (answer,) = platform.orders.payments.pay_many([PayRequest(order.id, order.user_id)])
                if isinstance(answer, Exception):
                    raise answer
                return answer.order
            return platform.orders.pay(order.id, order.user_id)
        except FlashSaleError as exc:
            return exc.code

    # Every order paid by two clicks at once: a double-click must not take two ranks.
    answers = release_together([lambda o=o: pay(o) for o in orders for _ in range(2)])
    assert {a.status if isinstance(a, Order) else a for a in answers} <= {
        OrderStatus.PAID,
        ErrorCode.PAYMENT_IN_PROGRESS,
    }
    for order in orders:  # a click told PAYMENT_IN_PROGRESS may leave nothing unpaid
        assert platform.orders.pay(order.id, order.user_id).status is OrderStatus.PAID

    winners = platform.free_orders.winners(rule.id)
    assert [w.slot for w in winners] == [1, 2, 3, 7, 33]  # exactly one winner per slot
    assert len({w.order_id for w in winners}) == 5
    assert all(w.status is WinStatus.REBATED and w.rebate_cents == PRICE for w in winners)
    with platform.deps.read() as r:
        ranks = list(r.db.scalars(select(FreeOrderEntryRow.rank).where(FreeOrderEntryRow.rule_id == rule.id)))
    assert sorted(ranks) == list(range(1, CROWD + 1))  # every paid order counted once
    rebates = journal(platform, "rebate")
    assert sorted(rebates) == sorted((w.order_id, PRICE, "done") for w in winners)
    # One rebate per winner sent; a racing sender may only repeat the same key (a no-op at the provider).
    assert {amount for _, amount in provider.refunds} == {PRICE}
    assert len({key for key, _ in provider.refunds}) == 5
    assert all(key.startswith("rebate:") for key, _ in provider.refunds)
    events = event_counts(platform)
    assert events["FreeOrderWon"] == events["OrderRebated"] == 5
    assert [v.paid_count for v in platform.free_orders.rules()] == [CROWD]
    report = audit_payments(platform.deps.sessions)
    assert report.clean, report.discrepancies
    assert report.net_cents == CROWD * PRICE - 5 * PRICE == report.expected_cents

    # The shopper sees the win on the order.
    lucky = winners[0]
    assert platform.free_orders.wins_of([lucky.order_id])[lucky.order_id].slot == 1


def test_a_refund_after_a_rebate_gives_back_only_what_was_kept(
    platform: Platform, clock: ManualClock, sale: Sale, item: int, provider: CountingProvider
) -> None:
    platform.free_orders.create_rule(
        name="first two, up to 50.00", session_id=sale.session_id, item_id=item, first_n=2, cap_cents=5_000
    )
    capped, second, full_price = bought(platform, clock, item, 3)
    for order in (capped, second, full_price):
        platform.orders.pay(order.id, order.user_id)

    for order in (capped, second, full_price):
        assert platform.orders.refund(order.id).status is OrderStatus.REFUNDED
        platform.orders.refund(order.id)  # a repeat gives nothing more

    refunds = {order_id: cents for order_id, cents, _ in journal(platform, "refund")}
    assert refunds == {capped.id: PRICE - 5_000, second.id: PRICE - 5_000, full_price.id: PRICE}
    rebates = {order_id: cents for order_id, cents, _ in journal(platform, "rebate")}
    assert rebates == {capped.id: 5_000, second.id: 5_000}
    report = audit_payments(platform.deps.sessions)
    assert report.clean, report.discrepancies
    assert report.net_cents == 0


def test_a_wholly_free_order_refunds_nothing_and_a_rule_may_not_overlap_another(
    platform: Platform, clock: ManualClock, sale: Sale, item: int, provider: CountingProvider
) -> None:
    platform.free_orders.create_rule(name="first free", session_id=sale.session_id, first_n=1)
    with pytest.raises(FlashSaleError) as refused:
        platform.free_orders.create_rule(name="item too", session_id=sale.session_id, item_id=item, ranks=[2])
    assert refused.value.code is ErrorCode.CONFLICT
    (order,) = bought(platform, clock, item, 1)
    platform.orders.pay(order.id, order.user_id)
    platform.orders.refund(order.id)
    assert journal(platform, "refund") == [(order.id, 0, "done")]
    assert all(amount > 0 for _, amount in provider.refunds)  # nothing was sent for nothing
    assert audit_payments(platform.deps.sessions).clean


def test_orders_paid_outside_the_rule_take_no_rank(
    platform: Platform, clock: ManualClock, sale: Sale, item: int
) -> None:
    later = platform.catalog.create_session(
        campaign_id=sale.campaign_id,
        name="later",
        starts_at=T0 + timedelta(hours=3),
        ends_at=T0 + timedelta(hours=4),
    )
    platform.free_orders.create_rule(name="later session", session_id=later.id, first_n=5)
    (order,) = bought(platform, clock, item, 1)
    platform.orders.pay(order.id, order.user_id)
    assert platform.free_orders.wins_of([order.id]) == {}
    assert [v.paid_count for v in platform.free_orders.rules()] == [0]
