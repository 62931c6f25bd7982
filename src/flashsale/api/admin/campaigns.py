"""Campaigns and their phases (蓄水, 预热, 爆发, 返场)."""

from __future__ import annotations

from fastapi import APIRouter

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import CampaignIn, CampaignOut, CampaignPatch

router = APIRouter(prefix="/campaigns", tags=["admin: campaigns"])


@router.post("", status_code=201)
def create_campaign(body: CampaignIn, platform: PlatformDep) -> CampaignOut:
    """Create a campaign with its phases."""
    campaign = platform.catalog.create_campaign(
        name=body.name,
        theme=body.theme,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        phases=[p.to_domain() for p in body.phases],
        payment_window_s=body.payment_window_s,
    )
    return CampaignOut.model_validate(campaign)


@router.get("")
def list_campaigns(platform: PlatformDep) -> list[CampaignOut]:
    """List every campaign."""
    return [CampaignOut.model_validate(c) for c in platform.catalog_views.list_campaigns()]


@router.get("/{campaign_id}", responses=error_responses(404))
def get_campaign(campaign_id: PathId, platform: PlatformDep) -> CampaignOut:
    """Show one campaign."""
    return CampaignOut.model_validate(platform.catalog_views.get_campaign(campaign_id))


@router.patch("/{campaign_id}", responses=error_responses(404, 409))
def update_campaign(campaign_id: PathId, body: CampaignPatch, platform: PlatformDep) -> CampaignOut:
    """Change a campaign; a new payment window applies to new holds, phases are replaced whole."""
    return CampaignOut.model_validate(platform.catalog.update_campaign(campaign_id, **body.changes()))
