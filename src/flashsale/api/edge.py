"""The shop's one HTTP middleware: time and count every request, and send it down its own short path.

Every request used to pass six middlewares in a row (the request observer, the board stream, read
admission, the room poll, the public reads, the body cap, then the purchase fast path), each a
coroutine frame the event loop resumes at every await below it, though only one or two of them
ever act on a given request. `Edge` looks at the method and the path once and hands the request to
the chain that applies to it:

- `POST /purchases`: the body cap, then `PurchaseFastPath`;
- `GET /board/events`: `BoardStreamFastPath`;
- `GET /sessions…`: read admission (when a read limit is set), then `PublicReadFastPath`, then the cap;
- `GET /items/{id}/queue`: `RoomPollFastPath`, then the cap;
- anything else: the cap, then the framework.

A fast path that does not answer passes the request on to the framework exactly as before. Around
whichever chain runs, the request is observed: one histogram observation and, when request logs
are on, one log line, labelled by the route template that answered (`/orders/{order_id}`, never a
raw path, which would let any client mint new label values); a request no route answered (an
unknown path, a body refused before routing) is counted under `unmatched`. The time includes the
fast paths and the body cap.

`fast_paths=False` sends every request through the routes (read admission and the cap still
apply): tests compare the two ways.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flashsale.api.admission import ReadAdmission
from flashsale.api.board import EVENTS, BoardStreamFastPath
from flashsale.api.limits import BodySizeLimit
from flashsale.api.metrics import Metrics
from flashsale.api.shop.admission import RoomPollFastPath
from flashsale.api.shop.purchase_fast_path import PATH as PURCHASES
from flashsale.api.shop.purchase_fast_path import PurchaseFastPath
from flashsale.api.shop.sessions import PublicReadFastPath, is_public_read
from flashsale.auth import ShopperTokens
from flashsale.bootstrap import Platform
from flashsale.logs import fields
from flashsale.services.admission import Admission
from flashsale.services.board import BoardFeed

log = logging.getLogger("flashsale.http")

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """Return the path template of the route that answered the request, or `unmatched`."""
    template = getattr(scope.get("route"), "path_format", None)
    return template if isinstance(template, str) else UNMATCHED


class Edge:
    """Pure ASGI middleware: observe each request and run the edge chain of its path; see the module doc."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        log_requests: bool,
        max_body_bytes: int,
        platform: Platform,
        shopper_tokens: ShopperTokens,
        feed: BoardFeed,
        read_admission: Admission | None,
        fast_paths: bool = True,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests
        capped = BodySizeLimit(app, max_body_bytes=max_body_bytes)
        self.other: ASGIApp = capped
        reads: ASGIApp = PublicReadFastPath(capped, platform=platform) if fast_paths else capped
        self.reads = reads if read_admission is None else ReadAdmission(reads, admission=read_admission)
        if fast_paths:
            # The cap first: the fast path reads the body itself.
            purchase = PurchaseFastPath(app, platform=platform, shopper_tokens=shopper_tokens)
            self.purchases: ASGIApp = BodySizeLimit(purchase, max_body_bytes=max_body_bytes)
            self.polls: ASGIApp = RoomPollFastPath(capped)
            self.board: ASGIApp = BoardStreamFastPath(capped, feed=feed)
        else:
            self.purchases = self.polls = self.board = capped

    def _chain(self, scope: Scope) -> ASGIApp:
        method, path = scope["method"], scope["path"]
        if method == "POST":
            return self.purchases if path == PURCHASES else self.other
        if method != "GET":
            return self.other
        if path == EVENTS:
            return self.board
        if is_public_read(path):
            return self.reads
        return self.polls if path.startswith("/items/") else self.other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request's chain, noting its status, then record how long it took."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before it starts a response

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._chain(scope)(scope, receive, noting_status)
        finally:
            seconds = time.perf_counter() - started
            method, route = scope["method"], route_template(scope)
            self.metrics.observe_request(method=method, route=route, status=status, seconds=seconds)
            if self.log_requests and log.isEnabledFor(logging.INFO):  # build no fields for nothing
                log.info(
                    "request",
                    extra=fields(
                        method=method, route=route, status=status, duration_ms=round(seconds * 1e3, 3)
                    ),
                )
