"""A prize pool set up for the draw tests, and a paid order for a shopper."""

from __future__ import annotations

from dataclasses import dataclass

from flashsale.bootstrap import Platform
from flashsale.domain.draws import EntitlementRule, EntitlementSource, Game, PrizeKind
from flashsale.domain.orders import Order
from flashsale.services.orders import Buy
from tests.engines import drain_orders

CHECKIN_BONUS_EVERY = 3


@dataclass(frozen=True)
class Wheel:
    """A lottery wheel: a phone (stock 3), coupons (stock 20, 5 a day), points (plenty), no thanks weight.

    Every draw wins something until the phone and today's coupons are gone (then points): the
    platform draws with `secrets`, so a test that needs a prize must not depend on its luck.
    """

    pool_id: int
    phone_id: int
    coupon_id: int
    points_id: int


def make_wheel(platform: Platform, *, min_order_cents: int = 150_000, utc_offset_min: int = 0) -> Wheel:
    """Create the `Wheel` with every rule: orders over the threshold, shares, check-in, free daily."""
    draws = platform.draws
    pool = draws.create_pool(
        name="Launch wheel",
        game=Game.LOTTERY,
        thanks_weight=0,
        utc_offset_min=utc_offset_min,
        rules=[
            EntitlementRule(
                EntitlementSource.PAID_ORDER, draws=2, daily_cap=5, min_order_cents=min_order_cents
            ),
            EntitlementRule(EntitlementSource.SHARE, draws=1, daily_cap=3),
            EntitlementRule(
                EntitlementSource.CHECKIN,
                draws=1,
                daily_cap=1,
                streak_bonus_every=CHECKIN_BONUS_EVERY,
                streak_bonus_draws=2,
            ),
            EntitlementRule(EntitlementSource.FREE_DAILY, draws=1, daily_cap=1),
        ],
    )
    phone = draws.add_prize(pool.id, name="Phone X", kind=PrizeKind.GOODS, weight=1, stock=3, product_id=1)
    coupon = draws.add_prize(
        pool.id, name="¥50 off", kind=PrizeKind.COUPON, weight=3, stock=20, daily_cap=5, coupon_template_id=77
    )
    points = draws.add_prize(
        pool.id, name="100 points", kind=PrizeKind.POINTS, weight=4, stock=10_000, points=100
    )
    return Wheel(pool.id, phone.id, coupon.id, points.id)


def paid_order(platform: Platform, user_id: str, item_id: int, qty: int = 1) -> Order:
    """Buy and pay `qty` of an item for `user_id`; return the paid order."""
    bought = platform.orders.buy(Buy(user_id, item_id, qty, f"buy-{user_id}-{item_id}"))
    drain_orders(platform)
    return platform.orders.pay(bought.order.id, user_id)
