"""The campaign review's figures (domain/review.py), computed by hand for a small campaign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flashsale.domain.campaign import Campaign, FlashSession
from flashsale.domain.catalog import Product
from flashsale.domain.orders import Order, OrderStatus
from flashsale.domain.review import review_campaign, sell_out_curve
from flashsale.domain.sale import FlashItem

T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
CAMPAIGN = Campaign(1, "Double 11", "phones", T0 - timedelta(days=1), T0 + timedelta(days=1))
SESSION = FlashSession(1, 1, "10:00", T0, T0 + timedelta(minutes=10))
PHONE = FlashItem(1, 1, 1, 100_00, quota=4, per_user_limit=2)
PRODUCT = Product(1, "P1", "Phone", 150_00, 100)


def order(
    n: int, user: str, qty: int, status: OrderStatus, *, at_s: int, closed_s: int | None = None
) -> Order:
    created = T0 + timedelta(seconds=at_s)
    was_paid = status in (OrderStatus.PAID, OrderStatus.REFUNDED)
    return Order(
        id=f"o{n}",
        user_id=user,
        item_id=PHONE.id,
        qty=qty,
        unit_price_cents=100_00,
        total_cents=qty * 100_00,
        status=status,
        request_id=f"r{n}",
        created_at=created,
        expires_at=created + timedelta(minutes=15),
        paid_at=created + timedelta(seconds=30) if was_paid else None,
        closed_at=None if closed_s is None else T0 + timedelta(seconds=closed_s),
    )


ORDERS = [
    order(1, "ann", 2, OrderStatus.PAID, at_s=1),
    order(2, "bob", 1, OrderStatus.CANCELLED, at_s=2, closed_s=5),
    order(3, "cat", 1, OrderStatus.EXPIRED, at_s=3),  # stored EXPIRED without closed_at: at expires_at
    order(4, "dan", 1, OrderStatus.PAID, at_s=6),
    order(5, "eve", 1, OrderStatus.REFUNDED, at_s=7, closed_s=600),
]


def test_kpis_of_a_small_campaign() -> None:
    review = review_campaign(CAMPAIGN, [SESSION], [(PHONE, PRODUCT)], ORDERS)
    k = review.kpis
    assert k.gmv_cents == 300_00  # ann 2 + dan 1 paid; eve's refunded order is not a sale
    assert (k.orders_placed, k.orders_paid, k.units_sold) == (5, 2, 3)
    assert k.aov_cents == 150_00
    assert (k.participants, k.buyers) == (5, 2)
    assert k.conversion == 0.6  # paid or refunded: 3 of 5
    assert (k.expired_share, k.cancelled_share) == (0.2, 0.2)
    assert k.refunded_cents == 100_00
    assert review.orders_by_status == {"CANCELLED": 1, "EXPIRED": 1, "PAID": 2, "REFUNDED": 1}
    assert review.sales_by_hour == ((T0, 300_00),)
    assert review.sessions[0].kpis == k  # one session: the same figures


def test_the_sell_out_curve_gives_units_back_when_orders_are_released() -> None:
    curve = dict(sell_out_curve(ORDERS))
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    # +2 ann, +1 bob, +1 cat = 4 (sold out), bob cancels -1, +1 dan, +1 eve, eve refunded, cat expires
    assert curve[at(3)] == 4 and curve[at(5)] == 3 and curve[at(7)] == 5
    assert curve[at(600)] == 4
    assert curve[at(3) + timedelta(minutes=15)] == 3
    item = review_campaign(CAMPAIGN, [SESSION], [(PHONE, PRODUCT)], ORDERS).sessions[0].items[0]
    assert item.sold_out_at == at(3)


def test_a_campaign_without_orders_reviews_to_zeros() -> None:
    review = review_campaign(CAMPAIGN, [SESSION], [(PHONE, PRODUCT)], [])
    assert review.kpis.gmv_cents == 0 and review.kpis.conversion == 0.0 and review.kpis.aov_cents == 0
    assert review.sessions[0].items[0].sold_out_at is None and review.sales_by_hour == ()
