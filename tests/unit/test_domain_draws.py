"""Draw rules, pure: the weighted pick, entitlement rules, streaks, days, prizes, scheduled winners."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashsale.domain.draw_schedule import ScheduledDraw, winners
from flashsale.domain.draws import (
    EntitlementRule,
    EntitlementSource,
    PoolTerms,
    Prize,
    PrizeKind,
    PrizeTerms,
    day_bounds,
    day_of,
    next_streak,
    pick,
)
from flashsale.draws.rng import BufferedSystemRng

weights = st.lists(st.integers(0, 50), min_size=1, max_size=6)


@given(weights, st.integers(0, 50), st.integers(0, 2**48 - 1))
def test_a_pick_lands_on_a_prize_with_weight_or_on_thanks(
    prize_weights: list[int], thanks: int, roll: int
) -> None:
    pool = PoolTerms(1, tuple(PrizeTerms(n, w, stock=1) for n, w in enumerate(prize_weights)), thanks)
    won = pick(pool, roll, lambda p: True)
    assert won is None or prize_weights[won] > 0
    assert pick(pool, roll, lambda p: False) is None  # nothing left: always thanks


@given(weights, st.integers(0, 50))
def test_every_roll_of_one_cycle_picks_each_prize_as_often_as_its_weight(
    prize_weights: list[int], thanks: int
) -> None:
    pool = PoolTerms(1, tuple(PrizeTerms(n, w, stock=1) for n, w in enumerate(prize_weights)), thanks)
    picks = Counter(pick(pool, roll, lambda p: True) for roll in range(pool.total_weight))
    assert {n: picks[n] for n, w in enumerate(prize_weights) if w} == {
        n: w for n, w in enumerate(prize_weights) if w
    }
    assert picks[None] == thanks


def test_a_paid_order_qualifies_from_the_threshold_on() -> None:
    rule = EntitlementRule(EntitlementSource.PAID_ORDER, min_order_cents=150_000)
    assert [rule.order_qualifies(c) for c in (149_999, 150_000)] == [False, True]
    assert not EntitlementRule(EntitlementSource.SHARE).order_qualifies(10**9)


def test_a_zero_price_order_earns_no_draw_even_without_a_threshold() -> None:
    rule = EntitlementRule(EntitlementSource.PAID_ORDER)  # min_order_cents 0
    assert [rule.order_qualifies(c) for c in (0, 1)] == [False, True]


@given(st.integers(1, 400))
def test_a_check_in_earns_its_bonus_on_every_nth_day_in_a_row(streak: int) -> None:
    rule = EntitlementRule(EntitlementSource.CHECKIN, draws=1, streak_bonus_every=7, streak_bonus_draws=3)
    assert rule.checkin_draws(streak) == (4 if streak % 7 == 0 else 1)


def test_a_streak_grows_day_after_day_and_starts_again_after_a_gap() -> None:
    assert next_streak(None, 0, "2026-11-11") == 1
    assert next_streak("2026-11-10", 4, "2026-11-11") == 5
    assert next_streak("2026-11-09", 4, "2026-11-11") == 1
    assert next_streak("2026-12-31", 9, "2027-01-01") == 10


def test_the_day_follows_the_pools_time_zone() -> None:
    at = datetime(2026, 11, 11, 17, 0, tzinfo=UTC).timestamp()  # 01:00 on the 12th in UTC+8
    assert (day_of(at, 0), day_of(at, 480)) == ("2026-11-11", "2026-11-12")
    start, end = day_bounds("2026-11-12", 480)
    assert start == datetime(2026, 11, 11, 16, 0, tzinfo=UTC) and (end - start).days == 1
    assert day_of(start.timestamp(), 480) == "2026-11-12" and day_of(end.timestamp() - 1, 480) == "2026-11-12"


@pytest.mark.parametrize(
    ("kind", "refs"),
    [
        (PrizeKind.COUPON, {}),
        (PrizeKind.GOODS, {"coupon_template_id": 3}),
        (PrizeKind.POINTS, {"points": 0}),
        (PrizeKind.COUPON, {"coupon_template_id": 3, "points": 5}),
    ],
)
def test_a_prize_names_exactly_its_own_reference(kind: PrizeKind, refs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Prize(1, 1, "p", kind, weight=1, stock=1, **refs)


@given(st.lists(st.text(min_size=1, max_size=5), max_size=40), st.integers(0, 45), st.text(max_size=64))
def test_winners_are_distinct_entrants_and_do_not_depend_on_the_lists_order(
    entrants: list[str], n: int, seed: str
) -> None:
    chosen = winners(entrants, n, seed)
    assert len(chosen) == min(n, len(set(entrants))) and len(set(chosen)) == len(chosen)
    assert set(chosen) <= set(entrants)
    assert winners(list(reversed(entrants)), n, seed) == chosen


def test_a_run_records_what_verifies_it_and_a_tampered_record_does_not() -> None:
    planned = ScheduledDraw(1, 1, 1, "16:00", datetime(2026, 11, 11, 16, tzinfo=UTC), 2, 0)
    ran = planned.run(
        seed="ab" * 32, entrants=["c", "a", "b", "a"], at=datetime(2026, 11, 11, 16, tzinfo=UTC)
    )
    assert ran.entrants == ("a", "b", "c") and ran.verified() and not planned.verified()
    tampered = replace(
        ran, winner_ids=tuple(e for e in ran.entrants if e not in (ran.winner_ids or ()))[:1] * 2
    )
    assert not tampered.verified()


def test_the_buffered_system_rng_gives_k_bits_across_block_boundaries() -> None:
    rng = BufferedSystemRng(block_bytes=7)  # a 48-bit roll takes 6 bytes: most rolls start a new block
    rolls = [rng.getrandbits(48) for _ in range(2000)]
    assert all(0 <= r < 2**48 for r in rolls) and len(set(rolls)) == len(rolls)
    assert 800 < sum(r >> 47 for r in rolls) < 1200  # the top bit is set about half the time
    assert (
        0 <= rng.getrandbits(256) < 2**256 and 0 <= rng.getrandbits(3) < 8
    )  # wider than a block, narrower than a byte
