"""The live board over HTTP: the page, its data, and the stream that keeps it moving.

`GET /board` is a self-contained page (no build step, no CDN): a shopper view per session (stock
bar, countdown, people taking part, sold out) and an operations table per item. It follows
`GET /board/events`, Server-Sent Events carrying the whole board at every build (at least once a
second while anyone watches); `GET /board/view` answers the same data once. Every viewer shares one
builder (services/board.py): watching costs no query per viewer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from flashsale.services.board import BoardFeed

router = APIRouter(prefix="/board", tags=["board"])
PAGE = files("flashsale.api").joinpath("static/board.html")


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def board_page() -> HTMLResponse:
    """The live board page."""
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


@router.get("/view", responses={200: {"description": "The board as JSON, as the stream carries it"}})
async def board_view(request: Request) -> Response:
    """The board as data: every session the shop shows, with its items' stock and order figures.

    At most a second old: the build the stream's viewers share, or a new one if nobody watches.
    """
    feed: BoardFeed = request.app.state.board
    return Response(await feed.current(), media_type="application/json")  # serialised once, by the feed


# A stream never ends by itself, so it stays out of the OpenAPI document (a schema fuzzer would
# wait on it forever); the page and /board/view say what it carries.
@router.get("/events", include_in_schema=False)
async def board_events(request: Request) -> Response:
    """Server-Sent Events: `event: board` with the whole board as JSON, at every build."""
    feed: BoardFeed = request.app.state.board

    async def stream() -> AsyncIterator[str]:
        seen = 0
        yield f"retry: {int(feed.interval_s * 1000)}\n\n"  # how soon a dropped viewer reconnects
        while not await request.is_disconnected():
            seen, body = await feed.next(seen)
            yield f"id: {seen}\nevent: board\ndata: {body}\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
