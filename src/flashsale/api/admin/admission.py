"""Admission terms per campaign (rate limits, hoarders) and per item (sale token, waiting room)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from flashsale.api.admission_schemas import (
    CampaignAdmissionOut,
    CampaignAdmissionPatch,
    ItemAdmissionOut,
    ItemAdmissionPatch,
    RoomRecordOut,
)
from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.services.admission_policy import AdmissionTerms

router = APIRouter(tags=["admin: admission"], responses=error_responses(404))


def _terms(platform: PlatformDep) -> AdmissionTerms:
    return AdmissionTerms(platform.deps)


@router.get("/campaigns/{campaign_id}/admission")
def get_campaign_admission(campaign_id: PathId, platform: PlatformDep) -> CampaignAdmissionOut:
    """A campaign's rate limits and hoarder policy."""
    return CampaignAdmissionOut.model_validate(_terms(platform).campaign(campaign_id))


@router.patch("/campaigns/{campaign_id}/admission")
def set_campaign_admission(
    campaign_id: PathId, body: CampaignAdmissionPatch, platform: PlatformDep
) -> CampaignAdmissionOut:
    """Change a campaign's rate limits (an empty string removes one) or its hoarder policy.

    Hoarders: from `throttle_after` expired holds in the campaign a shopper may hold and buy at
    most `throttled_limit` units of an item; from `block_after` none; from `cancel_limit` cancelled
    holds none either (cancel-and-rebuy capped). Every worker applies the new
    terms within a second.
    """
    return CampaignAdmissionOut.model_validate(_terms(platform).set_campaign(campaign_id, **body.changes()))


@router.get("/items/{item_id}/admission")
def get_item_admission(item_id: PathId, platform: PlatformDep) -> ItemAdmissionOut:
    """An item's admission terms, with its campaign's."""
    return ItemAdmissionOut.model_validate(_terms(platform).item(item_id))


@router.patch("/items/{item_id}/admission")
def set_item_admission(item_id: PathId, body: ItemAdmissionPatch, platform: PlatformDep) -> ItemAdmissionOut:
    """Require a sale token, open a waiting room admitting K× the remaining stock (K 0: no room), or set
    a quiz answered before the token (a wrong answer costs `quiz_penalty_s`; [] removes it)."""
    return ItemAdmissionOut.model_validate(_terms(platform).set_item(item_id, **body.changes()))


@router.get("/items/{item_id}/waiting-room")
def waiting_room_record(item_id: PathId, request: Request) -> RoomRecordOut:
    """The seed the early crowd was shuffled by, and the line in admission order: a room's fairness."""
    record = request.app.state.gate.state.room.line.record(item_id)
    return RoomRecordOut(seed=record.seed, early=list(record.early), line=list(record.line))
