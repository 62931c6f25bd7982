"""Crowds on every coupon engine: many threads released at once never over-issue or overspend.

A claim crowd: shoppers who click once, who double-click with one request id, and greedy ones who
send more request ids than the per-user limit allows, all at one hot wave. Afterwards: issued ==
min(total, what the crowd may rightly get) and never above the total, every shopper within the
limit, one coupon per (user, request id). A redeem crowd: every coupon redeemed at once against a
budget that covers only some, then restores and redeems racing: spent never exceeds the budget and
always equals the sum of the redeemed coupons' discounts.
"""

from __future__ import annotations

import random
from collections import Counter
from functools import partial

import pytest

from flashsale.coupons import ClaimDecision, CouponLedger
from flashsale.domain.coupons import Coupon, CouponState
from flashsale.domain.errors import ErrorCode, FlashSaleError
from tests.contract.coupons.conftest import wave_terms
from tests.factories import crowd, demand, release_together, stress_size

pytestmark = pytest.mark.stress

BUYERS = stress_size(300, 3000)
LIMIT = 2
TOTAL = 120
BUDGET = 1_000
DISCOUNT = 30


def claim_storm(coupons: CouponLedger, rng: random.Random) -> tuple[list[ClaimDecision], int]:
    """Release a crowd of claims on wave 1 at once; return the answers and the rightful demand."""
    clicks = crowd(rng, buyers=BUYERS, limit=LIMIT)
    # A claim is one coupon: the crowd's quantities become that many claims under distinct keys.
    claims = [(c.user_id, f"{c.request_id}#{k}") for c in clicks for k in range(c.qty)]
    answers = release_together(
        [partial(coupons.claim, wave_id=1, user_id=user, request_id=key) for user, key in claims]
    )
    return answers, demand(clicks, LIMIT)


def test_a_crowd_never_over_issues_and_nobody_beats_the_limit(coupons: CouponLedger) -> None:
    coupons.configure_budget(1, BUDGET)
    coupons.configure_wave(wave_terms(total=TOTAL, per_user_limit=LIMIT))
    answers, rightful = claim_storm(coupons, random.Random(15))

    granted = [a.coupon for a in answers if a.coupon is not None and not a.replayed]
    refused = Counter(a.code for a in answers if a.coupon is None)
    assert set(refused) <= {ErrorCode.COUPON_LIMIT, ErrorCode.COUPON_ISSUE_EXHAUSTED}
    level = coupons.wave_level(1)
    assert level.issued == len(granted) == min(TOTAL, rightful) <= TOTAL
    per_user = Counter(c.user_id for c in granted)
    assert max(per_user.values()) <= LIMIT
    assert len({(c.user_id, c.request_id) for c in granted}) == len(granted)
    replays = [a.coupon for a in answers if a.replayed]
    assert all(coupons.get(c.coupon_id) == c for c in replays if c is not None)
    assert sum(len(coupons.coupons_of(user)) for user in per_user) == len(granted)


def test_a_redeem_crowd_never_overspends_the_budget(coupons: CouponLedger) -> None:
    coupons.configure_budget(1, BUDGET)
    coupons.configure_wave(wave_terms(total=TOTAL, per_user_limit=1))
    held = [coupons.claim(wave_id=1, user_id=f"u{n}", request_id="r").coupon for n in range(TOTAL)]
    mine = [c for c in held if c is not None]

    def redeem(coupon: Coupon, order: str) -> Coupon | ErrorCode:
        try:
            return coupons.redeem(coupon.coupon_id, order_id=order, discount_cents=DISCOUNT)
        except FlashSaleError as exc:
            return exc.code

    first = release_together([partial(redeem, c, f"o-{c.coupon_id}") for c in mine])
    used = [r for r in first if isinstance(r, Coupon)]
    assert len(used) == BUDGET // DISCOUNT
    assert {r for r in first if not isinstance(r, Coupon)} == {ErrorCode.BUDGET_EXHAUSTED}
    assert coupons.budget_level(1).spent_cents == len(used) * DISCOUNT <= BUDGET

    # Half of the winners' orders are cancelled while everyone else tries again with a new order.
    undo = used[: len(used) // 2]
    calls = [partial(coupons.restore, c.coupon_id, order_id=f"o-{c.coupon_id}") for c in undo]
    calls += [partial(redeem, c, f"o2-{c.coupon_id}") for c in mine]
    release_together(calls)  # type: ignore[arg-type]
    assert_spent_is_the_redeemed_discounts(coupons, mine)
    # A redeem that came before the restores it needed was refused; once they are all done, what
    # came free can be taken again, to the last whole discount.
    for coupon in mine:
        redeem(coupon, f"o3-{coupon.coupon_id}")
    assert assert_spent_is_the_redeemed_discounts(coupons, mine) > BUDGET - DISCOUNT


def assert_spent_is_the_redeemed_discounts(coupons: CouponLedger, mine: list[Coupon]) -> int:
    now = [coupons.get(c.coupon_id) for c in mine]
    redeemed = [c for c in now if c is not None and c.state is CouponState.REDEEMED]
    spent = coupons.budget_level(1).spent_cents
    assert spent == sum(c.discount_cents for c in redeemed) <= BUDGET
    return spent
