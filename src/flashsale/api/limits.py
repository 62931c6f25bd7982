"""Cap request bodies at the HTTP edge, before any route, body parser or auth sees them.

A declared Content-Length over the cap is refused from the headers alone: not one byte of the body
is read (and no `100 Continue` is sent). A body without a declared length (chunked) is counted as it
streams in and refused the moment it passes the cap. Either way the answer is 413
PAYLOAD_TOO_LARGE with `Connection: close`, so the server never reads the rest of the body.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flashsale.api.errors import render
from flashsale.domain.errors import ErrorCode

_CLOSE = {"Connection": "close"}


class BodyTooLarge(Exception):
    """Raised from `receive` once a streamed body passes the cap; `BodySizeLimit` answers 413."""


class BodySizeLimit:
    """Pure ASGI middleware: refuse any HTTP request whose body is larger than `max_body_bytes`."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse an oversized declared body at once; count an undeclared one as the app reads it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_framing(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._refuse(scope, receive, send)
            return
        if declared is not None and not chunked:
            # The server reads exactly the declared length as the body, which is within the cap:
            # nothing to count (a purchase's every message would otherwise pass two more layers).
            await self.app(scope, receive, send)
            return
        guard = _Guard(receive, send, self.max_body_bytes, chunked=chunked)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            # A route reading raw bytes (the payment callback) lets BodyTooLarge escape; FastAPI's
            # body parser wraps it in a 400 instead, which `guard.send` swallowed.
            if not guard.exceeded:
                raise
        if guard.exceeded and not guard.app_started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is larger than {self.max_body_bytes} bytes"
        await render(ErrorCode.PAYLOAD_TOO_LARGE, message, headers=_CLOSE)(scope, receive, send)


@dataclass
class _Guard:
    """One request's body counter, between the server's `receive`/`send` and the app's."""

    inner_receive: Receive
    inner_send: Send
    limit: int
    chunked: bool
    received: int = 0
    complete: bool = False
    exceeded: bool = False
    app_started: bool = False

    async def receive(self) -> Message:
        if self.exceeded:  # the app asked again after the refusal: read nothing more
            raise BodyTooLarge
        message = await self.inner_receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.received > self.limit:
                self.exceeded = True
                raise BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        if self.exceeded and not self.app_started:
            return  # the app's answer to the failed read (a 400) gives way to our 413
        if message["type"] == "http.response.start":
            self.app_started = True
            if self.chunked and not self.complete:
                # Answered before the end of an unbounded body: keeping the connection would make
                # the server read and discard the rest of it, however long it is.
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await self.inner_send(message)


def _body_framing(scope: Scope) -> tuple[int | None, bool]:
    """Return the declared Content-Length (None if absent or unreadable) and whether the body is chunked."""
    declared: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length" and declared is None:
            try:
                declared = int(value)
            except ValueError:  # the HTTP server refuses these; nothing to count here
                declared = None
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked
