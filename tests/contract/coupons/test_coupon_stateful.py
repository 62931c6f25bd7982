"""Model-based test: random claims, redeems, restores, revokes and the passing of time, on every engine.

After every step the coupon ledger agrees with a tiny model, and the invariants hold: issued never
above a wave's total, nobody above the per-user limit, and the budget's spend equal to the redeemed
coupons' discounts, never above the budget.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from flashsale.clock import ManualClock
from flashsale.coupons import CouponLedger
from flashsale.domain.coupons import Coupon, CouponState, check_claim, check_redeem, restored_state
from flashsale.domain.errors import ErrorCode, FlashSaleError
from tests.contract.coupons.conftest import VALID_UNTIL, CouponLedgerFactory, wave_terms
from tests.factories import OPENS_AT, stress_size

WAVES = {1: wave_terms(1, total=3, per_user_limit=2), 2: wave_terms(2, total=2, per_user_limit=1)}
BUDGET = 100
USERS = ("ann", "bob", "cy")
KEYS = ("k1", "k2", "k3")
ORDERS = ("o1", "o2")
SETTINGS = settings(
    max_examples=stress_size(15, 300),
    stateful_step_count=stress_size(30, 80),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class CouponMachine(RuleBasedStateMachine):
    build: CouponLedgerFactory

    @initialize()
    def start(self) -> None:
        self.clock = ManualClock(OPENS_AT)
        self.ledger: CouponLedger = self.build(self.clock)
        self.ledger.configure_budget(1, BUDGET)
        for terms in WAVES.values():
            self.ledger.configure_wave(terms)
        self.coupons: dict[str, Coupon] = {}  # the model: what each coupon should be
        self.keys: dict[tuple[str, str], str] = {}

    def spent(self) -> int:
        return sum(c.discount_cents for c in self.coupons.values() if c.state is CouponState.REDEEMED)

    def pick(self, n: int) -> Coupon | None:
        ids = sorted(self.coupons)
        return self.coupons[ids[n % len(ids)]] if ids else None

    @rule(wave=st.sampled_from(sorted(WAVES)), user=st.sampled_from(USERS), key=st.sampled_from(KEYS))
    def claim(self, wave: int, user: str, key: str) -> None:
        decision = self.ledger.claim(wave_id=wave, user_id=user, request_id=key)
        known = self.keys.get((user, key))
        if known is not None:
            mine = self.coupons[known]
            if mine.wave_id == wave:
                assert decision.replayed and decision.coupon == mine
            else:
                assert decision.code is ErrorCode.IDEMPOTENCY_MISMATCH
            return
        in_wave = [c for c in self.coupons.values() if c.wave_id == wave]
        expected = check_claim(
            WAVES[wave],
            now=self.clock(),
            claimed_by_user=sum(c.user_id == user for c in in_wave),
            issued=len(in_wave),
        )
        assert decision.code is expected
        if decision.coupon is not None:
            self.coupons[decision.coupon.coupon_id] = decision.coupon
            self.keys[(user, key)] = decision.coupon.coupon_id

    @rule(n=st.integers(0, 20), order=st.sampled_from(ORDERS), discount=st.integers(0, 60))
    def redeem(self, n: int, order: str, discount: int) -> None:
        coupon = self.pick(n)
        if coupon is None:
            return
        expected = check_redeem(
            coupon,
            order_id=order,
            discount_cents=discount,
            now=self.clock(),
            budget_left=BUDGET - self.spent(),
        )
        try:
            used = self.ledger.redeem(coupon.coupon_id, order_id=order, discount_cents=discount)
        except FlashSaleError as exc:
            assert exc.code is expected
            return
        assert expected is None
        if coupon.state is not CouponState.REDEEMED:
            coupon = coupon._replace(state=CouponState.REDEEMED, order_id=order, discount_cents=discount)
            self.coupons[coupon.coupon_id] = coupon
        assert used == coupon

    @rule(n=st.integers(0, 20), order=st.sampled_from(ORDERS))
    def restore(self, n: int, order: str) -> None:
        coupon = self.pick(n)
        if coupon is None:
            return
        if coupon.state is CouponState.REDEEMED and coupon.order_id == order:
            coupon = coupon._replace(
                state=restored_state(coupon, self.clock()), order_id=None, discount_cents=0
            )
            self.coupons[coupon.coupon_id] = coupon
        assert self.ledger.restore(coupon.coupon_id, order_id=order) == coupon

    @rule(n=st.integers(0, 20))
    def revoke(self, n: int) -> None:
        coupon = self.pick(n)
        if coupon is None:
            return
        self.ledger.revoke(coupon.coupon_id)
        if coupon.state is CouponState.AVAILABLE:
            del self.coupons[coupon.coupon_id]
            del self.keys[(coupon.user_id, coupon.request_id)]

    @rule(seconds=st.sampled_from([60.0, 86_400.0, VALID_UNTIL - OPENS_AT]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def agrees_with_the_model(self) -> None:
        if not hasattr(self, "ledger"):
            return
        for wave_id in WAVES:
            in_wave = [c for c in self.coupons.values() if c.wave_id == wave_id]
            assert self.ledger.wave_level(wave_id).issued == len(in_wave) <= WAVES[wave_id].total
            assert (
                max(Counter(c.user_id for c in in_wave).values(), default=0) <= WAVES[wave_id].per_user_limit
            )
        assert self.ledger.budget_level(1).spent_cents == self.spent() <= BUDGET
        for user in USERS:
            mine = sorted(c.coupon_id for c in self.coupons.values() if c.user_id == user)
            assert sorted(c.coupon_id for c in self.ledger.coupons_of(user)) == mine
            assert all(self.ledger.get(c) == self.coupons[c] for c in mine)


def test_the_coupon_ledger_agrees_with_a_simple_model_after_every_step(
    make_coupon_ledger: CouponLedgerFactory,
) -> None:
    machine = type("Machine", (CouponMachine,), {"build": staticmethod(make_coupon_ledger)})
    run_state_machine_as_test(machine, settings=SETTINGS)
