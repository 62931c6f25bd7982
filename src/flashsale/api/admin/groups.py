"""Operator routes for engagement: group-buy deals and groups, settling groups and referrals now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import Field

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import MAX_INT32, AdminIn, Out
from flashsale.api.shop.groups import GroupDealOut, GroupId, GroupOut, deal_out, group_out
from flashsale.domain.group_buy import MAX_FILL_WINDOW_S, MAX_GROUP_SIZE

router = APIRouter(tags=["admin: group buy"])


class GroupDealIn(AdminIn):
    item_id: Annotated[int, Field(ge=1, le=MAX_INT32)]
    size: Annotated[int, Field(ge=2, le=MAX_GROUP_SIZE, description="Members a group needs to fill")]
    price_cents: Annotated[int, Field(ge=0, le=10**12, description="Each member's price for one unit")]
    fill_window_s: Annotated[int, Field(ge=1, le=MAX_FILL_WINDOW_S, description="Seconds to fill")]


class SettledOut(Out):
    settled: int


@router.post("/group-deals", status_code=201, responses=error_responses(422))
def create_group_deal(body: GroupDealIn, platform: PlatformDep) -> GroupDealOut:
    """Offer a group-buy deal on a flash item (the item's session window and per-user limit still apply)."""
    deal = platform.groups.create_deal(body.item_id, body.size, body.price_cents, body.fill_window_s)
    return deal_out(deal)


@router.get("/group-deals")
def list_group_deals(platform: PlatformDep) -> list[GroupDealOut]:
    """Every group-buy deal."""
    return [deal_out(d) for d in platform.groups.deals()]


@router.get("/group-deals/{deal_id}", responses=error_responses(404))
def get_group_deal(deal_id: PathId, platform: PlatformDep) -> GroupDealOut:
    """One group-buy deal."""
    return deal_out(platform.groups.deal(deal_id))


@router.get("/groups/{group_id}", responses=error_responses(404))
def get_group(group_id: GroupId, platform: PlatformDep) -> GroupOut:
    """A group with its seats and their orders' states."""
    return group_out(platform.groups.get(group_id))


@router.post("/group-settlements")
def settle_groups(platform: PlatformDep) -> SettledOut:
    """Settle due groups now (the expiry sweeper does so every pass): fill, fail, refund; idempotent."""
    return SettledOut(settled=platform.groups.settle_due())


@router.post("/referral-settlements", tags=["admin: referral"])
def settle_referrals(platform: PlatformDep) -> SettledOut:
    """Settle referrals now (the expiry sweeper does so every pass): qualify, reward once, or void."""
    return SettledOut(settled=platform.referrals.settle())
