"""The README's example carts, each checked out through the store with its promotions and coupons.

Each row is a cart of the shop below, the shop promotions in force, the coupon the shopper applies,
and the total worked out by hand; the test checks it out and compares the checkout's total, the sum
of its orders and the discount each coupon or promotion took (journaled with the checkout).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from flashsale.bootstrap import Platform
from flashsale.domain.coupons import CouponKind, CouponTemplate, CouponWave
from flashsale.domain.promotions import Tier
from tests.conftest import T0, Sale
from tests.engines import POSTGRES_REDIS, SQLITE, drain_orders

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)

WEEK = T0 + timedelta(days=7)
# The shop's rules and coupons the table uses, as templates (ids given by the store).
PROMOTIONS = {
    "满300减30": CouponTemplate(0, "满300减30", CouponKind.THRESHOLD, T0, WEEK, tiers=(Tier(30_000, 3_000),)),
    "每满200减20 (最多50)": CouponTemplate(
        0, "每满200减20", CouponKind.EVERY, T0, WEEK, tiers=(Tier(20_000, 2_000),), cap_cents=5_000
    ),
}
COUPONS = {
    "券 满300减30": CouponTemplate(
        0, "券 满300减30", CouponKind.THRESHOLD, T0, WEEK, tiers=(Tier(30_000, 3_000),)
    ),
    "店铺券 满200减20": CouponTemplate(
        0, "店铺券", CouponKind.AMOUNT, T0, WEEK, off_cents=2_000, min_spend_cents=20_000
    ),
}


@dataclass(frozen=True)
class Row:
    """A cart (item name → units), the promotions in force, the coupon applied, the total by hand."""

    cart: dict[str, int]
    total_cents: int
    promotions: tuple[str, ...] = ()
    coupon: str | None = None
    removed: str | None = None  # a line taken out of the cart before checking out
    tier: str | None = None  # the shopper's member tier
    discounts: list[int] = field(default_factory=list)  # what each coupon / promotion took, in order


# kettle 150.00 and mug 80.00 take coupons; phone 3999.00 is a flash price that refuses them; towel is
# sold at its shop price 100.00, 88.00 for gold members
EXAMPLE_CHECKOUTS: dict[str, Row] = {
    # 2 × 150 = 300 reaches 满300 → 270
    "满300减30 promotion": Row({"kettle": 2}, 27_000, ("满300减30",), discounts=[3_000]),
    # 3 × 150 + 3 × 80 = 690 → 3 steps of 200 = 60, capped at 50 → 640
    "每满200减20 capped at 50": Row(
        {"kettle": 3, "mug": 3}, 64_000, ("每满200减20 (最多50)",), discounts=[5_000]
    ),
    # 满300减30 first: 380 - 30 = 350 ≥ 200 → the shop coupon takes 20 → 330
    "promotion and shop coupon stack": Row(
        {"kettle": 2, "mug": 1}, 33_000, ("满300减30",), "店铺券 满200减20", discounts=[3_000, 2_000]
    ),
    # the phone refuses the coupon: 2 × 150 = 300 alone meets 满300 → 270 + 3999 = 4269
    "flash item refuses the coupon": Row(
        {"kettle": 2, "phone": 1}, 426_900, coupon="券 满300减30", discounts=[3_000]
    ),
    # 150 + 2 × 80 = 310 → 280; one mug removed: 230 < 300 → 230
    "a line removed, below 满300": Row({"kettle": 1, "mug": 2}, 23_000, ("满300减30",), removed="mug"),
    # a gold member pays 3 × 88 = 264 ≥ 200 → the shop coupon takes 20 → 244
    "member price with a shop coupon": Row(
        {"towel": 3}, 24_400, coupon="店铺券 满200减20", tier="gold", discounts=[2_000]
    ),
}


@dataclass(frozen=True)
class Shop:
    items: dict[str, int]


@pytest.fixture
def shop(platform: Platform, sale: Sale) -> Shop:
    cat = platform.catalog
    items = {"phone": sale.phone_id}
    for name, cents in (("kettle", 15_000), ("mug", 8_000)):
        product = cat.create_product(sku=name.upper(), name=name, list_price_cents=cents, stock=100)
        item = cat.create_item(
            session_id=sale.session_id,
            product_id=product.id,
            flash_price_cents=cents,
            quota=50,
            per_user_limit=5,
            coupons_allowed=True,
        )
        items[name] = item.id
    towel = cat.create_product(sku="TOWEL", name="towel", list_price_cents=12_000, stock=100)
    items["towel"] = cat.create_item(
        session_id=sale.session_id,
        product_id=towel.id,
        flash_price_cents=10_000,
        quota=50,
        per_user_limit=5,
        regular=True,
        member_prices={"gold": 8_800},
    ).id
    return Shop(items)


@pytest.mark.parametrize("name", EXAMPLE_CHECKOUTS)
def test_each_example_cart_checks_out_at_its_hand_computed_total(
    platform: Platform, shop: Shop, sale: Sale, name: str
) -> None:
    row = EXAMPLE_CHECKOUTS[name]
    for promotion in row.promotions:
        platform.coupons.create_promotion(PROMOTIONS[promotion], sale.campaign_id)
    coupons = []
    if row.coupon is not None:
        template = platform.coupons.create_template(COUPONS[row.coupon])
        wave = platform.coupons.create_wave(CouponWave(0, template.id, T0, 10))
        coupons.append(
            platform.coupons.claim(user_id="ivy", wave_id=wave.wave.id, request_id="c").coupon.coupon_id
        )
    platform.carts.tiers.set_tier("ivy", row.tier)
    for item, qty in row.cart.items():
        platform.carts.add("ivy", shop.items[item], qty)
    if row.removed is not None:
        platform.carts.set_qty("ivy", shop.items[row.removed], row.cart[row.removed] - 1)

    checkout, _ = platform.carts.checkout("ivy", "k", coupons)

    drain_orders(platform)
    placed = platform.carts.get("ivy", checkout.id)
    assert placed.total_cents == row.total_cents
    assert sum(ln.order.total_cents for ln in placed.lines if ln.order is not None) == row.total_cents
    assert sorted(c.discount_cents for c in placed.coupons) == sorted(row.discounts)
    assert placed.subtotal_cents - placed.total_cents == sum(row.discounts)


def test_the_readme_lists_every_example_checkout_with_its_total() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Example checkouts", 1)[1].split("\n#", 1)[0]
    rows = [row.strip("|").split("|") for row in table.splitlines() if re.match(r"\| [^-]", row)]

    documented = {cells[0].strip(): cells[-1].strip() for cells in rows[1:]}

    assert documented == {
        name: f"{r.total_cents // 100}.{r.total_cents % 100:02d}" for name, r in EXAMPLE_CHECKOUTS.items()
    }
