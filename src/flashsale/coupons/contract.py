"""The coupon ledger contract: every engine (in-process, Redis) gives exactly these guarantees.

Guarantees shared by all engines:
- `claim` is one atomic decision: a known `(user_id, request_id)` is answered first (the same
  coupon, `replayed=True`, or IDEMPOTENCY_MISMATCH when the key named another wave), then
  UNKNOWN_COUPON for an unknown wave, then the first rule of `domain.coupons.check_claim`
  (COUPON_NOT_STARTED, COUPON_CLAIM_CLOSED, COUPON_LIMIT, COUPON_ISSUE_EXHAUSTED); otherwise the
  coupon is issued and the counters move together. Refusals change nothing and are not remembered.
- At every instant, per wave: `issued <= total`, and every user's claims <= `per_user_limit`
  (unless an operator lowered the terms below what was issued: then nothing more is issued).
- Per template: `0 <= spent <= budget` (when it has a budget). `redeem` takes the discount from the
  budget in the same atomic step that marks the coupon REDEEMED, or refuses (BUDGET_EXHAUSTED,
  COUPON_USED, COUPON_EXPIRED, UNKNOWN_COUPON) and changes nothing. `spent` is always the sum of
  the discounts of the template's REDEEMED coupons.
- `redeem` and `restore` are idempotent per order: redeeming again for the same order returns the
  coupon unchanged (no second charge to the budget); `restore` gives the budget back once, and only
  for the order that redeemed the coupon (an old order's restore after the coupon moved on to
  another order changes nothing).
- Coupon ids are unguessable (the hold id format, `flashsale.ledger.ids`).
- `load` replaces the state with the system of record's (after a restart); the Redis engine can be
  told to load only when it holds nothing yet, so workers starting together load once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol, runtime_checkable

from flashsale.domain.coupons import Coupon, WaveTerms
from flashsale.domain.errors import ErrorCode


class ClaimDecision(NamedTuple):
    """The answer to `claim`: a coupon, or the code of the refusal."""

    coupon: Coupon | None
    code: ErrorCode | None = None
    replayed: bool = False

    @property
    def granted(self) -> bool:
        return self.coupon is not None


class WaveLevel(NamedTuple):
    wave_id: int
    total: int
    issued: int


class BudgetLevel(NamedTuple):
    """A template's budget (None: unlimited) and what redeemed coupons of it took off so far."""

    template_id: int
    budget_cents: int | None
    spent_cents: int


@runtime_checkable
class CouponLedger(Protocol):
    def configure_wave(self, terms: WaveTerms) -> WaveLevel:
        """Register a wave or change its terms; issued coupons stay issued (a lower total stops issue)."""
        ...

    def configure_budget(self, template_id: int, budget_cents: int | None) -> BudgetLevel:
        """Register a template's budget or change it; a budget below what is spent is refused (CONFLICT)."""
        ...

    def claim(self, *, wave_id: int, user_id: str, request_id: str) -> ClaimDecision:
        """Atomically issue one coupon of the wave to the user, or refuse with a code (see module doc)."""
        ...

    def revoke(self, coupon_id: str) -> None:
        """Undo a claim whose record could not be stored: the wave's and the user's counts go back.

        Only an AVAILABLE coupon is revoked (a redeemed one is in use); idempotent; unknown ids are ignored.
        """
        ...

    def redeem(self, coupon_id: str, *, order_id: str, discount_cents: int) -> Coupon:
        """Mark the coupon used by `order_id` and take `discount_cents` from its template's budget, at once.

        Raises FlashSaleError: UNKNOWN_COUPON, COUPON_USED (another order has it), COUPON_EXPIRED
        (outside the template's validity, or LAPSED), BUDGET_EXHAUSTED (the budget left is smaller
        than the discount). Redeeming again for the same order returns it unchanged.
        """
        ...

    def restore(self, coupon_id: str, *, order_id: str) -> Coupon:
        """Undo `order_id`'s redemption: the budget gets the discount back, the coupon is usable again.

        AVAILABLE while the template is still valid (`domain.coupons.restored_state`), else LAPSED.
        A coupon not redeemed by `order_id` is returned unchanged. Unknown: UNKNOWN_COUPON.
        """
        ...

    def get(self, coupon_id: str) -> Coupon | None:
        """Return a coupon snapshot, or None."""
        ...

    def coupons_of(self, user_id: str) -> list[Coupon]:
        """Return every coupon the user holds, in any state, oldest claim first."""
        ...

    def wave_level(self, wave_id: int) -> WaveLevel:
        """Return the wave's total and issued count. Unknown: UNKNOWN_COUPON."""
        ...

    def budget_level(self, template_id: int) -> BudgetLevel:
        """Return the template's budget and spend. Unknown: UNKNOWN_COUPON."""
        ...

    def load(
        self,
        waves: Iterable[WaveTerms],
        budgets: Iterable[tuple[int, int | None]],
        coupons: Iterable[Coupon],
        *,
        only_if_empty: bool = False,
    ) -> bool:
        """Replace the state with the system of record's; return whether it did.

        Counters (issued, per-user claims, spent) are derived from `coupons`. With `only_if_empty`,
        an engine that already holds state keeps it and returns False (a shared engine that other
        processes have been deciding on is newer than the store).
        """
        ...

    def close(self) -> None:
        """Release the engine's connections. Idempotent."""
        ...
