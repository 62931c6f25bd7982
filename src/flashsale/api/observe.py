"""Watch every HTTP request: time it into the metrics and, when request logs are on, log one line for it.

Installed outermost, so the time includes the public-read fast path and the body-size guard. The
route is the template that answered (`/orders/{order_id}`): a raw path would let any client mint
new label values. A request no route answered (an unknown path, a body refused before routing) is
counted under `unmatched`.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flashsale.api.metrics import Metrics
from flashsale.logs import fields

log = logging.getLogger("flashsale.http")

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """Return the path template of the route that answered the request, or `unmatched`."""
    template = getattr(scope.get("route"), "path_format", None)
    return template if isinstance(template, str) else UNMATCHED


class RequestObserver:
    """Pure ASGI middleware: one histogram observation and, with `log_requests`, one log line per request."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, log_requests: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting its status, then record how long it took."""
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
            await self.app(scope, receive, noting_status)
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
