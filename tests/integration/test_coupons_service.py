"""The coupon service on every engine: claims recorded in the store, rebuilt after a restart, crowds
capped, single-use codes won once, redeem and restore written through."""

from __future__ import annotations

from collections import Counter
from functools import partial

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.coupons.redis import RedisCouponLedger
from flashsale.domain.coupons import CouponState, CouponWave
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.services.coupons import Claimed, load_coupon_ledger
from flashsale.store.coupon_repository import all_wave_terms
from flashsale.store.tables import CouponCodeRow, CouponRow, CouponWaveRow
from tests.conftest import T0
from tests.engines import POSTGRES, POSTGRES_REDIS, SQLITE
from tests.factories import release_together
from tests.integration.coupon_support import open_wave, threshold_template

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)  # the two ends (see tests/engines.py)


def stored_coupons(platform: Platform) -> list[CouponRow]:
    with platform.deps.read() as unit:
        return list(unit.db.scalars(select(CouponRow)))


def claim_or_code(call: partial[Claimed]) -> Claimed | ErrorCode:
    try:
        return call()
    except FlashSaleError as exc:
        return exc.code


def test_a_claim_is_recorded_and_listed_with_its_template(platform: Platform) -> None:
    view = open_wave(platform)
    claimed = platform.coupons.claim(user_id="ann", wave_id=view.wave.id, request_id="r1")
    assert [row.id for row in stored_coupons(platform)] == [claimed.coupon.coupon_id]
    mine = platform.coupons.my_coupons("ann")
    assert [(c.coupon, c.template.name) for c in mine] == [(claimed.coupon, "满300减30")]
    again = platform.coupons.claim(user_id="ann", wave_id=view.wave.id, request_id="r1")
    assert again.replayed and again.coupon == claimed.coupon
    assert len(stored_coupons(platform)) == 1


def test_claims_and_redemptions_survive_a_restart(platform: Platform, clock: ManualClock) -> None:
    view = open_wave(platform, total=2)
    ann = platform.coupons.claim(user_id="ann", wave_id=view.wave.id, request_id="r1").coupon
    platform.coupons.redeem(user_id="ann", coupon_id=ann.coupon_id, order_id="o1", discount_cents=3_000)
    settings, ledger = platform.settings, platform.coupons.ledger
    if isinstance(ledger, RedisCouponLedger):  # Redis lost everything: the store is loaded back
        ledger.client.delete(*ledger.client.scan_iter(match=f"{ledger.prefix}:*"))
    platform.close()

    again = build(settings, clock=clock)
    try:
        assert again.coupons.wave(view.wave.id).level.issued == 1
        assert again.coupons.budget(view.wave.template_id).spent_cents == 3_000
        assert again.coupons.claim(user_id="ann", wave_id=view.wave.id, request_id="r1").replayed
        with pytest.raises(FlashSaleError) as refused:
            again.coupons.claim(user_id="ann", wave_id=view.wave.id, request_id="r2")
        assert refused.value.code is ErrorCode.COUPON_LIMIT
        back = again.coupons.restore(coupon_id=ann.coupon_id, order_id="o1")
        assert back.state is CouponState.AVAILABLE
        assert again.coupons.budget(view.wave.template_id).spent_cents == 0
    finally:
        again.close()


def test_a_crowd_of_claims_through_the_service_stores_exactly_the_total(platform: Platform) -> None:
    view = open_wave(platform, total=15, per_user_limit=2)
    calls = [
        partial(platform.coupons.claim, user_id=f"u{n % 20}", wave_id=view.wave.id, request_id=f"r{n}")
        for n in range(60)
    ]
    answers = release_together([partial(claim_or_code, call) for call in calls])
    won = [a for a in answers if isinstance(a, Claimed)]
    assert len(won) == 15 == len(stored_coupons(platform)) == platform.coupons.wave(view.wave.id).level.issued
    assert max(Counter(a.coupon.user_id for a in won).values()) <= 2
    assert set(a for a in answers if isinstance(a, ErrorCode)) <= {
        ErrorCode.COUPON_LIMIT,
        ErrorCode.COUPON_ISSUE_EXHAUSTED,
    }


def test_redeem_and_restore_are_written_to_the_store(platform: Platform) -> None:
    view = open_wave(platform, budget_cents=5_000)
    coupon = platform.coupons.claim(user_id="ann", wave_id=view.wave.id, request_id="r1").coupon
    with pytest.raises(FlashSaleError) as refused:
        platform.coupons.redeem(
            user_id="bob", coupon_id=coupon.coupon_id, order_id="o1", discount_cents=3_000
        )
    assert refused.value.code is ErrorCode.UNKNOWN_COUPON
    with pytest.raises(FlashSaleError) as refused:
        platform.coupons.redeem(
            user_id="ann", coupon_id=coupon.coupon_id, order_id="o1", discount_cents=6_000
        )
    assert refused.value.code is ErrorCode.BUDGET_EXHAUSTED
    assert stored_coupons(platform)[0].state == "available"

    platform.coupons.redeem(user_id="ann", coupon_id=coupon.coupon_id, order_id="o1", discount_cents=3_000)
    row = stored_coupons(platform)[0]
    assert (row.state, row.order_id, row.discount_cents) == ("redeemed", "o1", 3_000)
    platform.coupons.restore(coupon_id=coupon.coupon_id, order_id="o1")
    row = stored_coupons(platform)[0]
    assert (row.state, row.order_id, row.discount_cents) == ("available", None, 0)


def test_a_single_use_code_is_won_by_one_shopper_however_many_try_at_once(platform: Platform) -> None:
    template = platform.coupons.create_template(threshold_template())
    view, codes = platform.coupons.create_codes(CouponWave(0, template.id, T0, 3, 1))
    assert len(set(codes)) == 3 and view.codes
    calls = [partial(platform.coupons.claim_code, user_id=f"u{n}", code=codes[0]) for n in range(12)]
    answers = release_together([partial(claim_or_code, call) for call in calls])
    won = [a for a in answers if isinstance(a, Claimed)]
    assert len(won) == 1 and Counter(answers)[ErrorCode.COUPON_USED] == 11
    winner = won[0].coupon.user_id
    again = platform.coupons.claim_code(user_id=winner, code=codes[0].lower())
    assert again.replayed and again.coupon == won[0].coupon
    with platform.deps.read() as unit:
        code_row = unit.db.get(CouponCodeRow, codes[0])
        assert code_row is not None and (code_row.user_id, code_row.coupon_id) == (
            winner,
            won[0].coupon.coupon_id,
        )
    assert [c.claimed_by for c in platform.coupons.codes(view.wave.id)].count(None) == 2


@pytest.mark.engines(SQLITE, reason="a refusal before any engine decides")
def test_a_code_wave_is_not_claimed_without_a_code_and_unknown_codes_are_refused(platform: Platform) -> None:
    template = platform.coupons.create_template(threshold_template())
    view, _ = platform.coupons.create_codes(CouponWave(0, template.id, T0, 2, 1))
    for call in (
        partial(platform.coupons.claim, user_id="ann", wave_id=view.wave.id, request_id="r1"),
        partial(platform.coupons.claim_code, user_id="ann", code="NOSUCHCODE"),
    ):
        assert claim_or_code(call) is ErrorCode.UNKNOWN_COUPON
    assert stored_coupons(platform) == []


@pytest.mark.engines(SQLITE, reason="a refusal before any engine decides")
def test_a_wave_of_an_unknown_template_changes_nothing(platform: Platform) -> None:
    with pytest.raises(FlashSaleError) as refused:
        platform.coupons.create_wave(CouponWave(0, 99, T0, 5, 1))
    assert refused.value.code is ErrorCode.NOT_FOUND
    with platform.deps.read() as unit:
        assert unit.db.scalar(select(func.count()).select_from(CouponWaveRow)) == 0


def test_a_crowd_redeeming_against_a_small_budget_never_overspends_and_the_store_agrees(
    platform: Platform,
) -> None:
    view = open_wave(platform, total=40, budget_cents=10_000)
    held = [
        platform.coupons.claim(user_id=f"u{n}", wave_id=view.wave.id, request_id="r").coupon
        for n in range(40)
    ]

    def redeem(n: int) -> object:
        try:
            return platform.coupons.redeem(
                user_id=f"u{n}", coupon_id=held[n].coupon_id, order_id=f"o{n}", discount_cents=3_000
            )
        except FlashSaleError as exc:
            return exc.code

    answers = release_together([partial(redeem, n) for n in range(40)])
    assert Counter(a for a in answers if isinstance(a, ErrorCode)) == {ErrorCode.BUDGET_EXHAUSTED: 37}
    spent = platform.coupons.budget(view.wave.template_id).spent_cents
    rows = stored_coupons(platform)
    assert spent == 9_000 == sum(r.discount_cents for r in rows if r.state == "redeemed")


@pytest.mark.engines(POSTGRES, POSTGRES_REDIS, reason="PostgreSQL enforces column widths; SQLite does not")
def test_a_decision_the_store_refuses_is_undone_in_the_ledger(platform: Platform) -> None:
    view = open_wave(platform, total=1)
    too_long = "u" * 65  # coupons.user_id is VARCHAR(64): the ledger grants, the store refuses
    with pytest.raises(DBAPIError):
        platform.coupons.claim(user_id=too_long, wave_id=view.wave.id, request_id="r1")
    assert platform.coupons.wave(view.wave.id).level.issued == 0  # revoked: the place is free again
    coupon = platform.coupons.claim(user_id="ann", wave_id=view.wave.id, request_id="r1").coupon

    with pytest.raises(DBAPIError):  # coupons.order_id is VARCHAR(40)
        platform.coupons.redeem(
            user_id="ann", coupon_id=coupon.coupon_id, order_id="o" * 41, discount_cents=100
        )
    assert platform.coupons.budget(view.wave.template_id).spent_cents == 0  # restored: the budget is back
    assert platform.coupons.ledger.get(coupon.coupon_id) == coupon._replace(state=CouponState.AVAILABLE)


@pytest.mark.engines(POSTGRES_REDIS, reason="only a shared ledger outlives the processes and may fall behind")
def test_a_shared_ledger_behind_the_store_is_reported_at_start_and_reloaded(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    view = open_wave(platform, total=3, per_user_limit=3)
    claims = [
        platform.coupons.claim(user_id="ann", wave_id=view.wave.id, request_id=f"r{n}") for n in range(3)
    ]
    ledger = platform.coupons.ledger
    with platform.deps.read() as unit:
        terms = all_wave_terms(unit.db)
    # Redis comes back from a stale AOF that knew only the first claim.
    ledger.load(terms, [(view.wave.template_id, 100_000)], [claims[0].coupon])

    assert not load_coupon_ledger(platform.deps, ledger, only_if_empty=True)  # not empty: kept...
    assert f"fewer claims than the store for waves [{view.wave.id}]" in caplog.text  # ...and reported
    assert load_coupon_ledger(platform.deps, ledger, only_if_empty=False)  # `flashsale coupons reload`
    assert platform.coupons.wave(view.wave.id).level.issued == 3
    assert platform.coupons.claim(user_id="ann", wave_id=view.wave.id, request_id="r2").replayed
