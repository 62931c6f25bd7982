"""The draw ledger contract, one test per guarantee, on every engine (see flashsale/draws/contract.py)."""

from __future__ import annotations

import random

import pytest

from flashsale.domain.draws import ROLL_BITS, PoolTerms, PrizeTerms, pick
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.draws import DrawLedger, DrawRecord, GrantRecord, draw_ledger_from_url
from flashsale.draws.redis import RedisDrawLedger
from tests.contract.conftest import with_query
from tests.contract.draws.conftest import DAY, NEXT_DAY, DrawsFactory, give, pool
from tests.services import REDIS_URL


def draw(ledger: DrawLedger, user: str, request_id: str, day: str = DAY):  # type: ignore[no-untyped-def]
    return ledger.draw(pool_id=1, user_id=user, request_id=request_id, day=day)


def test_an_unknown_pool_refuses_grants_draws_and_levels(draws: DrawLedger) -> None:
    assert draws.grant(
        pool_id=9, user_id="u", source="share", grant_key="s", draws=1, day=DAY, daily_cap=1
    ).code == (ErrorCode.UNKNOWN_POOL)
    assert draws.draw(pool_id=9, user_id="u", request_id="r", day=DAY).code is ErrorCode.UNKNOWN_POOL
    with pytest.raises(FlashSaleError) as refused:
        draws.levels(9, DAY)
    assert refused.value.code is ErrorCode.UNKNOWN_POOL
    assert draws.balance(9, "u") == 0


def test_a_draw_spends_one_entitlement_and_the_next_has_none(draws: DrawLedger) -> None:
    draws.configure(pool(PrizeTerms(10, weight=1, stock=5)))
    give(draws, "ann")
    first = draw(draws, "ann", "r1")
    assert first.drawn and first.prize_id == 10 and first.balance == 0 and not first.replayed
    assert draw(draws, "ann", "r2").code is ErrorCode.NO_ENTITLEMENT
    assert draws.levels(1, DAY)[0].awarded == 1


def test_a_replayed_draw_answers_the_first_decision_and_spends_nothing(draws: DrawLedger) -> None:
    draws.configure(pool(PrizeTerms(10, weight=1, stock=5), thanks=1))
    give(draws, "ann", 2)
    first = draw(draws, "ann", "r1")
    again = draw(draws, "ann", "r1")
    assert again.replayed and (again.award_id, again.prize_id, again.day) == (
        first.award_id,
        first.prize_id,
        DAY,
    )
    assert draws.balance(1, "ann") == 1
    assert sum(level.awarded for level in draws.levels(1, DAY)) == (first.prize_id is not None)


def test_a_refused_draw_is_not_remembered(draws: DrawLedger) -> None:
    draws.configure(pool(PrizeTerms(10, weight=1, stock=5)))
    assert draw(draws, "ann", "r1").code is ErrorCode.NO_ENTITLEMENT
    give(draws, "ann")
    assert draw(draws, "ann", "r1").prize_id == 10


def test_a_replayed_grant_grants_nothing(draws: DrawLedger) -> None:
    draws.configure(pool(PrizeTerms(10, weight=1, stock=5)))
    args = dict(pool_id=1, user_id="ann", source="share", grant_key="share-1", draws=2, day=DAY, daily_cap=5)
    assert draws.grant(**args) == (2, 2, None, False)  # type: ignore[arg-type]
    assert draws.grant(**args) == (0, 2, None, True)  # type: ignore[arg-type]
    # the key is the user's: another shopper's share of the same id is their own
    assert draws.grant(**{**args, "user_id": "bob"}).granted == 2  # type: ignore[arg-type]


def test_grants_stop_at_the_daily_cap_per_source_and_start_again_the_next_day(draws: DrawLedger) -> None:
    draws.configure(pool(PrizeTerms(10, weight=1, stock=5)))

    def share(key: str, day: str = DAY, source: str = "share") -> ErrorCode | None:
        return draws.grant(
            pool_id=1, user_id="ann", source=source, grant_key=key, draws=1, day=day, daily_cap=2
        ).code

    assert [share("a"), share("b"), share("c")] == [None, None, ErrorCode.GRANT_LIMIT_REACHED]
    assert draws.balance(1, "ann") == 2
    assert share("d", source="checkin") is None  # another source has its own cap
    assert share("c", day=NEXT_DAY) is None  # the refused key was not remembered
    assert draws.balance(1, "ann") == 4


def test_a_pool_of_thanks_only_spends_the_draw_and_awards_nothing(draws: DrawLedger) -> None:
    draws.configure(pool(PrizeTerms(10, weight=0, stock=5), PrizeTerms(11, weight=1, stock=5), thanks=10**9))
    give(draws, "ann")
    # one prize in a billion: this seed's roll lands on thanks for playing
    decision = draw(draws, "ann", "r1")
    assert decision.drawn and decision.balance == 0


def test_when_every_prize_is_gone_the_draw_is_refused_and_the_entitlement_kept(draws: DrawLedger) -> None:
    draws.configure(pool(PrizeTerms(10, weight=1, stock=1), PrizeTerms(11, weight=0, stock=9), thanks=5))
    give(draws, "ann", 50)
    decisions = [draw(draws, "ann", f"r{n}") for n in range(50)]
    won = [d for d in decisions if d.prize_id == 10]
    assert len(won) == 1  # a prize of weight 0 never wins, and is no reason to draw
    gone = decisions.index(won[0]) + 1
    assert all(d.code is ErrorCode.PRIZE_GONE for d in decisions[gone:])
    assert draws.balance(1, "ann") == 50 - gone


def test_a_daily_cap_holds_today_and_opens_again_tomorrow(draws: DrawLedger) -> None:
    draws.configure(pool(PrizeTerms(10, weight=1, stock=10, daily_cap=2)))
    give(draws, "ann", 5)
    assert [draw(draws, "ann", f"r{n}").prize_id for n in range(2)] == [10, 10]
    assert draw(draws, "ann", "r2").code is ErrorCode.PRIZE_GONE
    assert draw(draws, "ann", "r3", NEXT_DAY).prize_id == 10
    today, tomorrow = draws.levels(1, DAY)[0], draws.levels(1, NEXT_DAY)[0]
    assert (today.awarded, today.awarded_today, tomorrow.awarded_today) == (3, 2, 1)


def test_a_picked_prize_that_is_gone_is_thanks_for_playing(draws: DrawLedger) -> None:
    # the big prize is gone; its weight still counts, so the small one keeps its odds (1 in 101)
    draws.configure(pool(PrizeTerms(10, weight=100, stock=0), PrizeTerms(11, weight=1, stock=1000)))
    give(draws, "ann", 200)
    prizes = [draw(draws, "ann", f"r{n}").prize_id for n in range(200)]
    assert None in prizes and prizes.count(11) < 20


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_rolls_of_a_seeded_rng_pick_as_the_domain_pick_does(make_draws: DrawsFactory, seed: int) -> None:
    terms = pool(
        PrizeTerms(10, weight=3, stock=4), PrizeTerms(11, weight=5, stock=50, daily_cap=6),
        PrizeTerms(12, weight=1, stock=50), thanks=4,
    )  # fmt: skip
    ledger = make_draws(random.Random(seed))
    ledger.configure(terms)
    give(ledger, "ann", 40)
    got = [draw(ledger, "ann", f"r{n}").prize_id for n in range(40)]

    rolls, awarded = random.Random(seed), {10: 0, 11: 0, 12: 0}
    expected = []
    for _ in range(40):
        won = pick(
            terms,
            rolls.getrandbits(ROLL_BITS),
            lambda p: awarded[p.prize_id] < min(p.stock, p.daily_cap or p.stock),
        )
        if won is not None:
            awarded[won] += 1
        expected.append(won)
    assert got == expected


def test_a_stock_below_what_was_awarded_is_refused_and_changes_nothing(draws: DrawLedger) -> None:
    draws.configure(pool(PrizeTerms(10, weight=1, stock=5)))
    give(draws, "ann", 3)
    for n in range(3):
        draw(draws, "ann", f"r{n}")
    with pytest.raises(FlashSaleError) as refused:
        draws.configure(pool(PrizeTerms(10, weight=1, stock=2)))
    assert refused.value.code is ErrorCode.QUOTA_BELOW_COMMITTED
    assert draws.levels(1, DAY)[0].stock == 5
    draws.configure(pool(PrizeTerms(10, weight=1, stock=3)))  # down to what was awarded is fine
    assert draws.levels(1, DAY)[0].stock == 3


def test_restore_rebuilds_balances_counters_and_replays_from_the_records(make_draws: DrawsFactory) -> None:
    terms = pool(PrizeTerms(10, weight=1, stock=3, daily_cap=2), PrizeTerms(11, weight=1, stock=9), thanks=1)
    grants = [GrantRecord("ann", "share", "s1", 2, DAY), GrantRecord("bob", "checkin", "c1", 1, DAY)]
    records = [DrawRecord("ann", "r1", "award-1", 10, DAY), DrawRecord("ann", "r2", "award-2", None, DAY)]
    ledger = make_draws(random.Random(1))
    ledger.configure(pool(PrizeTerms(10, weight=1, stock=50)))
    give(ledger, "carl", 5)  # state the records do not know of is dropped

    ledger.restore(terms, grants, records)
    assert [ledger.balance(1, u) for u in ("ann", "bob", "carl")] == [0, 1, 0]
    assert [(lv.prize_id, lv.awarded, lv.awarded_today) for lv in ledger.levels(1, DAY)] == [
        (10, 1, 1),
        (11, 0, 0),
    ]
    replay = draw(ledger, "ann", "r1")
    assert replay.replayed and (replay.award_id, replay.prize_id) == ("award-1", 10)
    assert ledger.grant(
        pool_id=1, user_id="ann", source="share", grant_key="s1", draws=2, day=DAY, daily_cap=5
    ).replayed
    assert ledger.grant(
        pool_id=1, user_id="bob", source="checkin", grant_key="c2", draws=1, day=DAY, daily_cap=1
    ).code is (ErrorCode.GRANT_LIMIT_REACHED)


def test_every_engine_fits_the_contract(draws: DrawLedger) -> None:
    assert isinstance(draws, DrawLedger)
    assert PoolTerms(1, ()).total_weight == 0


def test_restore_only_if_absent_never_overwrites_a_live_pool(draws: DrawLedger) -> None:
    terms = pool(PrizeTerms(10, weight=1, stock=5))
    records = [GrantRecord("ann", "share", "s1", 3, DAY)]
    assert draws.restore(terms, records, [], only_if_absent=True)  # an engine that lost the pool gets it back
    draw(draws, "ann", "r1")
    assert not draws.restore(terms, records, [], only_if_absent=True)  # a live pool is left as it is
    assert draws.balance(1, "ann") == 2 and draws.levels(1, DAY)[0].awarded == 1
    assert draws.restore(terms, records, [])  # a plain restore replaces
    assert draws.balance(1, "ann") == 3


@pytest.mark.redis
def test_the_redis_engine_takes_the_stock_ledgers_url_as_it_is() -> None:
    assert REDIS_URL is not None
    ledger = draw_ledger_from_url(with_query(REDIS_URL, ("prefix", "t-url"), ("buckets", "4")))
    try:
        assert isinstance(ledger, RedisDrawLedger) and ledger.prefix == "t-url"
        assert ledger.balance(1, "nobody") == 0  # it talks to the server
    finally:
        ledger.close()
