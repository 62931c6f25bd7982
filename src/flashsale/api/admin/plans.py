"""A campaign's plan: the traffic forecast per session, throwaway copies for load rehearsals, KPI
targets, and marketing channels (budget, spend, attribution) for the review's ROI."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.plan_schemas import (
    ChannelOut,
    ChannelsIn,
    ForecastIn,
    RehearsalCopyIn,
    RehearsalCopyOut,
    SessionForecastOut,
    TargetsIn,
    TargetsOut,
)
from flashsale.api.schemas import MAX_INT32
from flashsale.services.forecasts import Forecasts
from flashsale.services.goals import Goals
from flashsale.services.rehearsal_copy import copy_for_rehearsal

router = APIRouter(prefix="/campaigns/{campaign_id}", tags=["admin: plans"], responses=error_responses(404))


@router.get("/forecast")
def get_forecast(
    campaign_id: PathId,
    platform: PlatformDep,
    from_campaign: Annotated[
        int | None, Query(ge=1, le=MAX_INT32, description="Read it off this campaign's orders instead")
    ] = None,
) -> list[SessionForecastOut]:
    """Each session with its traffic forecast: the one entered, or one read off a previous campaign.

    From a previous campaign, sessions are matched in start order: its participants arriving over
    the time from the open to the first order of its last participant.
    """
    views = Forecasts(platform.deps).get(campaign_id, from_campaign=from_campaign)
    return [SessionForecastOut.of(v) for v in views]


@router.put("/forecast")
def set_forecast(campaign_id: PathId, body: ForecastIn, platform: PlatformDep) -> list[SessionForecastOut]:
    """Enter the forecast of the sessions named (others keep theirs)."""
    views = Forecasts(platform.deps).set(campaign_id, [s.to_domain() for s in body.sessions])
    return [SessionForecastOut.of(v) for v in views]


@router.post("/rehearsals", status_code=201)
def copy_for_a_rehearsal(
    campaign_id: PathId, body: RehearsalCopyIn, platform: PlatformDep
) -> RehearsalCopyOut:
    """Copy the campaign for a load rehearsal: the sessions named, at the windows given, with their
    items on new products of their own, so a rehearsal never touches the real stock.

    The copy is hidden from the shop (GET /sessions, the live board), and its items are sold only
    to purchases that carry the answer's `rehearsal_pass`."""
    copy = copy_for_rehearsal(platform.catalog, campaign_id, [w.to_domain() for w in body.sessions])
    return RehearsalCopyOut.of(copy, platform.admission.passes.issue(copy.campaign.id))


@router.get("/targets")
def get_targets(campaign_id: PathId, platform: PlatformDep) -> TargetsOut:
    """The campaign's KPI targets (money in cents, shares as 0..1)."""
    return TargetsOut.of(Goals(platform.deps).targets(campaign_id))


@router.put("/targets")
def set_targets(campaign_id: PathId, body: TargetsIn, platform: PlatformDep) -> TargetsOut:
    """Replace the campaign's KPI targets; the review shows each KPI against its target."""
    return TargetsOut.of(Goals(platform.deps).set_targets(campaign_id, body.to_domain()))


@router.get("/channels")
def get_channels(campaign_id: PathId, platform: PlatformDep) -> list[ChannelOut]:
    """The campaign's marketing channels, by name."""
    return [ChannelOut.model_validate(c) for c in Goals(platform.deps).channels(campaign_id)]


@router.put("/channels")
def set_channels(campaign_id: PathId, body: ChannelsIn, platform: PlatformDep) -> list[ChannelOut]:
    """Replace the campaign's channels: budget, actual spend, and the paid orders and GMV you
    attribute to each; the review shows budget against spend and the ROI of each."""
    channels = Goals(platform.deps).set_channels(campaign_id, [c.to_domain() for c in body.channels])
    return [ChannelOut.model_validate(c) for c in channels]
