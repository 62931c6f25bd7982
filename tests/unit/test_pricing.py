"""Property tests of the price step: totals add up, discounts never go below zero, coupons need leave."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashsale.domain.catalog import Product
from flashsale.domain.pricing import Adjustment, PriceQuote, PriceStep, StepKind, quote_flash_line
from flashsale.domain.sale import FlashItem


@dataclass(frozen=True, slots=True)
class Fixed:
    """A step worth a fixed amount per line: a coupon (-), a 满减 (-) or a fee (+)."""

    kind: StepKind
    amount_cents: int

    def adjust(self, subtotal_cents: int, qty: int) -> Adjustment | None:
        return (
            Adjustment(f"{self.kind} {self.amount_cents}", self.amount_cents) if self.amount_cents else None
        )


@dataclass(frozen=True, slots=True)
class PercentOff:
    """A step taking a share of what the line costs so far."""

    kind: StepKind
    percent: int

    def adjust(self, subtotal_cents: int, qty: int) -> Adjustment | None:
        return Adjustment(f"{self.kind} {self.percent}% off", -(subtotal_cents * self.percent // 100))


kinds = st.sampled_from(StepKind)
discounts = st.one_of(
    st.builds(Fixed, kinds, st.integers(-50_000, 0)), st.builds(PercentOff, kinds, st.integers(0, 100))
)
any_steps = st.lists(st.one_of(discounts, st.builds(Fixed, kinds, st.integers(1, 50_000))), max_size=6)
items = st.builds(
    FlashItem,
    id=st.just(1),
    session_id=st.just(1),
    product_id=st.just(1),
    flash_price_cents=st.integers(0, 1_000_000),
    quota=st.just(100),
    per_user_limit=st.just(5),
    coupons_allowed=st.booleans(),
)
PRODUCT = Product(1, "SKU", "Phone", 1_299_900, 100)
quantities = st.integers(1, 5)


def quote(item: FlashItem, qty: int, steps: list[PriceStep]) -> PriceQuote:
    return quote_flash_line(item, PRODUCT, qty, steps)


@given(item=items, qty=quantities, steps=any_steps)
def test_the_total_is_the_subtotal_plus_every_adjustment(
    item: FlashItem, qty: int, steps: list[PriceStep]
) -> None:
    priced = quote(item, qty, steps)

    assert priced.subtotal_cents == item.flash_price_cents * qty
    assert priced.list_total_cents == PRODUCT.list_price_cents * qty
    assert (priced.unit_price_cents, priced.qty) == (item.flash_price_cents, qty)
    assert priced.total_cents == priced.subtotal_cents + sum(a.amount_cents for a in priced.adjustments)


@given(item=items, qty=quantities, steps=st.lists(discounts, max_size=6))
def test_discounts_alone_never_take_the_total_below_zero_or_above_the_subtotal(
    item: FlashItem, qty: int, steps: list[PriceStep]
) -> None:
    priced = quote(item, qty, steps)

    assert 0 <= priced.total_cents <= priced.subtotal_cents
    assert all(a.amount_cents <= 0 for a in priced.adjustments)


def running_total(subtotal: int, qty: int, steps: list[PriceStep]) -> int:
    """Apply each step to what the line costs so far; a discount stops at zero, a fee never does."""
    total = subtotal
    for step in steps:
        adj = step.adjust(total, qty)
        amount = 0 if adj is None else adj.amount_cents
        total = total + amount if amount >= 0 else max(0, total + amount)
    return total


@given(item=items, qty=quantities, steps=any_steps)
def test_coupon_steps_count_only_when_the_item_allows_stacking(
    item: FlashItem, qty: int, steps: list[PriceStep]
) -> None:
    promotions_only: list[PriceStep] = [s for s in steps if s.kind is StepKind.PROMOTION]

    priced = quote(item, qty, steps)

    counted = steps if item.coupons_allowed else promotions_only
    assert priced.total_cents == running_total(priced.subtotal_cents, qty, counted)
    if not item.coupons_allowed:
        assert priced == quote(item, qty, promotions_only)


@given(price=st.integers(1, 1_000_000), qty=quantities, off=st.integers(1, 1_000))
def test_a_coupon_applies_on_an_item_that_allows_stacking(price: int, qty: int, off: int) -> None:
    item = FlashItem(1, 1, 1, price, 100, 5, coupons_allowed=True)

    priced = quote(item, qty, [Fixed(StepKind.COUPON, -off)])

    assert priced.total_cents == max(0, price * qty - off)


def test_a_fee_is_added_in_full_even_after_the_discounts_reached_zero() -> None:
    item = FlashItem(1, 1, 1, 1_000, 100, 5)

    priced = quote(item, 1, [Fixed(StepKind.PROMOTION, -5_000), Fixed(StepKind.PROMOTION, 300)])

    assert [a.amount_cents for a in priced.adjustments] == [-1_000, 300]
    assert priced.total_cents == 300


@pytest.mark.parametrize("qty", [0, -1])
def test_a_line_needs_at_least_one_unit(qty: int) -> None:
    with pytest.raises(ValueError):
        quote(FlashItem(1, 1, 1, 1_000, 100, 5), qty, [])
