"""The margin check: worst-case unit prices worked out by hand, and properties over random coupons."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flashsale.domain.margin import ItemOnSale, UnitCosts, worst_case
from flashsale.domain.promotions import AmountOff, Offer, PercentOff, Scope, TieredOff


def item(*, flash: int = 5_000, coupons_allowed: bool = True, costs: UnitCosts | None = None) -> ItemOnSale:
    return ItemOnSale(
        item_id=1,
        product_id=7,
        sku="TEA",
        list_price_cents=9_900,
        flash_price_cents=flash,
        coupons_allowed=coupons_allowed,
        costs=costs or UnitCosts(),
    )


def test_without_coupons_the_worst_price_is_the_flash_price() -> None:
    margin = worst_case(item(costs=UnitCosts(3_000, 800, 500)), [])
    # 50.00 - 30.00 cost - 8.00 shipping - 5 % fee (2.50) = 9.50
    assert (margin.worst_price_cents, margin.fee_cents, margin.margin_cents, margin.loss) == (
        5_000,
        250,
        950,
        False,
    )


def test_a_threshold_coupon_counts_with_other_goods_carrying_the_cart_over_it() -> None:
    # 满300减30 on a 50 item: a cart filled to 300 with other goods gives the item 30 x 50/300 = 5 off.
    margin = worst_case(item(), [Offer("C300", TieredOff.of((30_000, 3_000)))])
    assert (margin.worst_price_cents, margin.offers) == (4_500, ("C300",))


def test_the_higher_tier_is_tried_when_it_gives_a_larger_share() -> None:
    # 满300减30 gives 10 %, 满500减60 12 %: the item's worst share is 6,000 x 5,000/50,000 = 600.
    margin = worst_case(item(), [Offer("T", TieredOff.of((30_000, 3_000), (50_000, 6_000)))])
    assert margin.worst_price_cents == 4_400


def test_stackable_coupons_all_apply_and_grouped_ones_give_their_best() -> None:
    coupons = [
        Offer("RED", AmountOff(1_000), priority=0),  # a red packet: 10 off the item alone
        Offer("P20", PercentOff(20), group="pct", priority=1),
        Offer("P10", PercentOff(10), group="pct", priority=1),
    ]
    # 50 - 10 = 40, then 20 % of 40 = 8: 32 (P10 loses its group to P20).
    margin = worst_case(item(), coupons)
    assert (margin.worst_price_cents, margin.offers) == (3_200, ("RED", "P20"))


def test_a_flash_price_that_refuses_coupons_is_its_own_worst_case() -> None:
    margin = worst_case(item(coupons_allowed=False), [Offer("RED", AmountOff(1_000))])
    assert (margin.worst_price_cents, margin.offers) == (5_000, ())


def test_a_coupon_for_other_products_does_not_touch_the_item_but_a_category_one_is_assumed_to() -> None:
    other = Offer("OTHER", AmountOff(1_000), scope=Scope.of_products(99))
    category = Offer("TEA", AmountOff(700), scope=Scope.of_categories("tea"))
    assert worst_case(item(), [other, category]).worst_price_cents == 4_300


def test_a_seeded_loss_maker_is_flagged() -> None:
    # 50 flash, 15 red packet stacked: 35 paid; cost 30 + shipping 6 + 2 % fee (0.70): 1.70 lost per unit.
    margin = worst_case(item(costs=UnitCosts(3_000, 600, 200)), [Offer("RED15", AmountOff(1_500))])
    assert (margin.worst_price_cents, margin.fee_cents, margin.margin_cents, margin.loss) == (
        3_500,
        70,
        -170,
        True,
    )


offers = st.lists(
    st.one_of(
        st.builds(lambda off: AmountOff(off), st.integers(1, 20_000)),
        st.builds(lambda pct: PercentOff(pct), st.integers(1, 100)),
        st.builds(
            lambda t, off: TieredOff.of((t, min(off, t))), st.integers(1, 100_000), st.integers(1, 20_000)
        ),
    ),
    max_size=4,
)


@given(offers, st.integers(0, 50_000), st.booleans())
def test_the_worst_price_lies_between_zero_and_the_flash_price_and_the_margin_adds_up(
    discounts: list[AmountOff | PercentOff | TieredOff], flash: int, allowed: bool
) -> None:
    costs = UnitCosts(1_000, 300, 250)
    sale = item(flash=flash, coupons_allowed=allowed, costs=costs)
    margin = worst_case(sale, [Offer(f"C{n}", d) for n, d in enumerate(discounts)])
    assert 0 <= margin.worst_price_cents <= flash
    assert margin.margin_cents == margin.worst_price_cents - 1_000 - 300 - margin.fee_cents
    assert margin.fee_cents * 10_000 >= margin.worst_price_cents * 250  # rounded up
    fewer = worst_case(sale, [Offer(f"C{n}", d) for n, d in enumerate(discounts[:-1])])
    assert (
        margin.worst_price_cents <= fewer.worst_price_cents
    )  # another stackable coupon never helps the shop
