"""Properties of carts priced as checkout prices them: shop promotions and a coupon, from templates.

Every template kind (amount, percent, 满减 tiers, 每满减) is turned into the price engine's offer as
checkout does (`CouponTemplate.to_offer`): promotions by themselves, one coupon the shopper applied.
Whatever the cart: no line and no total goes below zero, each offer's shares sum exactly to what it
took off (so the lines' orders add up to the checkout), and the order of the lines changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from flashsale.domain.coupons import CouponKind, CouponTemplate
from flashsale.domain.errors import FlashSaleError
from flashsale.domain.price_engine import CartLine, FlashPrice, PricedCart, price_cart
from flashsale.domain.promotions import Offer, Tier
from tests.conftest import T0

WEEK = T0 + timedelta(days=7)


@st.composite
def templates(draw: st.DrawFn) -> CouponTemplate:
    kind = draw(st.sampled_from(CouponKind))
    fields: dict[str, object] = {}
    if kind is CouponKind.AMOUNT:
        fields["off_cents"] = draw(st.integers(1, 50_000))
    elif kind is CouponKind.PERCENT:
        fields["percent"] = draw(st.integers(1, 100))
    elif kind is CouponKind.THRESHOLD:
        first = draw(st.integers(1, 40_000))
        fields["tiers"] = (Tier(first, draw(st.integers(1, first))),)
    else:
        step = draw(st.integers(1, 40_000))
        fields["tiers"] = (Tier(step, draw(st.integers(1, step))),)
    return CouponTemplate(
        0,
        "t",
        kind,
        T0,
        WEEK,
        min_spend_cents=draw(st.integers(0, 30_000)),
        cap_cents=draw(st.none() | st.integers(1, 20_000)),
        product_ids=draw(st.none() | st.frozensets(st.integers(1, 4), min_size=1)),
        **fields,  # type: ignore[arg-type]
    )


lines = st.lists(
    st.builds(
        CartLine,
        product_id=st.integers(1, 4),
        category=st.just(""),
        qty=st.integers(1, 5),
        list_unit_cents=st.integers(0, 60_000),
        flash=st.none() | st.builds(FlashPrice, st.integers(0, 60_000), st.booleans()),
    ),
    min_size=1,
    max_size=5,
)


def checkout_price(
    cart: list[CartLine], promotions: list[CouponTemplate], coupon: CouponTemplate | None
) -> PricedCart | None:
    """The cart as checkout prices it; None when the applied coupon cannot be used on it (refused)."""
    offers: list[Offer] = [t.to_offer(f"promo:{n}") for n, t in enumerate(promotions)]
    try:
        return price_cart(
            cart, now=T0, promotions=offers, coupons=[coupon.to_offer("coupon")] if coupon else []
        )
    except FlashSaleError:
        return None


@settings(max_examples=300)
@given(
    cart=lines, promotions=st.lists(templates(), max_size=2), coupon=st.none() | templates(), data=st.data()
)
def test_a_checkout_price_is_never_negative_sums_exactly_and_ignores_the_order_of_lines(
    cart: list[CartLine],
    promotions: list[CouponTemplate],
    coupon: CouponTemplate | None,
    data: st.DataObject,
) -> None:
    priced = checkout_price(cart, promotions, coupon)
    shuffled = checkout_price(data.draw(st.permutations(cart)), promotions, coupon)
    if priced is None or shuffled is None:
        assert priced is shuffled  # refused either way
        return

    assert priced.total_cents >= 0 and all(line.total_cents >= 0 for line in priced.lines)
    for offer in priced.offers:
        assert sum(offer.shares) == offer.off_cents
    assert sum(line.total_cents for line in priced.lines) == priced.subtotal_cents - sum(
        o.off_cents for o in priced.offers
    )
    assert shuffled.total_cents == priced.total_cents
    assert [(o.code, o.off_cents) for o in shuffled.offers] == [(o.code, o.off_cents) for o in priced.offers]
