"""Coupon templates as the price engine's coupons, and the rules of claims and redemptions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flashsale.domain.coupons import (
    Coupon,
    CouponKind,
    CouponState,
    CouponTemplate,
    CouponWave,
    WaveTerms,
    check_claim,
    check_redeem,
    restored_state,
)
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.price_engine import CartLine, FlashPrice, price_cart
from flashsale.domain.promotions import Tier
from tests.conftest import T0

WEEK = T0 + timedelta(days=7)


def template(**changes: object) -> CouponTemplate:
    fields: dict[str, object] = {
        "id": 1,
        "name": "满300减30",
        "kind": CouponKind.THRESHOLD,
        "valid_from": T0,
        "valid_until": WEEK,
        "tiers": (Tier(30_000, 3_000),),
    }
    return CouponTemplate(**{**fields, **changes})  # type: ignore[arg-type]


TEA = CartLine(product_id=1, category="tea", qty=2, list_unit_cents=12_000)
CUP = CartLine(product_id=2, category="cups", qty=1, list_unit_cents=8_000)


def test_a_threshold_template_takes_30_off_a_cart_of_320() -> None:
    priced = price_cart([TEA, CUP], now=T0, coupons=[template().to_offer("c1")])
    assert (priced.subtotal_cents, priced.total_cents) == (32_000, 29_000)
    assert [a.code for a in priced.offers] == ["c1"]


def test_a_percent_template_is_capped_and_scoped_to_its_category() -> None:
    pct = template(
        kind=CouponKind.PERCENT, percent=50, tiers=(), cap_cents=5_000, categories=frozenset({"tea"})
    )
    priced = price_cart([TEA, CUP], now=T0, coupons=[pct.to_offer("c1")])
    assert priced.total_cents == 32_000 - 5_000
    assert priced.lines[1].total_cents == 8_000  # the cup is out of scope


def test_an_amount_template_with_a_minimum_spend_refuses_a_small_cart() -> None:
    red = template(kind=CouponKind.AMOUNT, off_cents=1_000, tiers=(), min_spend_cents=50_000)
    with pytest.raises(FlashSaleError) as refused:
        price_cart([TEA, CUP], now=T0, coupons=[red.to_offer("c1")])
    assert refused.value.code is ErrorCode.COUPON_NOT_APPLICABLE


def test_a_template_is_refused_on_a_flash_line_that_refuses_coupons_and_outside_its_window() -> None:
    flash = CartLine(product_id=3, category="phones", qty=1, list_unit_cents=99_900, flash=FlashPrice(59_900))
    with pytest.raises(FlashSaleError) as refused:
        price_cart([flash], now=T0, coupons=[template().to_offer("c1")])
    assert refused.value.code is ErrorCode.COUPON_NOT_APPLICABLE
    with pytest.raises(FlashSaleError) as refused:
        price_cart([TEA, CUP], now=WEEK, coupons=[template().to_offer("c1")])
    assert refused.value.code is ErrorCode.COUPON_EXPIRED


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": CouponKind.AMOUNT, "off_cents": 0},
        {"kind": CouponKind.PERCENT, "percent": 101},
        {"tiers": ()},
        {"tiers": (Tier(30_000, 3_000), Tier(20_000, 4_000))},
        {"valid_until": T0},
        {"budget_cents": -1},
        {"name": ""},
    ],
)
def test_a_template_that_does_not_add_up_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        template(**changes)


def test_a_wave_needs_a_total_a_limit_and_an_end_after_its_start() -> None:
    for bad in (
        {"total": 0},
        {"per_user_limit": 0},
        {"ends_at": T0},
    ):
        with pytest.raises(ValueError):
            CouponWave(**{"id": 1, "template_id": 1, "starts_at": T0, "total": 5, **bad})  # type: ignore[arg-type]


TERMS = WaveTerms(1, 1, 2, 1, T0.timestamp(), T0.timestamp() + 3_600, T0.timestamp(), WEEK.timestamp())


@pytest.mark.parametrize(
    ("now", "by_user", "issued", "code"),
    [
        (-1, 0, 0, ErrorCode.COUPON_NOT_STARTED),
        (3_600, 0, 0, ErrorCode.COUPON_CLAIM_CLOSED),
        (0, 1, 2, ErrorCode.COUPON_LIMIT),  # the shopper's own limit first, whatever is left
        (0, 0, 2, ErrorCode.COUPON_ISSUE_EXHAUSTED),
        (0, 0, 1, None),
    ],
)
def test_claim_rules_in_their_order(now: float, by_user: int, issued: int, code: ErrorCode | None) -> None:
    assert check_claim(TERMS, now=T0.timestamp() + now, claimed_by_user=by_user, issued=issued) is code


COUPON = Coupon("c", 1, 1, "ann", "r", CouponState.AVAILABLE, 0.0, T0.timestamp(), WEEK.timestamp())


def test_redeem_rules() -> None:
    now = T0.timestamp()
    assert check_redeem(COUPON, order_id="o", discount_cents=5, now=now, budget_left=5) is None
    assert (
        check_redeem(COUPON, order_id="o", discount_cents=6, now=now, budget_left=5)
        is ErrorCode.BUDGET_EXHAUSTED
    )
    assert check_redeem(COUPON, order_id="o", discount_cents=6, now=now, budget_left=None) is None
    later = WEEK.timestamp()
    assert (
        check_redeem(COUPON, order_id="o", discount_cents=1, now=later, budget_left=None)
        is ErrorCode.COUPON_EXPIRED
    )
    used = COUPON._replace(state=CouponState.REDEEMED, order_id="o")
    assert check_redeem(used, order_id="o", discount_cents=1, now=now, budget_left=0) is None  # a replay
    assert (
        check_redeem(used, order_id="p", discount_cents=1, now=now, budget_left=None) is ErrorCode.COUPON_USED
    )
    assert restored_state(used, now) is CouponState.AVAILABLE
    assert restored_state(used, later) is CouponState.LAPSED
