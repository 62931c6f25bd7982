"""Coupon templates, the waves that hand them out, and runs of single-use codes (CSV for SMS/offline)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from flashsale.api.coupon_schemas import (
    CodesIn,
    CodesOut,
    CouponTemplateIn,
    CouponTemplateOut,
    WaveIn,
    WaveOut,
)
from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.services.coupons import CSV_COLUMNS, codes_csv

router = APIRouter(tags=["admin: coupons"])


@router.post("/coupon-templates", status_code=201, responses=error_responses(409))
def create_template(body: CouponTemplateIn, platform: PlatformDep) -> CouponTemplateOut:
    """Create a coupon or red packet template: what it takes off, where, when, and its budget."""
    template = platform.coupons.create_template(body.to_domain())
    return CouponTemplateOut.of(template, spent_cents=0)


@router.get("/coupon-templates")
def list_templates(platform: PlatformDep) -> list[CouponTemplateOut]:
    """List every template with what its redeemed coupons took off its budget so far."""
    return [CouponTemplateOut.of(t, level.spent_cents) for t, level in platform.coupons.templates()]


@router.post("/campaigns/{campaign_id}/promotions", status_code=201, responses=error_responses(404, 409))
def create_promotion(campaign_id: PathId, body: CouponTemplateIn, platform: PlatformDep) -> CouponTemplateOut:
    """Create a shop promotion of a campaign (满300减30, 每满200减20 capped as `percent`… any template kind):
    it applies by itself to every cart it fits at checkout, no claim needed, within its budget."""
    template = platform.coupons.create_promotion(body.to_domain(), campaign_id)
    return CouponTemplateOut.of(template, spent_cents=0)


@router.get("/campaigns/{campaign_id}/promotions")
def list_promotions(campaign_id: PathId, platform: PlatformDep) -> list[CouponTemplateOut]:
    """List a campaign's shop promotions with what they took off their budgets so far."""
    return [
        CouponTemplateOut.of(t, level.spent_cents) for t, level in platform.coupons.promotions_of(campaign_id)
    ]


@router.post("/coupon-waves", status_code=201, responses=error_responses(404))
def create_wave(body: WaveIn, platform: PlatformDep) -> WaveOut:
    """Hand a template out: `total` coupons from `starts_at`, `per_user_limit` per shopper."""
    return WaveOut.of(platform.coupons.create_wave(body.to_domain()))


@router.get("/coupon-waves/{wave_id}", responses=error_responses(404))
def get_wave(wave_id: PathId, platform: PlatformDep) -> WaveOut:
    """Show a wave and how many of its coupons are claimed."""
    return WaveOut.of(platform.coupons.wave(wave_id))


@router.post("/coupon-codes", status_code=201, responses=error_responses(404))
def create_codes(body: CodesIn, platform: PlatformDep) -> CodesOut:
    """Make a run of `total` single-use codes of a template; each becomes one coupon, once."""
    view, codes = platform.coupons.create_codes(body.to_domain())
    return CodesOut(wave=WaveOut.of(view), codes=codes)


_CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": f"Columns: {', '.join(CSV_COLUMNS)}"},
    **error_responses(404),
}


@router.get("/coupon-waves/{wave_id}/codes.csv", response_class=Response, responses=_CSV_RESPONSES)
def export_codes(wave_id: PathId, platform: PlatformDep) -> Response:
    """Export a run's codes as CSV (for SMS or print), with who claimed each so far."""
    return Response(codes_csv(platform.coupons.codes(wave_id)), media_type="text/csv")
