"""uvicorn's HTTP/1.1 protocol with read deadlines, so a slow client cannot hold a connection forever.

uvicorn closes a keep-alive connection that stays idle after a response, but has no deadline for
a request that is being sent: a client that opens a connection and sends nothing, or sends a
header line every few seconds (slowloris), or trickles a body, keeps its connection (and a slot
under `limit_concurrency`) as long as it likes. `GuardedHttpToolsProtocol` adds two deadlines:

- header: from the moment the connection is open, or the previous response is sent, until the
  request's headers are complete. A partial request gets `408 Request Timeout`, then the close;
  a connection that sent nothing is simply closed.
- body: from the end of the headers until the end of the body. The connection is closed; the app,
  if it was waiting for the body, sees the client disconnect.

While the server is working on a request (body complete, response not yet sent) no deadline runs:
slowness there is ours, not the client's.

uvicorn builds one protocol per connection from `Config.http`; `guarded_http(settings)` returns that
factory with the deadlines bound (a `functools.partial`, which pickles into spawned workers).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from flashsale.config import Settings

_TIMEOUT_BODY = b"request timeout"


@dataclass(frozen=True)
class ReadDeadlines:
    """How long a client may take to send a request's line and headers, and then its body."""

    header_s: float
    body_s: float


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a deadline on reading a request's headers and one on its body."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        deadlines: ReadDeadlines,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.deadlines = deadlines
        self._deadline: asyncio.TimerHandle | None = None
        # What the client still owes of the request it is sending: nothing, headers or body.
        self._reading: Literal["idle", "headers", "body"] = "idle"

    # The connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.deadlines.header_s, self._header_deadline_passed)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # httptools parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = "headers"

    def on_headers_complete(self) -> None:
        self._reading = "body"
        self._arm(self.deadlines.body_s, self._body_deadline_passed)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading = "idle"
        self._disarm()
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete and not self.transport.is_closing():
            # Answered before the body ended (and kept open): the next request's headers are due.
            self._arm(self.deadlines.header_s, self._header_deadline_passed)

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the transport now belongs to the WebSocket protocol
        super().handle_websocket_upgrade()

    # Called by the request's cycle once its response is sent
    def on_response_complete(self) -> None:
        next_is_queued = bool(self.pipeline)  # a pipelined request starts now: its headers are in
        super().on_response_complete()
        if not next_is_queued and self._reading != "body" and not self.transport.is_closing():
            self._arm(self.deadlines.header_s, self._header_deadline_passed)

    # Deadlines
    def _arm(self, delay_s: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay_s, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _header_deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # a request is being served: its deadline was not this one
        if self._reading == "headers":
            self._send_408()
        self.transport.close()

    def _body_deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # we stopped reading (the app is behind): the client is not late
            self._arm(self.deadlines.body_s, self._body_deadline_passed)
            return
        # The app, if it waits for the body, sees the disconnect; an answer now could cross its own.
        self.transport.close()

    def _send_408(self) -> None:
        head = [STATUS_LINE[408]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(_TIMEOUT_BODY),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + _TIMEOUT_BODY)


def guarded_http(settings: Settings) -> Callable[..., asyncio.Protocol]:
    """Return the protocol factory for `uvicorn.run(http=...)`, with the settings' read deadlines."""
    deadlines = ReadDeadlines(header_s=settings.header_timeout_s, body_s=settings.body_timeout_s)
    return functools.partial(GuardedHttpToolsProtocol, deadlines=deadlines)
