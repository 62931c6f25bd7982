"""The cart price engine: a table of hand-computed example carts (docs/pricing.md shows the same
table), the refusals of applied coupons, and properties over random carts and offers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashsale.domain.catalog import Product
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.price_engine import (
    FREE_SHIPPING,
    CartLine,
    FlashPrice,
    OfferSource,
    PricedCart,
    PriceKind,
    Shipping,
    allocate,
    price_cart,
)
from flashsale.domain.pricing import Adjustment, quote_flash_line
from flashsale.domain.promotions import (
    AmountOff,
    EveryOff,
    Offer,
    PercentOff,
    Scope,
    TieredOff,
)
from flashsale.domain.sale import FlashItem

NOW = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def line(
    cents: int,
    qty: int = 1,
    *,
    product: int = 1,
    category: str = "general",
    member_unit_cents: Mapping[str, int] | None = None,
    flash: FlashPrice | None = None,
) -> CartLine:
    """`qty` units at a list price of `cents`."""
    return CartLine(product, category, qty, cents, member_unit_cents or {}, flash)


# The shop's rules and coupons used by the table, named as a shopper reads them.
FULL_300_OFF_30 = Offer("满300减30", TieredOff.of((30_000, 3_000)))
TIERED_300_30_500_60 = Offer("满300减30/满500减60", TieredOff.of((30_000, 3_000), (50_000, 6_000)))
EVERY_200_OFF_20_CAP_50 = Offer("每满200减20 (最多50)", EveryOff(20_000, 2_000), cap_cents=5_000)
SHOP_COUPON_200_OFF_20 = Offer("店铺券 满200减20", AmountOff(2_000), min_spend_cents=20_000)
COUPON_10_OFF = Offer("券 减10", AmountOff(1_000))
COUPON_15_PERCENT_CAP_20 = Offer("券 85折 (最多20)", PercentOff(15), cap_cents=2_000)
BOOKS_COUPON = Offer(
    "图书券 满100减15", AmountOff(1_500), min_spend_cents=10_000, scope=Scope.of_categories("books")
)
BOOKS_100_OFF_10 = Offer("图书 满100减10", TieredOff.of((10_000, 1_000)), scope=Scope.of_categories("books"))
TEN_PERCENT_OR = Offer("全店9折", PercentOff(10), group="店铺活动")
FULL_300_OFF_40_OR = Offer("满300减40", TieredOff.of((30_000, 4_000)), group="店铺活动")
RED_PACKET_5 = Offer("店铺红包 5元", AmountOff(500))
SHIP_8_FREE_OVER_99 = Shipping(fee_cents=800, free_over_cents=9_900)


@dataclass(frozen=True)
class Example:
    """One documented cart: what it holds, the offers, and the total worked out by hand."""

    lines: tuple[CartLine, ...]
    total_cents: int
    promotions: tuple[Offer, ...] = ()
    coupons: tuple[Offer, ...] = ()
    tier: str | None = None
    shipping: Shipping = FREE_SHIPPING
    offers: dict[str, int] = field(default_factory=dict)  # code → amount off, as applied

    def price(self) -> PricedCart:
        return price_cart(
            self.lines,
            now=NOW,
            tier=self.tier,
            promotions=self.promotions,
            coupons=self.coupons,
            shipping=self.shipping,
        )


GOLD_88 = {"gold": 8_800}
FLASH_NO_COUPONS = FlashPrice(5_990)

EXAMPLES: dict[str, Example] = {
    # 200 + 120 = 320 >= 300 → 320 - 30 = 290
    "满300减30 met": Example(
        (line(20_000), line(12_000, product=2)), 29_000, (FULL_300_OFF_30,), offers={"满300减30": 3_000}
    ),
    # 200 + 99.99 = 299.99 < 300 → 299.99
    "满300减30 not met": Example((line(20_000), line(9_999, product=2)), 29_999, (FULL_300_OFF_30,)),
    # 250 + 2 × 200 = 650 → 每满200: 3 × 20 = 60, capped at 50 → 600
    "每满200减20 capped at 50": Example(
        (line(25_000), line(20_000, 2, product=2)),
        60_000,
        (EVERY_200_OFF_20_CAP_50,),
        offers={"每满200减20 (最多50)": 5_000},
    ),
    # 450 → 每满200: 2 × 20 = 40, under the cap → 410
    "每满200减20 under the cap": Example((line(45_000),), 41_000, (EVERY_200_OFF_20_CAP_50,)),
    # 520 reaches the 500 tier → 520 - 60 = 460
    "tiered 满减, top tier": Example((line(52_000),), 46_000, (TIERED_300_30_500_60,)),
    # 499.99 reaches only the 300 tier → 499.99 - 30 = 469.99
    "tiered 满减, lower tier": Example((line(49_999),), 46_999, (TIERED_300_30_500_60,)),
    # gold member: 3 × 88 = 264 >= 200 → 264 - 20 = 244
    "member price + shop coupon": Example(
        (line(10_000, 3, member_unit_cents=GOLD_88),), 24_400, coupons=(SHOP_COUPON_200_OFF_20,), tier="gold"
    ),
    # no tier: 3 × 100 = 300 → 300 - 20 = 280
    "list price + shop coupon": Example(
        (line(10_000, 3, member_unit_cents=GOLD_88),), 28_000, coupons=(SHOP_COUPON_200_OFF_20,)
    ),
    # the flash line (59.90, coupons not allowed) takes none of the coupon: 59.90 + (80 - 10) = 129.90
    "flash line refuses the coupon": Example(
        (line(9_900, flash=FLASH_NO_COUPONS), line(8_000, product=2)),
        12_990,
        coupons=(COUPON_10_OFF,),
        offers={"券 减10": 1_000},
    ),
    # coupons allowed on the item: 59.90 + 80 = 139.90 - 10 = 129.90, split 599:801 → 4.28 / 5.72
    "flash line that allows coupons": Example(
        (line(9_900, flash=FlashPrice(5_990, coupons_allowed=True)), line(8_000, product=2)),
        12_990,
        coupons=(COUPON_10_OFF,),
    ),
    # 200 + 90 + 15 = 305 → 305 - 30 = 275 (the next row removes the 15 line)
    "凑单: three lines cross 300": Example(
        (line(20_000), line(9_000, product=2), line(1_500, product=3)), 27_500, (FULL_300_OFF_30,)
    ),
    # 200 + 90 = 290 < 300 → 290: removing a 15 line made the total 15 higher
    "凑单: a line removed, below 300": Example(
        (line(20_000), line(9_000, product=2)), 29_000, (FULL_300_OFF_30,)
    ),
    # 15% of 133.33 = 19.9995, floored → 19.99 → 113.34
    "percent coupon, floored": Example((line(13_333),), 11_334, coupons=(COUPON_15_PERCENT_CAP_20,)),
    # 15% of 200 = 30, capped at 20 → 180
    "percent coupon, capped": Example((line(20_000),), 18_000, coupons=(COUPON_15_PERCENT_CAP_20,)),
    # one group: 10% of 350 = 35 against 满300减40 = 40 → the 40 applies → 310
    "exclusive group picks 满300减40": Example(
        (line(35_000),), 31_000, (TEN_PERCENT_OR, FULL_300_OFF_40_OR), offers={"满300减40": 4_000}
    ),
    # 10% of 500 = 50 against 40 → 10% applies → 450
    "exclusive group picks 9折": Example(
        (line(50_000),), 45_000, (TEN_PERCENT_OR, FULL_300_OFF_40_OR), offers={"全店9折": 5_000}
    ),
    # books 60 + 50 = 110 >= 100 → -15 on the books only; the toy stays 200 → 295
    "coupon scoped to a category": Example(
        (line(6_000, category="books"), line(5_000, product=2, category="books"), line(20_000, product=3)),
        29_500,
        coupons=(BOOKS_COUPON,),
    ),
    # a 满减 on books counts the books only: 90 < 100 though the cart is 290 → 290
    "scoped 满减 counts only its category": Example(
        (line(9_000, category="books"), line(20_000, product=2)), 29_000, (BOOKS_100_OFF_10,)
    ),
    # 满300减30 first, then 10% of what is left: 400 - 30 = 370, 370 - 37 = 333
    "order of application: 满减 then percent": Example(
        (line(40_000),),
        33_300,
        (FULL_300_OFF_30, Offer("9折 after", PercentOff(10), priority=1)),
        offers={"满300减30": 3_000, "9折 after": 3_700},
    ),
    # 10% first: 400 - 40 = 360 >= 300 → 360 - 30 = 330
    "order of application: percent then 满减": Example(
        (line(40_000),),
        33_000,
        (Offer("满300减30 after", TieredOff.of((30_000, 3_000)), priority=1), Offer("9折", PercentOff(10))),
    ),
    # coupon 10 then red packet 5 stack: 150 - 10 - 5 = 135
    "coupon and red packet stack": Example((line(15_000),), 13_500, coupons=(COUPON_10_OFF, RED_PACKET_5)),
    # goods 100 >= 99 → shipping free → 100
    "free shipping reached": Example((line(10_000),), 10_000, shipping=SHIP_8_FREE_OVER_99),
    # a 5 red packet takes the goods to 95 < 99 → shipping 8 → 103 (shipping counts after discounts)
    "red packet drops below free shipping": Example(
        (line(10_000),), 10_300, coupons=(RED_PACKET_5,), shipping=SHIP_8_FREE_OVER_99
    ),
    # goods 98 < 99 → 98 + 8 = 106
    "below free shipping": Example((line(4_900, 2),), 10_600, shipping=SHIP_8_FREE_OVER_99),
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_documented_cart_costs_its_hand_computed_total(name: str) -> None:
    example = EXAMPLES[name]

    priced = example.price()

    assert priced.total_cents == example.total_cents
    assert priced.total_cents == sum(p.total_cents for p in priced.lines) + priced.shipping_cents
    if example.offers:
        assert {o.code: o.off_cents for o in priced.offers} == example.offers


def test_docs_pricing_lists_every_example_cart_with_its_total() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "pricing.md").read_text(encoding="utf-8")
    table = doc.split("## Example carts", 1)[1].split("\n## ", 1)[0]
    rows = [row.strip("|").split("|") for row in table.splitlines() if row.startswith("| ")]

    documented = {cells[0].strip(): cells[-1].strip() for cells in rows[1:]}  # after the header

    assert documented == {
        name: f"{e.total_cents // 100}.{e.total_cents % 100:02d}" for name, e in EXAMPLES.items()
    }


def test_removing_a_line_that_carried_the_cart_over_a_threshold_raises_the_total() -> None:
    crossing = EXAMPLES["凑单: three lines cross 300"]
    without_last = replace(crossing, lines=crossing.lines[:-1])

    # 305 - 30 = 275 with the 15.00 line; 290 without it: 15 more for one line less
    assert (crossing.price().total_cents, without_last.price().total_cents) == (27_500, 29_000)
    assert without_last.lines == EXAMPLES["凑单: a line removed, below 300"].lines


def test_a_breakdown_itemises_every_line_and_offer() -> None:
    priced = EXAMPLES["coupon scoped to a category"].price()

    # 15 over books of 60 and 50: 8.1818 and 6.8181 → floors 8.18 + 6.81 = 14.99, the last cent to
    # the larger remainder (the second book's .81...) → 8.18 / 6.82
    (coupon,) = priced.offers
    assert (coupon.code, coupon.source, coupon.off_cents, coupon.shares) == (
        BOOKS_COUPON.code,
        OfferSource.COUPON,
        1_500,
        (818, 682, 0),
    )
    assert [p.adjustments for p in priced.lines] == [
        (Adjustment(BOOKS_COUPON.code, -818),),
        (Adjustment(BOOKS_COUPON.code, -682),),
        (),
    ]
    assert [p.total_cents for p in priced.lines] == [5_182, 4_318, 20_000]
    assert (priced.list_total_cents, priced.subtotal_cents, priced.goods_cents) == (31_000, 31_000, 29_500)


def test_a_line_shows_which_price_it_pays() -> None:
    member = line(10_000, 3, member_unit_cents=GOLD_88)
    flash = line(10_000, product=2, member_unit_cents=GOLD_88, flash=FLASH_NO_COUPONS)
    dearer_member = line(10_000, product=3, member_unit_cents={"gold": 12_000})

    priced = price_cart([member, flash, dearer_member], now=NOW, tier="gold")

    # the member price does not stack on the flash price, and never costs more than the list
    assert [(p.unit_price_cents, p.price_kind) for p in priced.lines] == [
        (8_800, PriceKind.MEMBER),
        (5_990, PriceKind.FLASH),
        (10_000, PriceKind.LIST),
    ]
    assert [p.list_total_cents for p in priced.lines] == [30_000, 10_000, 10_000]
    assert priced.total_cents == 26_400 + 5_990 + 10_000


def test_a_flash_line_follows_its_item() -> None:
    item = FlashItem(1, 1, 7, flash_price_cents=4_990, quota=10, per_user_limit=2)
    product = Product(7, "SKU7", "Kettle", 9_900, 50)

    priced = price_cart([line(product.list_price_cents, 2, product=7, flash=FlashPrice.of(item))], now=NOW)

    assert priced.total_cents == quote_flash_line(item, product, 2).total_cents == 9_980


# -- applied coupons that cannot be used -----------------------------------------------------------


def refusal(lines: Sequence[CartLine], *coupons: Offer, promotions: Sequence[Offer] = ()) -> FlashSaleError:
    with pytest.raises(FlashSaleError) as refused:
        price_cart(lines, now=NOW, coupons=coupons, promotions=promotions)
    return refused.value


@pytest.mark.parametrize(
    ("valid_from", "valid_until"),
    [(NOW - 2 * HOUR, NOW), (NOW + HOUR, NOW + 2 * HOUR)],
    ids=["ended", "not yet"],
)
def test_a_coupon_outside_its_window_is_refused_as_expired(
    valid_from: datetime, valid_until: datetime
) -> None:
    coupon = Offer("双11券", AmountOff(1_000), valid_from=valid_from, valid_until=valid_until)

    assert refusal([line(20_000)], coupon).code is ErrorCode.COUPON_EXPIRED


def test_a_coupon_is_valid_from_its_start_up_to_its_end() -> None:
    coupon = Offer("双11券", AmountOff(1_000), valid_from=NOW, valid_until=NOW + HOUR)

    assert price_cart([line(20_000)], now=NOW, coupons=[coupon]).total_cents == 19_000


@pytest.mark.parametrize(
    ("lines", "coupon"),
    [
        # nothing in the cart is in the coupon's scope
        ((line(20_000, category="toys"),), BOOKS_COUPON),
        # books 90 < the coupon's minimum spend of 100
        ((line(9_000, category="books"), line(20_000, product=2)), BOOKS_COUPON),
        # the only line is a flash price that refuses coupons
        ((line(9_900, flash=FLASH_NO_COUPONS),), COUPON_10_OFF),
        # the flash line does not count toward the minimum spend: 80 < 200 though the cart is 139.90
        ((line(9_900, flash=FLASH_NO_COUPONS), line(8_000, product=2)), SHOP_COUPON_200_OFF_20),
    ],
    ids=["out of scope", "min spend", "flash only", "flash does not count"],
)
def test_a_coupon_that_cannot_apply_is_refused(lines: tuple[CartLine, ...], coupon: Offer) -> None:
    assert refusal(lines, coupon).code is ErrorCode.COUPON_NOT_APPLICABLE


def test_two_coupons_of_one_exclusive_group_are_refused() -> None:
    one, other = (Offer(code, AmountOff(1_000), group="platform") for code in ("A", "B"))

    refused = refusal([line(20_000)], one, other)

    assert refused.code is ErrorCode.COUPON_NOT_APPLICABLE
    assert "'B' does not stack with 'A'" in refused.message


def test_a_coupon_the_shopper_applied_takes_its_groups_place() -> None:
    better_promotion = Offer("满300减40", TieredOff.of((30_000, 4_000)), group="G")
    coupon = Offer("券 减10", AmountOff(1_000), group="G")

    priced = price_cart([line(35_000)], now=NOW, promotions=[better_promotion], coupons=[coupon])

    assert [(o.code, o.off_cents) for o in priced.offers] == [("券 减10", 1_000)]
    assert priced.total_cents == 34_000


def test_a_coupons_minimum_spend_is_met_after_the_offers_before_it() -> None:
    # 满300减30 first: 310 → 280, under the coupon's 300 → refused; the coupon first: 310 → 300 → 270.
    coupon = Offer("券 满300减10", AmountOff(1_000), min_spend_cents=30_000)
    late = refusal([line(31_000)], coupon, promotions=[FULL_300_OFF_30])
    early = price_cart(
        [line(31_000)], now=NOW, promotions=[FULL_300_OFF_30], coupons=[replace(coupon, priority=-1)]
    )

    assert late.code is ErrorCode.COUPON_NOT_APPLICABLE
    assert early.total_cents == 27_000


def test_promotions_out_of_their_window_or_out_of_scope_do_not_apply() -> None:
    ended = Offer("ended", AmountOff(1_000), valid_until=NOW)
    books_only = Offer("books", AmountOff(1_000), scope=Scope.of_categories("books"))

    priced = price_cart([line(20_000)], now=NOW, promotions=[ended, books_only])

    assert (priced.offers, priced.total_cents) == ((), 20_000)


def test_an_offer_code_may_appear_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        price_cart([line(1_000)], now=NOW, promotions=[COUPON_10_OFF], coupons=[COUPON_10_OFF])


def test_an_empty_cart_has_no_price() -> None:
    with pytest.raises(ValueError):
        price_cart([], now=NOW)


# -- allocation -------------------------------------------------------------------------------------


def test_allocation_hands_leftover_cents_to_the_largest_remainders_then_the_earlier_line() -> None:
    assert allocate(1_500, [6_000, 5_000, 0]) == (818, 682, 0)
    assert allocate(100, [1, 1, 1]) == (34, 33, 33)  # equal remainders: the first line
    assert allocate(0, [0, 0]) == (0, 0)


@given(
    amount=st.integers(0, 10**7),
    weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=8).filter(lambda w: sum(w) > 0),
)
def test_allocation_sums_exactly_and_stays_within_a_cent_of_the_proportion(
    amount: int, weights: list[int]
) -> None:
    parts = allocate(amount, weights)
    total = sum(weights)

    assert sum(parts) == amount
    assert all(abs(part * total - amount * w) < total for part, w in zip(parts, weights, strict=True))
    if amount <= total:
        assert all(0 <= part <= w for part, w in zip(parts, weights, strict=True))


# -- properties over random carts -------------------------------------------------------------------

TIERS = ("gold", "silver")
CATEGORIES = ("books", "toys", "food")
cents = st.integers(0, 50_000)
cart_lines = st.builds(
    CartLine,
    product_id=st.integers(1, 6),
    category=st.sampled_from(CATEGORIES),
    qty=st.integers(1, 3),
    list_unit_cents=cents,
    member_unit_cents=st.dictionaries(st.sampled_from(TIERS), cents, max_size=2),
    flash=st.none() | st.builds(FlashPrice, cents, st.booleans()),
)
discounts = st.one_of(
    st.builds(AmountOff, st.integers(1, 20_000)),
    st.builds(PercentOff, st.integers(1, 100)),
    st.builds(
        lambda t, o: TieredOff.of((t, o), (2 * t, 2 * o)), st.integers(1, 60_000), st.integers(1, 10_000)
    ),
    st.integers(1, 40_000).flatmap(lambda step: st.builds(EveryOff, st.just(step), st.integers(1, step))),
)
scopes = st.sampled_from(
    [
        Scope(),
        Scope(),
        Scope.of_categories("books"),
        Scope.of_categories("toys", "food"),
        Scope.of_products(1, 2),
    ]
)
# Mostly offers in force, so that most random carts price rather than refuse an expired coupon.
windows = st.sampled_from(
    [(None, None), (None, None), (None, None), (NOW - HOUR, NOW + HOUR), (NOW - 2 * HOUR, NOW - HOUR)]
)


@st.composite
def offer_lists(draw: st.DrawFn, prefix: str, max_size: int) -> tuple[Offer, ...]:
    offers = []
    for i in range(draw(st.integers(0, max_size))):
        valid_from, valid_until = draw(windows)
        offers.append(
            Offer(
                f"{prefix}{i}",
                draw(discounts),
                scope=draw(scopes),
                min_spend_cents=draw(st.sampled_from([0, 0, 10_000, 30_000])),
                cap_cents=draw(st.none() | st.integers(1, 20_000)),
                group=draw(st.sampled_from([None, None, "a", "b"])),
                priority=draw(st.integers(0, 2)),
                valid_from=valid_from,
                valid_until=valid_until,
            )
        )
    return tuple(offers)


@dataclass(frozen=True)
class Case:
    lines: list[CartLine]
    tier: str | None
    promotions: tuple[Offer, ...]
    coupons: tuple[Offer, ...]
    shipping: Shipping

    def price(self, lines: Sequence[CartLine] | None = None) -> PricedCart | ErrorCode:
        """The priced cart, or the code an applied coupon was refused with."""
        try:
            return price_cart(
                self.lines if lines is None else lines,
                now=NOW,
                tier=self.tier,
                promotions=self.promotions,
                coupons=self.coupons,
                shipping=self.shipping,
            )
        except FlashSaleError as refused:
            return refused.code


cases = st.builds(
    Case,
    lines=st.lists(cart_lines, min_size=1, max_size=6),
    tier=st.sampled_from([None, *TIERS]),
    promotions=offer_lists("P", 4),
    coupons=offer_lists("C", 2),
    shipping=st.builds(Shipping, st.integers(0, 2_000), st.none() | st.integers(0, 100_000)),
)


@settings(max_examples=300)
@given(case=cases)
def test_every_discount_is_allocated_exactly_and_the_lines_add_up_to_the_total(case: Case) -> None:
    priced = case.price()
    if isinstance(priced, ErrorCode):
        assert priced in (ErrorCode.COUPON_EXPIRED, ErrorCode.COUPON_NOT_APPLICABLE)
        return

    assert priced.total_cents >= 0
    assert all(p.total_cents >= 0 for p in priced.lines)
    for offer in priced.offers:
        assert sum(offer.shares) == offer.off_cents >= 0
    for i, p in enumerate(priced.lines):
        assert p.subtotal_cents == p.unit_price_cents * p.qty
        # a member price never costs more than the list; a flash price may, by the operator's override
        assert p.subtotal_cents <= p.list_total_cents or p.price_kind is PriceKind.FLASH
        assert p.total_cents == p.subtotal_cents + sum(a.amount_cents for a in p.adjustments)
        assert [-a.amount_cents for a in p.adjustments] == [o.shares[i] for o in priced.offers if o.shares[i]]
    assert priced.goods_cents == priced.subtotal_cents - sum(o.off_cents for o in priced.offers)
    assert priced.total_cents == sum(p.total_cents for p in priced.lines) + priced.shipping_cents
    assert priced.shipping_cents in (0, case.shipping.fee_cents)


@settings(max_examples=300)
@given(case=cases, data=st.data())
def test_the_price_does_not_depend_on_the_order_of_the_lines(case: Case, data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(case.lines))

    priced, reordered = case.price(), case.price(shuffled)

    if isinstance(priced, ErrorCode) or isinstance(reordered, ErrorCode):
        assert priced == reordered
        return
    assert reordered.total_cents == priced.total_cents
    assert reordered.shipping_cents == priced.shipping_cents
    assert [(o.code, o.off_cents) for o in reordered.offers] == [(o.code, o.off_cents) for o in priced.offers]


@given(case=cases)
def test_flash_lines_that_refuse_coupons_carry_no_coupon(case: Case) -> None:
    priced = case.price()
    if isinstance(priced, ErrorCode):
        return

    for i, cart_line in enumerate(case.lines):
        if not cart_line.accepts_coupons:
            assert all(o.shares[i] == 0 for o in priced.offers if o.source is OfferSource.COUPON)


@settings(max_examples=300)
@given(case=cases, data=st.data())
def test_an_exclusive_group_choice_is_never_beaten_by_leaving_a_member_out(
    case: Case, data: st.DataObject
) -> None:
    grouped = [p for p in case.promotions if p.group is not None]
    priced = case.price()
    if not grouped or isinstance(priced, ErrorCode):
        return
    left_out = data.draw(st.sampled_from(grouped))

    fewer = replace(case, promotions=tuple(p for p in case.promotions if p != left_out)).price()

    assert not isinstance(fewer, ErrorCode)
    assert priced.total_cents <= fewer.total_cents
