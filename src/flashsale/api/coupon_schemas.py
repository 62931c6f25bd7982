"""Request and response bodies of the coupon routes (shopper and operator), allow-listed both ways.

Bounds are the stored columns' widths, as in `flashsale.api.schemas`; the rules (a percent of
1..100, rising 满减 tiers, a window that ends after it starts) are the domain's, reached through
`domain_value`, so a refused body answers 422 and stores nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field

from flashsale.api.schemas import AdminIn, Cents, Id, In, Moment, Name, Out, UtcTime, domain_value
from flashsale.domain.coupons import (
    MAX_CLAIMS_PER_USER,
    MAX_WAVE_TOTAL,
    CouponKind,
    CouponState,
    CouponTemplate,
    CouponWave,
)
from flashsale.domain.promotions import Tier
from flashsale.services.coupons import CODE_LENGTH, OwnedCoupon, WaveView

WaveTotal = Annotated[int, Field(ge=1, le=MAX_WAVE_TOTAL, description="Coupons the wave hands out at most")]
ClaimLimit = Annotated[
    int, Field(ge=1, le=MAX_CLAIMS_PER_USER, description="Coupons of the wave one shopper may claim")
]
Category = Annotated[str, Field(min_length=1, max_length=100)]


class TierIn(AdminIn):
    threshold_cents: Annotated[int, Field(ge=1, le=10**12)]
    off_cents: Annotated[int, Field(ge=1, le=10**12)]


class CouponTemplateIn(AdminIn):
    """A coupon or red packet: `amount` (off_cents), `percent` (percent, cap_cents), `threshold` (tiers),
    `every` (one tier: 每满 threshold 减 off, repeating; cap it with cap_cents)."""

    name: Name
    kind: Annotated[CouponKind, Field(strict=False)]
    off_cents: Cents = 0
    percent: Annotated[int, Field(ge=0, le=100, description="Percent off (8折 is 20)")] = 0
    tiers: Annotated[list[TierIn], Field(max_length=10, description="满减 tiers, rising")] = Field(
        default_factory=list
    )
    min_spend_cents: Cents = 0
    cap_cents: Annotated[int, Field(ge=1, le=10**12)] | None = None
    categories: Annotated[list[Category], Field(max_length=50)] | None = None
    product_ids: Annotated[list[Id], Field(max_length=1000)] | None = None
    valid_from: Moment
    valid_until: Moment
    budget_cents: Annotated[
        Cents | None, Field(description="Most the template may take off in total; null: no ceiling")
    ] = None
    group: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="Coupons of one group do not stack with each other"
    )

    def to_domain(self) -> CouponTemplate:
        return domain_value(
            lambda: CouponTemplate(
                id=0,
                name=self.name,
                kind=self.kind,
                valid_from=self.valid_from,
                valid_until=self.valid_until,
                off_cents=self.off_cents,
                percent=self.percent,
                tiers=tuple(Tier(t.threshold_cents, t.off_cents) for t in self.tiers),
                min_spend_cents=self.min_spend_cents,
                cap_cents=self.cap_cents,
                categories=frozenset(self.categories) if self.categories is not None else None,
                product_ids=frozenset(self.product_ids) if self.product_ids is not None else None,
                budget_cents=self.budget_cents,
                group=self.group,
            )
        )


class TierOut(Out):
    threshold_cents: int
    off_cents: int


class CouponTemplateOut(Out):
    id: int
    name: str
    kind: CouponKind
    off_cents: int
    percent: int
    tiers: list[TierOut]
    min_spend_cents: int
    cap_cents: int | None
    categories: list[str] | None
    product_ids: list[int] | None
    valid_from: UtcTime
    valid_until: UtcTime
    budget_cents: int | None
    spent_cents: int = Field(description="What redeemed coupons of the template took off so far")
    group: str | None
    auto_apply: bool = Field(False, description="A shop promotion: applies by itself at checkout")
    campaign_id: int | None = None

    @classmethod
    def of(cls, template: CouponTemplate, spent_cents: int) -> CouponTemplateOut:
        return cls(
            id=template.id,
            name=template.name,
            kind=template.kind,
            off_cents=template.off_cents,
            percent=template.percent,
            tiers=[TierOut(threshold_cents=t.threshold_cents, off_cents=t.off_cents) for t in template.tiers],
            min_spend_cents=template.min_spend_cents,
            cap_cents=template.cap_cents,
            categories=sorted(template.categories) if template.categories is not None else None,
            product_ids=sorted(template.product_ids) if template.product_ids is not None else None,
            valid_from=template.valid_from,
            valid_until=template.valid_until,
            budget_cents=template.budget_cents,
            spent_cents=spent_cents,
            group=template.group,
            auto_apply=template.auto_apply,
            campaign_id=template.campaign_id,
        )


class WaveIn(AdminIn):
    template_id: Id
    starts_at: Moment
    ends_at: Moment | None = None
    total: WaveTotal
    per_user_limit: ClaimLimit = 1

    def to_domain(self) -> CouponWave:
        return domain_value(
            lambda: CouponWave(
                0, self.template_id, self.starts_at, self.total, self.per_user_limit, self.ends_at
            )
        )


class CodesIn(WaveIn):
    """A run of single-use codes: `total` codes, `per_user_limit` of them redeemable by one shopper."""


class WaveOut(Out):
    id: int
    template_id: int
    starts_at: UtcTime
    ends_at: UtcTime | None
    total: int
    per_user_limit: int
    issued: int
    codes: bool = Field(description="A run of single-use codes: claimed with a code, not the wave id")

    @classmethod
    def of(cls, view: WaveView) -> WaveOut:
        wave = view.wave
        return cls(
            id=wave.id,
            template_id=wave.template_id,
            starts_at=wave.starts_at,
            ends_at=wave.ends_at,
            total=wave.total,
            per_user_limit=wave.per_user_limit,
            issued=view.level.issued,
            codes=view.codes,
        )


class CodesOut(Out):
    wave: WaveOut
    codes: list[str]


class ClaimIn(In):
    wave_id: Id


class CodeIn(In):
    code: Annotated[str, Field(min_length=1, max_length=CODE_LENGTH + 8, description="As printed; any case")]


class CouponOut(Out):
    id: str
    wave_id: int
    template_id: int
    name: str
    kind: CouponKind
    state: CouponState
    off_cents: int
    percent: int
    tiers: list[TierOut]
    min_spend_cents: int
    cap_cents: int | None
    valid_from: UtcTime
    valid_until: UtcTime
    claimed_at: UtcTime
    order_id: str | None

    @classmethod
    def of(cls, owned: OwnedCoupon) -> CouponOut:
        coupon, template = owned.coupon, owned.template
        return cls(
            id=coupon.coupon_id,
            wave_id=coupon.wave_id,
            template_id=coupon.template_id,
            name=template.name,
            kind=template.kind,
            state=coupon.state,
            off_cents=template.off_cents,
            percent=template.percent,
            tiers=[TierOut(threshold_cents=t.threshold_cents, off_cents=t.off_cents) for t in template.tiers],
            min_spend_cents=template.min_spend_cents,
            cap_cents=template.cap_cents,
            valid_from=template.valid_from,
            valid_until=template.valid_until,
            claimed_at=datetime.fromtimestamp(coupon.claimed_at, UTC),
            order_id=coupon.order_id,
        )
