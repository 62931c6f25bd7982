"""Coupon templates and waves for the service and API tests: 满300减30 valid for a week from T0."""

from __future__ import annotations

from datetime import timedelta

from flashsale.bootstrap import Platform
from flashsale.domain.coupons import CouponKind, CouponTemplate, CouponWave
from flashsale.domain.promotions import Tier
from flashsale.services.coupons import WaveView
from tests.conftest import T0


def threshold_template(*, budget_cents: int | None = 100_000, name: str = "满300减30") -> CouponTemplate:
    """满300减30 on the whole shop, valid for a week from T0, with a budget (id given by the store)."""
    return CouponTemplate(
        id=0,
        name=name,
        kind=CouponKind.THRESHOLD,
        valid_from=T0,
        valid_until=T0 + timedelta(days=7),
        tiers=(Tier(30_000, 3_000),),
        budget_cents=budget_cents,
    )


def open_wave(
    platform: Platform, *, total: int = 10, per_user_limit: int = 1, budget_cents: int = 100_000
) -> WaveView:
    """A new template and a wave of it that hands out `total` coupons from T0."""
    template = platform.coupons.create_template(threshold_template(budget_cents=budget_cents))
    return platform.coupons.create_wave(CouponWave(0, template.id, T0, total, per_user_limit))
