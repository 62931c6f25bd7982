"""Claims on every coupon engine: one decision each, in the contract's order, idempotent per request id."""

from __future__ import annotations

import pytest

from flashsale.clock import ManualClock
from flashsale.coupons import CouponLedger
from flashsale.domain.coupons import CouponState, WaveTerms
from flashsale.domain.errors import ErrorCode
from tests.contract.coupons.conftest import VALID_UNTIL, CouponLedgerFactory, wave_terms
from tests.factories import OPENS_AT


def test_a_claim_issues_one_available_coupon_of_the_wave(coupons: CouponLedger, wave: WaveTerms) -> None:
    decision = coupons.claim(wave_id=1, user_id="ann", request_id="r1")
    assert decision.granted and not decision.replayed
    coupon = decision.coupon
    assert coupon is not None
    assert (coupon.wave_id, coupon.template_id, coupon.user_id, coupon.state) == (
        1,
        1,
        "ann",
        CouponState.AVAILABLE,
    )
    assert (coupon.valid_from, coupon.valid_until) == (wave.valid_from, wave.valid_until)
    assert coupons.get(coupon.coupon_id) == coupon
    assert coupons.coupons_of("ann") == [coupon]
    assert coupons.wave_level(1).issued == 1


def test_the_same_request_id_replays_the_same_coupon_and_issues_nothing_more(
    coupons: CouponLedger, wave: WaveTerms
) -> None:
    first = coupons.claim(wave_id=1, user_id="ann", request_id="r1")
    again = coupons.claim(wave_id=1, user_id="ann", request_id="r1")
    assert again.replayed and again.coupon == first.coupon
    assert coupons.wave_level(1).issued == 1


def test_a_request_id_reused_for_another_wave_is_a_mismatch(coupons: CouponLedger, wave: WaveTerms) -> None:
    coupons.configure_wave(wave_terms(2, per_user_limit=3))
    coupons.claim(wave_id=1, user_id="ann", request_id="r1")
    assert coupons.claim(wave_id=2, user_id="ann", request_id="r1").code is ErrorCode.IDEMPOTENCY_MISMATCH
    assert coupons.wave_level(2).issued == 0


def test_an_unknown_wave_is_refused(coupons: CouponLedger) -> None:
    assert coupons.claim(wave_id=9, user_id="ann", request_id="r1").code is ErrorCode.UNKNOWN_COUPON


@pytest.mark.parametrize(
    ("offset_s", "code"),
    [(-1.0, ErrorCode.COUPON_NOT_STARTED), (3_600.0, ErrorCode.COUPON_CLAIM_CLOSED)],
)
def test_a_claim_outside_the_wave_window_is_refused_and_changes_nothing(
    make_coupon_ledger: CouponLedgerFactory, offset_s: float, code: ErrorCode
) -> None:
    coupons = make_coupon_ledger(ManualClock(OPENS_AT + offset_s))
    coupons.configure_wave(wave_terms()._replace(closes=OPENS_AT + 3_600.0))
    assert coupons.claim(wave_id=1, user_id="ann", request_id="r1").code is code
    assert coupons.wave_level(1).issued == 0
    assert coupons.coupons_of("ann") == []


def test_the_per_user_limit_comes_before_the_total(coupons: CouponLedger) -> None:
    coupons.configure_wave(wave_terms(total=2, per_user_limit=1))
    coupons.claim(wave_id=1, user_id="ann", request_id="r1")
    coupons.claim(wave_id=1, user_id="bob", request_id="r1")
    assert coupons.claim(wave_id=1, user_id="ann", request_id="r2").code is ErrorCode.COUPON_LIMIT
    assert coupons.claim(wave_id=1, user_id="cat", request_id="r1").code is ErrorCode.COUPON_ISSUE_EXHAUSTED
    assert coupons.wave_level(1) == (1, 2, 2)


def test_a_refused_claim_is_not_remembered(coupons: CouponLedger) -> None:
    coupons.configure_wave(wave_terms(total=1))
    coupons.claim(wave_id=1, user_id="ann", request_id="r1")
    assert coupons.claim(wave_id=1, user_id="bob", request_id="r1").code is ErrorCode.COUPON_ISSUE_EXHAUSTED
    coupons.configure_wave(wave_terms(total=2))  # the operator adds one
    assert coupons.claim(wave_id=1, user_id="bob", request_id="r1").granted


def test_lowering_the_total_below_issued_keeps_what_is_issued_and_issues_no_more(
    coupons: CouponLedger,
) -> None:
    coupons.configure_wave(wave_terms(total=3, per_user_limit=3))
    for n in range(3):
        coupons.claim(wave_id=1, user_id="ann", request_id=f"r{n}")
    assert coupons.configure_wave(wave_terms(total=1, per_user_limit=3)) == (1, 1, 3)
    assert coupons.claim(wave_id=1, user_id="bob", request_id="r1").code is ErrorCode.COUPON_ISSUE_EXHAUSTED


def test_a_revoked_claim_gives_its_place_back(coupons: CouponLedger) -> None:
    coupons.configure_wave(wave_terms(total=1))
    coupon = coupons.claim(wave_id=1, user_id="ann", request_id="r1").coupon
    assert coupon is not None
    coupons.revoke(coupon.coupon_id)
    coupons.revoke(coupon.coupon_id)  # idempotent
    assert coupons.get(coupon.coupon_id) is None and coupons.coupons_of("ann") == []
    assert coupons.wave_level(1).issued == 0
    again = coupons.claim(wave_id=1, user_id="ann", request_id="r1")
    assert again.granted and not again.replayed


def test_ids_are_unguessable_and_unique(coupons: CouponLedger) -> None:
    coupons.configure_wave(wave_terms(total=50, per_user_limit=50))
    ids = {coupons.claim(wave_id=1, user_id="ann", request_id=f"r{n}").coupon.coupon_id for n in range(50)}  # type: ignore[union-attr]
    assert len(ids) == 50 and all(len(i) == 24 for i in ids)


def test_load_rebuilds_the_counters_from_the_coupons(
    make_coupon_ledger: CouponLedgerFactory, clock: ManualClock, coupons: CouponLedger, wave: WaveTerms
) -> None:
    ann = coupons.claim(wave_id=1, user_id="ann", request_id="r1").coupon
    assert ann is not None
    used = coupons.redeem(ann.coupon_id, order_id="o1", discount_cents=300)
    bob = coupons.claim(wave_id=1, user_id="bob", request_id="r1").coupon
    assert bob is not None

    fresh = make_coupon_ledger(clock)
    assert fresh.load([wave], [(1, 1_000)], [bob, used])
    assert fresh.wave_level(1).issued == 2
    assert fresh.budget_level(1) == (1, 1_000, 300)
    assert fresh.coupons_of("ann") == [used]
    assert fresh.claim(wave_id=1, user_id="bob", request_id="r1").replayed
    assert fresh.claim(wave_id=1, user_id="bob", request_id="r2").code is ErrorCode.COUPON_LIMIT
    assert not fresh.load([], [], [], only_if_empty=True)  # it holds state: kept
    assert fresh.wave_level(1).issued == 2


def test_a_wave_whose_template_expired_hands_out_nothing(
    make_coupon_ledger: CouponLedgerFactory,
) -> None:
    coupons = make_coupon_ledger(ManualClock(VALID_UNTIL))
    coupons.configure_wave(wave_terms())
    assert coupons.claim(wave_id=1, user_id="ann", request_id="r1").code is ErrorCode.COUPON_CLAIM_CLOSED
