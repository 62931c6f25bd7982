"""The read side of admission at the edge: anonymous reads paced per client address.

A flood of `GET /sessions` from one address is answered 429 RATE_LIMITED with `Retry-After` before
any route or the shop window's fast path runs, so it cannot take the one event loop from the
buyers. Purchases are admitted in the buy path itself (`api/shop/purchases.decide`), per shopper
and per address. Installed only when a read limit is configured (see services/admission.py).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from flashsale.api.errors import error_response
from flashsale.api.shop.sessions import is_public_read
from flashsale.domain.errors import FlashSaleError
from flashsale.services.admission import Admission


class ReadAdmission:
    """Pure ASGI middleware: count each public GET against its client address's read limit."""

    def __init__(self, app: ASGIApp, *, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a read over the limit with 429; let everything else through."""
        if scope["type"] == "http" and scope["method"] == "GET" and is_public_read(scope["path"]):
            client = scope.get("client")
            try:
                self.admission.admit_read(client[0] if client else None)
            except FlashSaleError as exc:
                response = await error_response(Request(scope, receive), exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

