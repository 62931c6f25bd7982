"""Admission at the shop's edge: sale tokens (the hidden path) and waiting rooms."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from flashsale.api.admission_schemas import RoomOut, SaleTokenOut
from flashsale.api.deps import CurrentShopper, PathId
from flashsale.api.errors import error_responses
from flashsale.services.admission_gate import AdmissionGate
from flashsale.services.waiting_room import MAX_TICKET_LENGTH, RoomStatus
from flashsale.store.repositories import from_epoch

router = APIRouter(prefix="/items", tags=["admission"], responses=error_responses(404, 422, 429))


def _gate(request: Request) -> AdmissionGate:
    gate: AdmissionGate = request.app.state.gate
    return gate


def _room_out(status: RoomStatus) -> RoomOut:
    ends = status.window_ends_at
    return RoomOut(
        item_id=status.item_id,
        state=status.state,
        ahead=status.ahead,
        eta_s=status.eta_s,
        window_ends_at=None if ends is None else from_epoch(ends),
        ticket=status.ticket,
    )


@router.post("/{item_id}/sale-token", status_code=201, responses=error_responses(401, 409))
def sale_token(item_id: PathId, shopper: CurrentShopper, request: Request) -> SaleTokenOut:
    """A single-use token to buy this item, for you only, valid briefly; issued once the session is open.

    409 SESSION_NOT_OPEN before the open; 409 IN_QUEUE if the item's waiting room has not admitted you.
    """
    token, expires = _gate(request).issue_sale_token(shopper, item_id)
    return SaleTokenOut(token=token, expires_at=from_epoch(expires))


@router.post("/{item_id}/queue", responses=error_responses(401))
def join_queue(item_id: PathId, shopper: CurrentShopper, request: Request) -> RoomOut:
    """Join the item's waiting room, or look again: joining twice keeps your place.

    Before the open, everyone who joined is put in line in a random order at the open; later
    arrivals queue behind, first come first served. 404 if the item has no waiting room.
    """
    return _room_out(_gate(request).join_room(shopper, item_id))


@router.get("/{item_id}/queue", responses=error_responses(403))
def queue_status(
    item_id: PathId,
    request: Request,
    ticket: Annotated[str, Header(alias="Queue-Ticket", min_length=1, max_length=MAX_TICKET_LENGTH)],
) -> RoomOut:
    """Where your ticket stands: waiting (how many ahead, ETA), admitted (until when), or closed (sold out).

    403 QUEUE_TICKET_INVALID for a ticket the room did not issue for this item.
    """
    return _room_out(_gate(request).room_status(ticket, item_id))
