"""Group buys for shoppers: see the deals, open a group, join one, pay your seat, see a group."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from flashsale.api.deps import CurrentShopper, IdempotencyKey, PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import OrderOut, Out, UtcTime
from flashsale.domain.group_buy import GroupDeal, GroupStatus
from flashsale.domain.orders import OrderStatus
from flashsale.services.group_buy import GroupView, Membership

router = APIRouter(tags=["group buy"], responses=error_responses(401, 422))

GroupId = Annotated[str, Path(min_length=1, max_length=64)]


class GroupDealOut(Out):
    id: int
    item_id: int
    size: int
    price_cents: int
    fill_window_s: int


class SeatOut(Out):
    seat: int
    mine: bool
    order_status: OrderStatus | None


class GroupOut(Out):
    id: str
    deal_id: int
    item_id: int
    size: int
    price_cents: int
    status: GroupStatus
    members: int
    opened_at: UtcTime
    deadline: UtcTime
    seats: list[SeatOut]


class MembershipOut(Out):
    group: GroupOut
    seat: int
    order: OrderOut


def group_out(view: GroupView, viewer: str | None = None) -> GroupOut:
    """The group as a shopper sees it: seats and their orders' states, their own seat marked, no names."""
    g = view.group
    seats = [SeatOut(seat=s.seat, mine=s.user_id == viewer, order_status=s.order_status) for s in view.seats]
    return GroupOut(
        id=g.id,
        deal_id=g.deal_id,
        item_id=g.item_id,
        size=g.size,
        price_cents=g.price_cents,
        status=g.status,
        members=g.members,
        opened_at=g.opened_at,
        deadline=g.deadline,
        seats=seats,
    )


def _membership_out(member: Membership, platform: PlatformDep, shopper: str) -> MembershipOut:
    view = platform.groups.get(member.group.id)
    return MembershipOut(
        group=group_out(view, shopper), seat=member.seat, order=OrderOut.model_validate(member.order)
    )


def deal_out(deal: GroupDeal) -> GroupDealOut:
    return GroupDealOut.model_validate(deal)


@router.get("/group-deals")
def list_group_deals(platform: PlatformDep, shopper: CurrentShopper) -> list[GroupDealOut]:
    """The group-buy deals on offer: groups of `size` each buying one unit at `price_cents`."""
    return [deal_out(d) for d in platform.groups.deals()]


@router.post("/group-deals/{deal_id}/groups", status_code=201, responses=error_responses(400, 404, 409, 503))
def open_group(
    deal_id: PathId, shopper: CurrentShopper, platform: PlatformDep, key: IdempotencyKey
) -> MembershipOut:
    """Open a group on the deal as its leader, in seat 1, with one unit held at the group price.

    The group fills when every seat's order is paid within the deal's fill window; otherwise every
    hold is released and every payment refunded. The same Idempotency-Key answers the same group.
    """
    return _membership_out(platform.groups.open(shopper, deal_id, key), platform, shopper)


@router.post("/groups/{group_id}/join", responses=error_responses(404, 409, 503))
def join_group(group_id: GroupId, shopper: CurrentShopper, platform: PlatformDep) -> MembershipOut:
    """Take a free seat and hold one unit at the group price (409 GROUP_FULL or GROUP_CLOSED).

    A member who already has a seat gets it back; a seat whose order expired unpaid is free again.
    """
    return _membership_out(platform.groups.join(group_id, shopper), platform, shopper)


@router.post("/groups/{group_id}/pay", responses=error_responses(404, 409, 503))
def pay_group_seat(group_id: GroupId, shopper: CurrentShopper, platform: PlatformDep) -> MembershipOut:
    """Pay the shopper's seat through the sandbox (charged at most once); the last payment fills the group."""
    return _membership_out(platform.groups.pay(group_id, shopper), platform, shopper)


@router.get("/groups/{group_id}", responses=error_responses(404))
def get_group(group_id: GroupId, shopper: CurrentShopper, platform: PlatformDep) -> GroupOut:
    """A group: its status, deadline and seats (the shopper's own marked)."""
    return group_out(platform.groups.get(group_id), shopper)
