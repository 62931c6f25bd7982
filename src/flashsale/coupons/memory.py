"""The in-process coupon ledger: one lock and plain dicts; the store is its truth across restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from flashsale.clock import Clock
from flashsale.coupons.contract import BudgetLevel, ClaimDecision, WaveLevel
from flashsale.domain.coupons import Coupon, CouponState, WaveTerms, check_claim, check_redeem, restored_state
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.ledger.ids import HoldIdPool

_REFUSED = {code: ClaimDecision(None, code) for code in ErrorCode}


class _Wave:
    __slots__ = ("claims", "issued", "terms")

    def __init__(self, terms: WaveTerms) -> None:
        self.terms = terms
        self.issued = 0
        self.claims: dict[str, int] = {}


class _Budget:
    __slots__ = ("budget", "spent")

    def __init__(self, budget: int | None) -> None:
        self.budget = budget
        self.spent = 0

    def level(self, template_id: int) -> BudgetLevel:
        return BudgetLevel(template_id, self.budget, self.spent)


class MemoryCouponLedger:
    """Thread-safe in-process implementation of `flashsale.coupons.contract.CouponLedger`."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._waves: dict[int, _Wave] = {}
        self._budgets: dict[int, _Budget] = {}
        self._coupons: dict[str, Coupon] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._by_user: dict[str, list[str]] = {}
        self._new_id = HoldIdPool()

    def close(self) -> None:
        """Nothing to release."""

    def configure_wave(self, terms: WaveTerms) -> WaveLevel:
        with self._lock:
            wave = self._waves.get(terms.wave_id)
            if wave is None:
                wave = self._waves[terms.wave_id] = _Wave(terms)
            wave.terms = terms
            return WaveLevel(terms.wave_id, terms.total, wave.issued)

    def configure_budget(self, template_id: int, budget_cents: int | None) -> BudgetLevel:
        with self._lock:
            budget = self._budgets.setdefault(template_id, _Budget(budget_cents))
            if budget_cents is not None and budget_cents < budget.spent:
                raise FlashSaleError(
                    ErrorCode.CONFLICT,
                    f"budget {budget_cents} is below the {budget.spent} cents already spent",
                )
            budget.budget = budget_cents
            return budget.level(template_id)

    def claim(self, *, wave_id: int, user_id: str, request_id: str) -> ClaimDecision:
        with self._lock:
            known = self._by_key.get((user_id, request_id))
            if known is not None:
                coupon = self._coupons[known]
                if coupon.wave_id != wave_id:
                    return _REFUSED[ErrorCode.IDEMPOTENCY_MISMATCH]
                return ClaimDecision(coupon, replayed=True)
            wave = self._waves.get(wave_id)
            if wave is None:
                return _REFUSED[ErrorCode.UNKNOWN_COUPON]
            now = self._clock()
            code = check_claim(
                wave.terms, now=now, claimed_by_user=wave.claims.get(user_id, 0), issued=wave.issued
            )
            if code is not None:
                return _REFUSED[code]
            terms = wave.terms
            coupon = Coupon(
                self._new_id(),
                wave_id,
                terms.template_id,
                user_id,
                request_id,
                CouponState.AVAILABLE,
                now,
                terms.valid_from,
                terms.valid_until,
            )
            self._add(coupon)
            return ClaimDecision(coupon)

    def _add(self, coupon: Coupon) -> None:
        """Count a coupon in its wave, its user's claims and its template's spend (under the lock)."""
        wave = self._waves[coupon.wave_id]
        wave.issued += 1
        wave.claims[coupon.user_id] = wave.claims.get(coupon.user_id, 0) + 1
        if coupon.state is CouponState.REDEEMED:
            self._budgets[coupon.template_id].spent += coupon.discount_cents
        self._coupons[coupon.coupon_id] = coupon
        self._by_key[(coupon.user_id, coupon.request_id)] = coupon.coupon_id
        self._by_user.setdefault(coupon.user_id, []).append(coupon.coupon_id)

    def revoke(self, coupon_id: str) -> None:
        with self._lock:
            coupon = self._coupons.get(coupon_id)
            if coupon is None or coupon.state is not CouponState.AVAILABLE:
                return
            wave = self._waves[coupon.wave_id]
            wave.issued -= 1
            wave.claims[coupon.user_id] -= 1
            del self._coupons[coupon_id]
            del self._by_key[(coupon.user_id, coupon.request_id)]
            self._by_user[coupon.user_id].remove(coupon_id)

    def _coupon(self, coupon_id: str) -> Coupon:
        coupon = self._coupons.get(coupon_id)
        if coupon is None:
            raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, f"no coupon {coupon_id!r}")
        return coupon

    def redeem(self, coupon_id: str, *, order_id: str, discount_cents: int) -> Coupon:
        with self._lock:
            coupon = self._coupon(coupon_id)
            budget = self._budgets.get(coupon.template_id)
            if budget is None:
                raise FlashSaleError(
                    ErrorCode.UNKNOWN_COUPON, f"template {coupon.template_id} has no budget entry"
                )
            left = None if budget.budget is None else budget.budget - budget.spent
            code = check_redeem(
                coupon, order_id=order_id, discount_cents=discount_cents, now=self._clock(), budget_left=left
            )
            if code is not None:
                raise FlashSaleError(code, f"coupon {coupon_id!r} cannot be redeemed: {code.value}")
            if coupon.state is CouponState.REDEEMED:
                return coupon  # this order's replay
            budget.spent += discount_cents
            coupon = coupon._replace(
                state=CouponState.REDEEMED, order_id=order_id, discount_cents=discount_cents
            )
            self._coupons[coupon_id] = coupon
            return coupon

    def restore(self, coupon_id: str, *, order_id: str) -> Coupon:
        with self._lock:
            coupon = self._coupon(coupon_id)
            if coupon.state is not CouponState.REDEEMED or coupon.order_id != order_id:
                return coupon
            self._budgets[coupon.template_id].spent -= coupon.discount_cents
            coupon = coupon._replace(
                state=restored_state(coupon, self._clock()), order_id=None, discount_cents=0
            )
            self._coupons[coupon_id] = coupon
            return coupon

    def get(self, coupon_id: str) -> Coupon | None:
        with self._lock:
            return self._coupons.get(coupon_id)

    def coupons_of(self, user_id: str) -> list[Coupon]:
        with self._lock:
            return [self._coupons[c] for c in self._by_user.get(user_id, ())]

    def wave_level(self, wave_id: int) -> WaveLevel:
        with self._lock:
            wave = self._waves.get(wave_id)
            if wave is None:
                raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, f"no wave {wave_id}")
            return WaveLevel(wave_id, wave.terms.total, wave.issued)

    def budget_level(self, template_id: int) -> BudgetLevel:
        with self._lock:
            budget = self._budgets.get(template_id)
            if budget is None:
                raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, f"no template {template_id}")
            return budget.level(template_id)

    def load(
        self,
        waves: Iterable[WaveTerms],
        budgets: Iterable[tuple[int, int | None]],
        coupons: Iterable[Coupon],
        *,
        only_if_empty: bool = False,
    ) -> bool:
        with self._lock:
            if only_if_empty and (self._waves or self._budgets):
                return False
            self._waves = {t.wave_id: _Wave(t) for t in waves}
            self._budgets = {template_id: _Budget(cents) for template_id, cents in budgets}
            self._coupons.clear()
            self._by_key.clear()
            self._by_user.clear()
            for coupon in sorted(coupons, key=lambda c: c.claimed_at):
                self._add(coupon)
            return True
