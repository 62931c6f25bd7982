"""Redeem and restore on every coupon engine: idempotent per order, the budget taken and given back once."""

from __future__ import annotations

import pytest

from flashsale.clock import ManualClock
from flashsale.coupons import CouponLedger
from flashsale.domain.coupons import Coupon, CouponState, WaveTerms
from flashsale.domain.errors import ErrorCode, FlashSaleError
from tests.contract.coupons.conftest import VALID_UNTIL, wave_terms


def claimed(coupons: CouponLedger, user: str = "ann", request_id: str = "r1", wave_id: int = 1) -> Coupon:
    coupon = coupons.claim(wave_id=wave_id, user_id=user, request_id=request_id).coupon
    assert coupon is not None
    return coupon


def test_redeem_marks_the_coupon_used_and_takes_the_discount_from_the_budget(
    coupons: CouponLedger, wave: WaveTerms
) -> None:
    coupon = claimed(coupons)
    used = coupons.redeem(coupon.coupon_id, order_id="o1", discount_cents=300)
    assert (used.state, used.order_id, used.discount_cents) == (CouponState.REDEEMED, "o1", 300)
    assert coupons.get(coupon.coupon_id) == used
    assert coupons.budget_level(1) == (1, 1_000, 300)


def test_redeeming_again_for_the_same_order_charges_the_budget_once(
    coupons: CouponLedger, wave: WaveTerms
) -> None:
    coupon = claimed(coupons)
    first = coupons.redeem(coupon.coupon_id, order_id="o1", discount_cents=300)
    assert coupons.redeem(coupon.coupon_id, order_id="o1", discount_cents=300) == first
    assert coupons.budget_level(1).spent_cents == 300


def test_a_coupon_used_by_one_order_is_refused_to_another(coupons: CouponLedger, wave: WaveTerms) -> None:
    coupon = claimed(coupons)
    coupons.redeem(coupon.coupon_id, order_id="o1", discount_cents=300)
    with pytest.raises(FlashSaleError) as refused:
        coupons.redeem(coupon.coupon_id, order_id="o2", discount_cents=300)
    assert refused.value.code is ErrorCode.COUPON_USED
    assert coupons.budget_level(1).spent_cents == 300


def test_a_discount_the_budget_cannot_cover_is_refused_and_changes_nothing(
    coupons: CouponLedger, wave: WaveTerms
) -> None:
    ann, bob = claimed(coupons), claimed(coupons, "bob")
    coupons.redeem(ann.coupon_id, order_id="o1", discount_cents=800)
    with pytest.raises(FlashSaleError) as refused:
        coupons.redeem(bob.coupon_id, order_id="o2", discount_cents=201)
    assert refused.value.code is ErrorCode.BUDGET_EXHAUSTED
    assert coupons.get(bob.coupon_id) == bob
    assert coupons.redeem(bob.coupon_id, order_id="o2", discount_cents=200).state is CouponState.REDEEMED
    assert coupons.budget_level(1) == (1, 1_000, 1_000)


def test_a_template_without_budget_discounts_without_ceiling(coupons: CouponLedger) -> None:
    coupons.configure_budget(1, None)
    coupons.configure_wave(wave_terms())
    coupon = claimed(coupons)
    coupons.redeem(coupon.coupon_id, order_id="o1", discount_cents=10**9)
    assert coupons.budget_level(1) == (1, None, 10**9)


def test_a_budget_below_what_is_spent_is_refused(coupons: CouponLedger, wave: WaveTerms) -> None:
    coupons.redeem(claimed(coupons).coupon_id, order_id="o1", discount_cents=600)
    with pytest.raises(FlashSaleError) as refused:
        coupons.configure_budget(1, 500)
    assert refused.value.code is ErrorCode.CONFLICT
    assert coupons.configure_budget(1, 600) == (1, 600, 600)


def test_redeem_outside_the_validity_window_is_refused(
    coupons: CouponLedger, wave: WaveTerms, clock: ManualClock
) -> None:
    coupon = claimed(coupons)
    clock.set(VALID_UNTIL)
    with pytest.raises(FlashSaleError) as refused:
        coupons.redeem(coupon.coupon_id, order_id="o1", discount_cents=100)
    assert refused.value.code is ErrorCode.COUPON_EXPIRED
    assert coupons.budget_level(1).spent_cents == 0


def test_an_unknown_coupon_is_refused(coupons: CouponLedger, wave: WaveTerms) -> None:
    for call in (
        lambda: coupons.redeem("nope", order_id="o1", discount_cents=1),
        lambda: coupons.restore("nope", order_id="o1"),
    ):
        with pytest.raises(FlashSaleError) as refused:
            call()
        assert refused.value.code is ErrorCode.UNKNOWN_COUPON


def test_restore_gives_the_budget_back_once_and_the_coupon_is_usable_again(
    coupons: CouponLedger, wave: WaveTerms
) -> None:
    coupon = claimed(coupons)
    coupons.redeem(coupon.coupon_id, order_id="o1", discount_cents=300)
    back = coupons.restore(coupon.coupon_id, order_id="o1")
    assert (back.state, back.order_id, back.discount_cents) == (CouponState.AVAILABLE, None, 0)
    assert coupons.restore(coupon.coupon_id, order_id="o1") == back
    assert coupons.budget_level(1).spent_cents == 0
    assert coupons.redeem(coupon.coupon_id, order_id="o2", discount_cents=100).order_id == "o2"


def test_a_redemption_that_took_nothing_off_is_restored_too(coupons: CouponLedger, wave: WaveTerms) -> None:
    """A coupon used by an order it took 0 off (below its threshold) comes back like any other."""
    coupon = claimed(coupons)
    coupons.redeem(coupon.coupon_id, order_id="o1", discount_cents=0)
    back = coupons.restore(coupon.coupon_id, order_id="o1")
    assert (back.state, back.order_id) == (CouponState.AVAILABLE, None)
    assert coupons.budget_level(1).spent_cents == 0


def test_an_old_orders_restore_does_not_free_the_coupon_another_order_uses(
    coupons: CouponLedger, wave: WaveTerms
) -> None:
    coupon = claimed(coupons)
    coupons.redeem(coupon.coupon_id, order_id="o1", discount_cents=300)
    coupons.restore(coupon.coupon_id, order_id="o1")
    now_used = coupons.redeem(coupon.coupon_id, order_id="o2", discount_cents=200)
    assert coupons.restore(coupon.coupon_id, order_id="o1") == now_used
    assert coupons.budget_level(1).spent_cents == 200


def test_restore_after_the_validity_window_lapses_the_coupon_but_returns_the_budget(
    coupons: CouponLedger, wave: WaveTerms, clock: ManualClock
) -> None:
    coupon = claimed(coupons)
    coupons.redeem(coupon.coupon_id, order_id="o1", discount_cents=300)
    clock.set(VALID_UNTIL + 1)
    assert coupons.restore(coupon.coupon_id, order_id="o1").state is CouponState.LAPSED
    assert coupons.budget_level(1).spent_cents == 0
    with pytest.raises(FlashSaleError) as refused:
        coupons.redeem(coupon.coupon_id, order_id="o2", discount_cents=1)
    assert refused.value.code is ErrorCode.COUPON_EXPIRED


def test_a_redeemed_coupon_cannot_be_revoked(coupons: CouponLedger, wave: WaveTerms) -> None:
    coupon = claimed(coupons)
    used = coupons.redeem(coupon.coupon_id, order_id="o1", discount_cents=300)
    coupons.revoke(coupon.coupon_id)
    assert coupons.get(coupon.coupon_id) == used
    assert coupons.wave_level(1).issued == 1
