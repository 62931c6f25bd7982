"""Draws through the service on every engine: entitlements from rules, draws recorded once, redeemed once."""

from __future__ import annotations

from collections import Counter
from functools import partial

import pytest
from sqlalchemy import func, select

from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.domain.draws import AwardStatus, PrizeKind
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.services.draws import DrawOutcome, DrawService
from flashsale.store.tables import DrawAwardRow, DrawGrantRow, DrawPrizeRow
from tests.conftest import Sale
from tests.engines import POSTGRES_REDIS, SQLITE
from tests.factories import release_together
from tests.integration.draw_support import CHECKIN_BONUS_EVERY, Wheel, make_wheel, paid_order

# The races (double clicks, concurrent redemptions) run on every engine; the rules on the default one.
ALL_ENGINES = pytest.mark.engines(SQLITE, POSTGRES_REDIS)  # the two ends

DAY_S = 86_400


@pytest.fixture
def wheel(platform: Platform, sale: Sale) -> Wheel:
    return make_wheel(platform)


def refusal(call: partial[object]) -> ErrorCode:
    with pytest.raises(FlashSaleError) as refused:
        call()
    return refused.value.code


def four_draws(draws: DrawService, wheel: Wheel) -> list[DrawOutcome]:
    """Ann's four draws (three shares and today's free one): the phone's stock of 3 leaves one other prize."""
    for n in range(3):
        draws.share(wheel.pool_id, "ann", f"share-{n}")
    draws.free_daily(wheel.pool_id, "ann")
    return [draws.draw(wheel.pool_id, "ann", f"spin-{n}") for n in range(4)]


def stored(platform: Platform, model: type, **where: object) -> int:
    with platform.deps.read() as read:
        clauses = [getattr(model, k) == v for k, v in where.items()]
        return int(read.db.scalar(select(func.count()).select_from(model).where(*clauses)) or 0)


@ALL_ENGINES
def test_a_free_draw_is_recorded_once_and_replayed_by_its_request_id(
    platform: Platform, wheel: Wheel
) -> None:
    draws = platform.draws
    assert draws.free_daily(wheel.pool_id, "ann").granted == 1
    assert draws.free_daily(wheel.pool_id, "ann").replayed  # today's free draw was given
    first = draws.draw(wheel.pool_id, "ann", "spin-1")
    again = draws.draw(wheel.pool_id, "ann", "spin-1")
    assert again.replayed and again.award == first.award and first.balance == again.balance == 0
    assert stored(platform, DrawAwardRow, user_id="ann") == 1
    assert refusal(partial(draws.draw, wheel.pool_id, "ann", "spin-2")) is ErrorCode.NO_ENTITLEMENT
    (award, prize), *_ = draws.awards("ann")
    assert award.id == first.award.id and prize == first.prize


def test_a_prize_is_redeemed_once_and_only_by_its_winner(platform: Platform, wheel: Wheel) -> None:
    draws = platform.draws
    won = next(
        outcome
        for outcome in four_draws(draws, wheel)
        if outcome.prize is not None and outcome.prize.kind is not PrizeKind.GOODS
    )
    assert refusal(partial(draws.redeem, won.award.id, "bob")) is ErrorCode.NOT_FOUND
    redeemed = draws.redeem(won.award.id, "ann")
    assert redeemed.status is AwardStatus.REDEEMED and redeemed.redeemed_at is not None
    assert refusal(partial(draws.redeem, won.award.id, "ann")) is ErrorCode.ALREADY_REDEEMED


@ALL_ENGINES
def test_concurrent_redemptions_of_one_award_redeem_it_once(platform: Platform, wheel: Wheel) -> None:
    draws = platform.draws
    # Not the phone (goods): no regular item sells it here (see tests/integration/test_prize_orders.py).
    won = next(o.award for o in four_draws(draws, wheel) if o.prize and o.prize.kind is not PrizeKind.GOODS)

    def redeem() -> str:
        try:
            return draws.redeem(won.id, "ann").status.value
        except FlashSaleError as exc:
            return exc.code.value

    answers = Counter(release_together([redeem] * 16))
    assert answers == {"redeemed": 1, "ALREADY_REDEEMED": 15}


@ALL_ENGINES
def test_a_crowd_on_the_hot_pool_never_gets_more_than_the_stock_and_each_draw_is_stored_once(
    platform: Platform, wheel: Wheel
) -> None:
    draws = platform.draws
    users = [f"u{n}" for n in range(60)]
    for user in users:
        draws.free_daily(wheel.pool_id, user)
    clicks = [(u, "spin") for u in users] * 2  # every shopper double-clicks
    outcomes = release_together([partial(draws.draw, wheel.pool_id, u, r) for u, r in clicks])

    assert stored(platform, DrawAwardRow) == len(users)  # one row per (user, request id)
    with platform.deps.read() as read:
        per_prize = dict(
            read.db.execute(
                select(DrawAwardRow.prize_id, func.count())
                .where(DrawAwardRow.prize_id.is_not(None))
                .group_by(DrawAwardRow.prize_id)
            ).all()
        )
    assert per_prize.get(wheel.phone_id, 0) <= 3 and per_prize.get(wheel.coupon_id, 0) <= 5
    levels = {level.prize_id: level for level in draws.pool_view(wheel.pool_id).levels}
    assert {p: levels[p].awarded for p in per_prize} == per_prize  # the store says what the ledger decided
    by_user: dict[str, set[str]] = {}
    for (user, _), outcome in zip(clicks, outcomes, strict=True):
        by_user.setdefault(user, set()).add(outcome.award.id)
    assert all(len(ids) == 1 for ids in by_user.values())
    assert all(draws.balance(wheel.pool_id, u) == 0 for u in users)


def test_check_in_builds_a_streak_with_a_bonus_and_once_a_day(
    platform: Platform, wheel: Wheel, clock: ManualClock
) -> None:
    draws = platform.draws
    days = [draws.check_in(wheel.pool_id, "ann")]
    assert refusal(partial(draws.check_in, wheel.pool_id, "ann")) is ErrorCode.ALREADY_CHECKED_IN
    for _ in range(CHECKIN_BONUS_EVERY - 1):
        clock.advance(DAY_S)
        days.append(draws.check_in(wheel.pool_id, "ann"))
    assert [(d.streak, d.granted) for d in days] == [(1, 1), (2, 1), (3, 3)]  # the third day's bonus
    clock.advance(2 * DAY_S)  # a day missed: the streak starts again
    assert draws.check_in(wheel.pool_id, "ann").streak == 1
    assert draws.balance(wheel.pool_id, "ann") == 6
    assert stored(platform, DrawGrantRow, user_id="ann", source="checkin") == 4


def test_shares_grant_once_each_and_stop_at_the_daily_cap(platform: Platform, wheel: Wheel) -> None:
    draws = platform.draws
    assert [draws.share(wheel.pool_id, "ann", f"s{n}").granted for n in range(3)] == [1, 1, 1]
    assert draws.share(wheel.pool_id, "ann", "s0").replayed  # a replayed share grants nothing
    assert refusal(partial(draws.share, wheel.pool_id, "ann", "s3")) is ErrorCode.GRANT_LIMIT_REACHED
    assert draws.balance(wheel.pool_id, "ann") == 3
    assert stored(platform, DrawGrantRow, user_id="ann") == 3


def test_a_paid_order_over_the_threshold_earns_its_draws_once(
    platform: Platform, wheel: Wheel, sale: Sale
) -> None:
    draws = platform.draws
    big = paid_order(platform, "ann", sale.phone_id)  # 3,999.00 ≥ 1,500.00
    small = paid_order(platform, "bob", sale.earbuds_id)  # 499.00
    assert draws.claim_order(wheel.pool_id, "ann", big.id).granted == 2
    assert draws.claim_order(wheel.pool_id, "ann", big.id).replayed
    assert refusal(partial(draws.claim_order, wheel.pool_id, "bob", small.id)) is ErrorCode.NO_ENTITLEMENT
    assert refusal(partial(draws.claim_order, wheel.pool_id, "bob", big.id)) is ErrorCode.ORDER_NOT_FOUND
    assert draws.balance(wheel.pool_id, "ann") == 2 and draws.balance(wheel.pool_id, "bob") == 0


def test_bad_prizes_and_a_stock_below_the_awards_change_nothing(platform: Platform, wheel: Wheel) -> None:
    draws = platform.draws
    bad = partial(draws.add_prize, wheel.pool_id, name="coupon", kind=PrizeKind.COUPON, weight=1, stock=1)
    assert refusal(bad) is ErrorCode.VALIDATION_ERROR  # a coupon prize names its template
    assert refusal(
        partial(draws.add_prize, 99, name="x", kind=PrizeKind.POINTS, weight=1, stock=1, points=5)
    ) is (ErrorCode.UNKNOWN_POOL)
    assert stored(platform, DrawPrizeRow) == 3
    for n in range(3):
        draws.share(wheel.pool_id, "ann", f"s{n}")
        draws.draw(wheel.pool_id, "ann", f"spin-{n}")
    awarded = {lv.prize_id: lv.awarded for lv in draws.pool_view(wheel.pool_id).levels}
    top = max(awarded, key=awarded.__getitem__)
    assert (
        refusal(partial(draws.update_prize, top, stock=awarded[top] - 1)) is ErrorCode.QUOTA_BELOW_COMMITTED
    )
    view = draws.pool_view(wheel.pool_id)
    assert {p.id: p.stock for p in view.prizes} == {
        lv.prize_id: lv.stock for lv in view.levels
    }  # both unchanged
    assert draws.update_prize(top, stock=awarded[top]).stock == awarded[top]


@pytest.mark.engines(SQLITE, reason="reopens the SQLite file with a fresh in-process ledger")
def test_the_in_process_ledger_is_rebuilt_from_the_store_after_a_restart(
    platform: Platform, wheel: Wheel, settings: Settings, clock: ManualClock
) -> None:
    draws = platform.draws
    for n in range(3):
        draws.share(wheel.pool_id, "ann", f"s{n}")
    first = draws.draw(wheel.pool_id, "ann", "spin-0")
    before = draws.pool_view(wheel.pool_id).levels
    platform.close()

    again = build(settings, clock=clock)
    try:
        assert again.draws.balance(wheel.pool_id, "ann") == 2
        assert again.draws.pool_view(wheel.pool_id).levels == before
        assert again.draws.draw(wheel.pool_id, "ann", "spin-0").award.id == first.award.id
        assert again.draws.share(wheel.pool_id, "ann", "s0").replayed
    finally:
        again.close()


@ALL_ENGINES
def test_paid_orders_get_their_draws_from_the_outbox_once_and_a_claim_after_is_a_replay(
    platform: Platform, wheel: Wheel, sale: Sale
) -> None:
    draws = platform.draws
    big = paid_order(platform, "ann", sale.phone_id)  # qualifies: 2 draws
    small = paid_order(platform, "bob", sale.earbuds_id)  # under the threshold
    claimed = paid_order(platform, "cid", sale.phone_id)
    assert draws.claim_order(wheel.pool_id, "cid", claimed.id).granted == 2  # claimed by hand first
    refunded = paid_order(platform, "dan", sale.phone_id)
    platform.orders.refund(refunded.id)  # refunded before the grants ran: nothing to grant

    # Passes racing each other (several serving processes' sweepers) grant each order once.
    given = release_together([platform.draw_grants.run for _ in range(4)])
    assert sum(given) == 1  # ann's order; cid's was claimed already
    assert platform.draw_grants.run() == 0  # a later pass re-reads the events and grants nothing
    assert draws.claim_order(wheel.pool_id, "ann", big.id).replayed  # the shopper's claim is a replay
    assert {u: draws.balance(wheel.pool_id, u) for u in ("ann", "bob", "cid", "dan")} == {
        "ann": 2,
        "bob": 0,
        "cid": 2,
        "dan": 0,
    }
    assert stored(platform, DrawGrantRow, grant_key=f"order:{big.id}") == 1
    assert stored(platform, DrawGrantRow, grant_key=f"order:{small.id}") == 0
