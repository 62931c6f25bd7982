"""Admission at the shop's edge: sale tokens (the hidden path) and waiting rooms.

A waiting room's crowd polls its place all the time (10,000 shoppers every 10 s is 1,000 polls a
second), on the same event loop as the buyers. `RoomPollFastPath` answers a well-formed poll
without the framework (routing, dependencies, response validation cost far more than the answer),
through the same `AdmissionGate.room_status` and serialisation as the route; anything else goes on
to the route, so the OpenAPI document and every error answer stay the route's.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from flashsale.api.admission_schemas import QuizOut, RoomOut, SaleTokenIn, SaleTokenOut
from flashsale.api.deps import CurrentShopper, PathId
from flashsale.api.errors import error_response, error_responses
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
        poll_after_s=status.poll_after_s,
    )


@router.post("/{item_id}/sale-token", status_code=201, responses=error_responses(401, 403, 409))
def sale_token(
    item_id: PathId, shopper: CurrentShopper, request: Request, body: SaleTokenIn | None = None
) -> SaleTokenOut:
    """A single-use token to buy this item, for you only, valid briefly; issued once the session is open.

    409 SESSION_NOT_OPEN before the open; 409 IN_QUEUE if the item's waiting room has not admitted
    you; for an item with a quiz, 403 QUIZ_FAILED without the right `answer` (a wrong one costs a
    wait, said in Retry-After).
    """
    answer = body.answer if body is not None else None
    token, expires = _gate(request).issue_sale_token(shopper, item_id, answer)
    return SaleTokenOut(token=token, expires_at=from_epoch(expires))


@router.get("/{item_id}/quiz", responses=error_responses(401, 409))
def quiz(item_id: PathId, shopper: CurrentShopper, request: Request) -> QuizOut:
    """Your question for this item (the same one every time), once the session is open; 404 without a quiz."""
    asked = _gate(request).quiz_question(shopper, item_id)
    return QuizOut(question=asked.question, choices=list(asked.choices))


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

    403 QUEUE_TICKET_INVALID for a ticket the room did not issue for this item; 429 RATE_LIMITED
    (with Retry-After) for a poll before the `poll_after_s` of the ticket's last answer.
    """
    return _room_out(_gate(request).room_status(ticket, item_id))


_POLL_PATH = re.compile(r"/items/([1-9][0-9]{0,9})/queue")
_POLL_ROUTE = next(r for r in router.routes if getattr(r, "endpoint", None) is queue_status)


class RoomPollFastPath:
    """Pure ASGI middleware: answer `GET /items/{id}/queue` with a `Queue-Ticket`; see the module doc."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a plain poll, or pass the request on unchanged."""
        found = _POLL_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        ticket = Headers(scope=scope).get("queue-ticket") if found and scope["method"] == "GET" else None
        if found is None or not ticket or len(ticket) > MAX_TICKET_LENGTH or int(found[1]) > 2**31 - 1:
            await self.app(scope, receive, send)
            return
        scope["route"] = _POLL_ROUTE  # metrics and logs see the route it stands for
        gate: AdmissionGate = scope["app"].state.gate
        try:
            answer: Response = Response(
                _room_out(gate.room_status(ticket, int(found[1]))).model_dump_json(),
                media_type="application/json",
            )
        except Exception as exc:  # answered as the route's handlers would answer it
            answer = await error_response(Request(scope, receive), exc)
        await answer(scope, receive, send)
