"""Crowds released at once on one hot prize pool, on every engine: nothing over-awarded, nothing spent twice.

Every thread waits at a barrier, so the calls reach the engine together. The assertions are exact
every run: how many prizes there are to give is known, so exactly that many are given.
FLASHSALE_STRESS=full runs a larger crowd.
"""

from __future__ import annotations

from collections import Counter
from functools import partial

import pytest

from flashsale.domain.draws import PrizeTerms
from flashsale.domain.errors import ErrorCode
from flashsale.draws import DrawDecision, DrawLedger, GrantDecision
from tests.contract.draws.conftest import DAY, give, pool
from tests.factories import release_together, stress_size

pytestmark = pytest.mark.stress

SHOPPERS = stress_size(240, 1500)
PHONES, BUDS, BUDS_TODAY = 12, 40, 18  # stock of the top prize; the second's stock and daily cap


def test_a_crowd_of_double_clicking_shoppers_never_over_awards_and_spends_each_draw_once(
    draws: DrawLedger,
) -> None:
    # No thanks-for-playing weight: every draw wins until both prizes are gone (PRIZE_GONE after).
    draws.configure(
        pool(PrizeTerms(1, weight=1, stock=PHONES), PrizeTerms(2, weight=3, stock=BUDS, daily_cap=BUDS_TODAY))
    )
    users = [f"u{n}" for n in range(SHOPPERS)]
    for user in users:
        give(draws, user)
    # each shopper clicks twice with one request id, and once more with another
    clicks = [(u, f"{u}-a") for u in users] * 2 + [(u, f"{u}-b") for u in users]
    answers: list[DrawDecision] = release_together(
        [partial(draws.draw, pool_id=1, user_id=u, request_id=r, day=DAY) for u, r in clicks]
    )

    levels = {level.prize_id: level for level in draws.levels(1, DAY)}
    assert all(level.within_limits for level in levels.values())
    assert levels[1].awarded == PHONES and levels[2].awarded_today == BUDS_TODAY  # demand > supply: all given

    fresh = [a for a in answers if a.drawn and not a.replayed]
    assert len({a.award_id for a in fresh}) == len(fresh)
    # a draw that picks a prize already gone is thanks for playing (None); the rest is exactly the supply
    won = Counter(a.prize_id for a in fresh if a.prize_id is not None)
    assert won == {1: PHONES, 2: BUDS_TODAY}
    by_click: dict[tuple[str, str], set[str | None]] = {}
    for (user, request_id), answer in zip(clicks, answers, strict=True):
        if answer.drawn:
            by_click.setdefault((user, request_id), set()).add(answer.award_id)
    assert all(len(ids) == 1 for ids in by_click.values())  # a replay answers the same award
    winners = Counter(user for user, _ in by_click)
    assert max(winners.values()) == 1  # one entitlement each: nobody drew twice
    assert {a.code for a in answers if not a.drawn} <= {ErrorCode.NO_ENTITLEMENT, ErrorCode.PRIZE_GONE}
    # whoever did not draw kept the entitlement
    assert sum(draws.balance(1, u) for u in users) == SHOPPERS - len(fresh)


def test_a_crowd_of_shares_grants_once_per_share_and_at_most_the_daily_cap(draws: DrawLedger) -> None:
    draws.configure(pool(PrizeTerms(1, weight=1, stock=5)))
    users = [f"u{n}" for n in range(SHOPPERS // 4)]
    # every user sends 6 distinct shares, each three times (a replayed share), against a cap of 3 a day
    shares = [(u, f"share-{k}") for u in users for k in range(6)] * 3
    answers: list[GrantDecision] = release_together(
        [
            partial(
                draws.grant, pool_id=1, user_id=u, source="share", grant_key=k, draws=2, day=DAY, daily_cap=3
            )
            for u, k in shares
        ]
    )
    granted = Counter(u for (u, _), a in zip(shares, answers, strict=True) if a.granted)
    assert granted == {u: 3 for u in users}
    assert all(draws.balance(1, u) == 6 for u in users)
    assert {a.code for a in answers if not a.granted and not a.replayed} == {ErrorCode.GRANT_LIMIT_REACHED}
