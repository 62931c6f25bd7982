"""Coupons and red packets: templates, issue waves, claimed coupons, and the rules every engine obeys.

- A `CouponTemplate` says what a coupon takes off (an amount, a percent, or 满减 tiers), on which
  lines (scope), from which spend, during which validity window, and how much the shop will give
  away through it at most (`budget_cents`). `to_offer` turns it into the price engine's `Offer`.
- A `CouponWave` hands a template out: from `starts_at` (10.10, 预热), `total` coupons at most,
  `per_user_limit` per shopper. A bulk run of single-use codes is a wave too, one coupon per code.
- A template with `auto_apply` is a shop promotion (满300减30 for everyone): no shopper claims it;
  each checkout it applies to is handed a coupon of it, so it spends the same budget, once.
- A `Coupon` is one claimed coupon: AVAILABLE, then REDEEMED by an order (its discount taken from the
  template's budget), and back to AVAILABLE when that order is cancelled, expires or is refunded
  while the template is still valid, or LAPSED when it no longer is (the budget comes back either way).

`check_claim`, `check_redeem` and `restored_state` are the rules; the coupon ledger's engines
(`flashsale.coupons`) call them, and the Redis scripts mirror them. Pure: time is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from flashsale.domain.errors import ErrorCode
from flashsale.domain.promotions import (
    AmountOff,
    Discount,
    EveryOff,
    Offer,
    PercentOff,
    Scope,
    Tier,
    TieredOff,
)

MAX_WAVE_TOTAL = 10_000_000  # coupons one wave may issue
MAX_CLAIMS_PER_USER = 100  # a per-user limit above this is a typo


class CouponKind(StrEnum):
    AMOUNT = "amount"  # a fixed amount off: an amount coupon or a shop red packet (红包)
    PERCENT = "percent"  # percent off (8折 is 20), optionally capped
    THRESHOLD = "threshold"  # 满减: 满300减30, tiers allowed (满300减30/满500减60)
    EVERY = "every"  # 每满减, repeating: one tier (每满200减20), usually with a cap


class CouponState(StrEnum):
    AVAILABLE = "available"  # claimed, not used
    REDEEMED = "redeemed"  # used by an order; its discount counts against the template's budget
    LAPSED = "lapsed"  # its order was undone after the template's validity ended: not usable again


@dataclass(frozen=True, slots=True)
class CouponTemplate:
    """What a coupon of this template takes off, where, when, and the shop's budget for it (cents)."""

    id: int
    name: str
    kind: CouponKind
    valid_from: datetime
    valid_until: datetime  # exclusive
    off_cents: int = 0  # AMOUNT
    percent: int = 0  # PERCENT
    tiers: tuple[Tier, ...] = ()  # THRESHOLD
    min_spend_cents: int = 0
    cap_cents: int | None = None
    categories: frozenset[str] | None = None
    product_ids: frozenset[int] | None = None
    budget_cents: int | None = None  # None: no budget, the template discounts without a ceiling
    group: str | None = None  # coupons sharing a group do not stack (see price_engine)
    # A shop promotion: applies by itself to every cart it fits (no claim), spending the same budget.
    auto_apply: bool = False
    campaign_id: int | None = None  # the campaign a shop promotion belongs to (reports, admin lists)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a coupon template needs a name")
        if self.budget_cents is not None and self.budget_cents < 0:
            raise ValueError("a budget cannot be negative")
        self.to_offer("check")  # the price engine's own checks: amounts, tiers, cap, window

    @property
    def discount(self) -> Discount:
        """The price engine's discount of this template (raises ValueError when the fields do not fit)."""
        if self.kind is CouponKind.AMOUNT:
            return AmountOff(self.off_cents)
        if self.kind is CouponKind.PERCENT:
            return PercentOff(self.percent)
        if self.kind is CouponKind.EVERY:
            if len(self.tiers) != 1:
                raise ValueError("每满减 takes one tier: the step and what each step takes off")
            return EveryOff(self.tiers[0].threshold_cents, self.tiers[0].off_cents)
        return TieredOff(self.tiers)

    @property
    def scope(self) -> Scope:
        return Scope(self.categories, self.product_ids)

    def to_offer(self, code: str) -> Offer:
        """The price engine's view of a coupon of this template, named `code` in the breakdown."""
        return Offer(
            code=code,
            discount=self.discount,
            scope=self.scope,
            min_spend_cents=self.min_spend_cents,
            cap_cents=self.cap_cents,
            group=self.group,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
        )


@dataclass(frozen=True, slots=True)
class CouponWave:
    """One hand-out of a template: from `starts_at` until `ends_at` (None: while coupons last)."""

    id: int
    template_id: int
    starts_at: datetime
    total: int
    per_user_limit: int = 1
    ends_at: datetime | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.total <= MAX_WAVE_TOTAL:
            raise ValueError(f"a wave issues 1..{MAX_WAVE_TOTAL} coupons, not {self.total}")
        if not 1 <= self.per_user_limit <= MAX_CLAIMS_PER_USER:
            raise ValueError(f"the per-user limit must be 1..{MAX_CLAIMS_PER_USER}")
        if self.starts_at.tzinfo is None or (self.ends_at is not None and self.ends_at.tzinfo is None):
            raise ValueError("wave times must be timezone-aware")
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("a wave must end after it starts")

    def terms(self, template: CouponTemplate) -> WaveTerms:
        """What the coupon ledger needs to decide claims of this wave, in epoch seconds."""
        return WaveTerms(
            wave_id=self.id,
            template_id=template.id,
            total=self.total,
            per_user_limit=self.per_user_limit,
            opens=self.starts_at.timestamp(),
            closes=self.ends_at.timestamp() if self.ends_at is not None else math.inf,
            valid_from=template.valid_from.timestamp(),
            valid_until=template.valid_until.timestamp(),
        )


class WaveTerms(NamedTuple):
    """A wave as the coupon ledger keeps it: the claim window and the template's validity, epoch seconds."""

    wave_id: int
    template_id: int
    total: int
    per_user_limit: int
    opens: float
    closes: float  # math.inf: no end
    valid_from: float
    valid_until: float


class Coupon(NamedTuple):
    """A snapshot of one claimed coupon; `order_id` and `discount_cents` name its redemption, if any."""

    coupon_id: str
    wave_id: int
    template_id: int
    user_id: str
    request_id: str
    state: CouponState
    claimed_at: float
    valid_from: float
    valid_until: float
    order_id: str | None = None
    discount_cents: int = 0


def check_claim(terms: WaveTerms, *, now: float, claimed_by_user: int, issued: int) -> ErrorCode | None:
    """The first rule a claim breaks, in this order: not started, closed, the user's limit, none left.

    A wave is closed at its end, and also once its template's validity is over: a coupon nobody can
    use is not handed out.
    """
    if now < terms.opens:
        return ErrorCode.COUPON_NOT_STARTED
    if now >= terms.closes or now >= terms.valid_until:
        return ErrorCode.COUPON_CLAIM_CLOSED
    if claimed_by_user >= terms.per_user_limit:
        return ErrorCode.COUPON_LIMIT
    if issued >= terms.total:
        return ErrorCode.COUPON_ISSUE_EXHAUSTED
    return None


def check_redeem(
    coupon: Coupon, *, order_id: str, discount_cents: int, now: float, budget_left: int | None
) -> ErrorCode | None:
    """Why `coupon` cannot take `discount_cents` off `order_id` now, or None (a replay is None too).

    `budget_left` is what the template's budget still holds (None: no budget). A coupon already
    redeemed by this very order is a replay and passes; any other use is refused.
    """
    if coupon.state is CouponState.REDEEMED:
        return None if coupon.order_id == order_id else ErrorCode.COUPON_USED
    if coupon.state is CouponState.LAPSED or not coupon.valid_from <= now < coupon.valid_until:
        return ErrorCode.COUPON_EXPIRED
    if discount_cents < 0:
        return ErrorCode.VALIDATION_ERROR
    if budget_left is not None and discount_cents > budget_left:
        return ErrorCode.BUDGET_EXHAUSTED
    return None


def restored_state(coupon: Coupon, now: float) -> CouponState:
    """Where a redeemed coupon goes when its order is undone: usable again while its template is valid."""
    return CouponState.AVAILABLE if now < coupon.valid_until else CouponState.LAPSED
