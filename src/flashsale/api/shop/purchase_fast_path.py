"""POST /purchases without the framework: the buy path's edge, as cheap as the floor allows.

On one worker the event loop is the bottleneck of the embedded default, and most of what it spent
on a purchase was FastAPI's: routing, solving the route's dependencies (bearer token, header, body)
and its exception handling, about 2.5× what a bare POST costs. `PurchaseFastPath` answers the plain
case itself: a bearer token, an Idempotency-Key of 1..255 characters and a JSON body that
`PurchaseIn` accepts. It decides through the same `decide` as the route and answers refusals
through the same handlers (`api.errors.error_response`). Anything else (no or malformed token
header, a missing key, a body the schema refuses, another content type) goes on to the route with
the body it read, so every error answer stays the route's and the OpenAPI document stays true.
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flashsale.api.deps import MAX_IDEMPOTENCY_KEY_LENGTH
from flashsale.api.errors import error_response
from flashsale.api.schemas import PurchaseIn
from flashsale.api.shop.purchases import (
    DEVICE_HEADER,
    decide,
    device_id,
    purchase,
    purchase_response,
    router,
)
from flashsale.auth import ShopperTokens
from flashsale.bootstrap import Platform
from flashsale.services.orders import Buy

PATH = "/purchases"
_ROUTE = next(r for r in router.routes if getattr(r, "endpoint", None) is purchase)


class PurchaseFastPath:
    """Pure ASGI middleware: answer a well-formed POST /purchases without routing; see the module doc.

    Install it inside `BodySizeLimit`, so the body it reads is capped first.
    """

    def __init__(self, app: ASGIApp, *, platform: Platform, shopper_tokens: ShopperTokens) -> None:
        self.app = app
        self.platform = platform
        self.tokens = shopper_tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the plain purchase, or pass the request on unchanged."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        token, key = _bearer(headers.get("authorization")), headers.get("idempotency-key")
        if token is None or not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not _is_json(headers):
            await self.app(scope, receive, send)
            return
        body, complete, receive = await _read_body(receive)
        if not complete:  # the client left mid-body: nothing to decide
            await self.app(scope, receive, send)
            return
        try:
            wanted = PurchaseIn.model_validate_json(body)
        except ValidationError:  # the route answers it, in its words
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE  # whoever watches from outside (metrics, logs) sees the route
        try:
            shopper = self.tokens.verify(token, now=self.platform.deps.clock())
            client = scope.get("client")
            result = await decide(
                scope["app"].state,
                Buy(shopper, wanted.item_id, wanted.quantity, request_id=key),
                client[0] if client else None,
                wanted.sale_token,
                device=device_id(headers.get(DEVICE_HEADER)),
                rehearsal_pass=wanted.rehearsal_pass,
            )
        except Exception as exc:  # answered as the route's handlers would answer it
            response = await error_response(Request(scope, receive), exc)
        else:
            response = purchase_response(result)
        await response(scope, receive, send)


def _bearer(authorization: str | None) -> str | None:
    """The token of a `Bearer <token>` header, or None (the route then answers the 401)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _is_json(headers: Headers) -> bool:
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type == "application/json"


async def _read_body(receive: Receive) -> tuple[bytes, bool, Receive]:
    """Read the whole body; return it, whether it all arrived, and a `receive` that replays what was read."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    complete = messages[-1]["type"] == "http.request"
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    pending = list(messages)

    async def again() -> Message:
        return pending.pop(0) if pending else await receive()

    return body, complete, again
