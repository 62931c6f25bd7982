"""The live board over HTTP: the page, its data, and the stream that keeps it moving.

`GET /board` is a self-contained page (no build step, no CDN): a shopper view per session (stock
bar, countdown, people taking part, sold out) and an operations table per item. It follows
`GET /board/events`, Server-Sent Events: first `board` with the whole board, then at every build
(at least once a second while anyone watches) `patch` with the sessions that changed, or `board`
again when the viewer missed a build or the sessions themselves changed. `GET /board/view` answers
the whole board once. Every viewer shares one builder (services/board.py): watching costs no query
per viewer, and each build is encoded once, as bytes that every viewer is sent as they are.

The stream is written with the raw ASGI `send`: `BoardStreamFastPath` answers `GET /board/events`
before the framework runs, so a push to a viewer costs the server one write, not a trip through
every middleware of the buy path's event loop.
"""

from __future__ import annotations

import asyncio
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flashsale.services.board import BoardFeed

router = APIRouter(prefix="/board", tags=["board"])
PAGE = files("flashsale.api").joinpath("static/board.html")
EVENTS = "/board/events"


class BoardEvents(Response):
    """One viewer's event stream, written with the raw ASGI `send` until the viewer goes away."""

    media_type = "text/event-stream"

    def __init__(self, feed: BoardFeed) -> None:  # no body: Response.__init__ would declare one
        self.feed = feed
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),  # a proxy in front must not hold the events back
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the whole board, then each build's event, until the viewer or the feed goes away."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        task = asyncio.current_task()
        assert task is not None
        # A viewer who leaves is noticed at once, not at the next build: their wait is cancelled.
        gone = asyncio.ensure_future(_disconnected(receive))

        def leave(watcher: asyncio.Future[None]) -> None:
            if not watcher.cancelled():
                watcher.exception()  # retrieved: a failed read of the connection also means it is gone
            task.cancel()

        gone.add_done_callback(leave)
        retry = f"retry: {int(self.feed.interval_s * 1000)}\n\n".encode()  # how soon to reconnect
        try:
            frame = await self.feed.next(0)
            if frame is not None:
                await send(_chunk(retry + frame.full))
            while frame is not None:
                seen = frame.version
                frame = await self.feed.next(seen)
                if frame is not None:
                    await send(_chunk(frame.event_after(seen)))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone.done() or gone.cancelled():
                raise  # cancelled from outside (shutdown), not by the viewer leaving
            task.uncancel()
        finally:
            gone.remove_done_callback(leave)
            gone.cancel()


def _chunk(body: bytes) -> Message:
    return {"type": "http.response.body", "body": body, "more_body": True}


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


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
    """Server-Sent Events: `board` with the whole board, then `patch` (or `board`) at every build."""
    return BoardEvents(request.app.state.board)


_EVENTS_ROUTE = next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is board_events)


class BoardStreamFastPath:
    """Pure ASGI middleware: serve `GET /board/events` before the framework, with the raw `send`.

    Every push to every viewer would otherwise pass through the app's middleware on the one event
    loop that also serves the buyers. Install it just inside the request observer, so a stream is
    still counted (its whole life is its duration):
    `app.add_middleware(BoardStreamFastPath, feed=feed)`.
    """

    def __init__(self, app: ASGIApp, *, feed: BoardFeed) -> None:
        self.app = app
        self.feed = feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the board to a viewer, or pass the request on."""
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == EVENTS:
            scope["route"] = _EVENTS_ROUTE  # as routing would: the observer labels it by its route
            await BoardEvents(self.feed)(scope, receive, send)
        else:
            await self.app(scope, receive, send)
