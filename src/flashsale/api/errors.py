"""The one place where an ErrorCode becomes an HTTP status and a `{"code", "message"}` body.

Choices worth knowing:
- INVALID_SIGNATURE (a payment callback whose HMAC does not match) answers 400, not 401: the
  caller is a provider, not a user who could log in, so there is no WWW-Authenticate challenge.
- A missing Idempotency-Key answers 400 IDEMPOTENCY_KEY_REQUIRED (as in the IETF
  idempotency-key draft); a malformed one (too long) is an ordinary 422 VALIDATION_ERROR. The
  header is declared required, so the OpenAPI document says so; FastAPI's "missing" validation
  error for it is what becomes the 400 here (an empty one is refused by the dependency).
- A 422 lists at most MAX_DETAILS validation errors, each clipped, and says how many it left out:
  a body of many unknown keys must not turn into an answer of megabytes that holds the event loop
  for seconds while it is encoded.
- A 405 names in `Allow` every method the path has, not only those of the first route that matched.
- Redis or the database not answering (connection refused, timeout, a locked SQLite file)
  answers 503 SERVICE_UNAVAILABLE with Retry-After: 1, not 500: it is temporary.
- SALE_PAUSED (the item's stock ledger is paused for a repair, or rebuilt after Redis lost its data)
  answers 503 with Retry-After: the seconds the pause lease may still run, at least 1 and at most
  MAX_RETRY_AFTER_S, since the lease is only an upper bound (a repair usually resumes within a
  second) and a shopper told 30 s would wait out most of it for nothing.
- A body that cannot be decoded at all (bad UTF-8, an integer literal too long to parse) is
  reported like malformed JSON: 422 VALIDATION_ERROR, never FastAPI's bare 400.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from itertools import islice
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from flashsale.domain.errors import ErrorCode, FlashSaleError

log = logging.getLogger(__name__)

STATUS_OF: dict[ErrorCode, int] = {
    ErrorCode.SOLD_OUT: 409,
    ErrorCode.INSUFFICIENT_STOCK: 409,
    ErrorCode.LIMIT_EXCEEDED: 409,
    ErrorCode.SESSION_NOT_OPEN: 409,
    ErrorCode.ORDER_EXPIRED: 409,
    ErrorCode.INVALID_TRANSITION: 409,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYMENT_IN_PROGRESS: 409,
    ErrorCode.QUOTA_BELOW_COMMITTED: 409,
    ErrorCode.INVALID_QUANTITY: 422,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.IDEMPOTENCY_MISMATCH: 422,
    ErrorCode.UNKNOWN_ITEM: 422,
    ErrorCode.PAYMENT_MISMATCH: 422,
    ErrorCode.COUPON_EXPIRED: 422,
    ErrorCode.COUPON_NOT_APPLICABLE: 422,
    ErrorCode.CART_EMPTY: 422,
    ErrorCode.CART_FULL: 422,
    ErrorCode.GROUP_FULL: 409,
    ErrorCode.GROUP_CLOSED: 409,
    ErrorCode.ALREADY_BOUND: 409,
    ErrorCode.SELF_REFERRAL: 422,
    ErrorCode.REFERRAL_LOOP: 422,
    ErrorCode.NOT_FIRST_ORDER: 409,
    ErrorCode.ORDER_NOT_FOUND: 404,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNKNOWN_HOLD: 404,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.INVALID_SIGNATURE: 400,
    ErrorCode.IDEMPOTENCY_KEY_REQUIRED: 400,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.SALE_PAUSED: 503,
    ErrorCode.LEDGER_BEHIND: 503,
    ErrorCode.REQUEST_FORGOTTEN: 503,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.NO_ENTITLEMENT: 409,
    ErrorCode.PRIZE_GONE: 409,
    ErrorCode.UNKNOWN_POOL: 404,
    ErrorCode.GRANT_LIMIT_REACHED: 409,
    ErrorCode.ALREADY_CHECKED_IN: 409,
    ErrorCode.ALREADY_REDEEMED: 409,
    ErrorCode.PRIZE_NOT_STOCKED: 409,
    ErrorCode.COUPON_NOT_STARTED: 409,
    ErrorCode.COUPON_CLAIM_CLOSED: 409,
    ErrorCode.COUPON_LIMIT: 409,
    ErrorCode.COUPON_ISSUE_EXHAUSTED: 409,
    ErrorCode.COUPON_USED: 409,
    ErrorCode.BUDGET_EXHAUSTED: 409,
    ErrorCode.UNKNOWN_COUPON: 404,
    ErrorCode.SALE_TOKEN_REQUIRED: 403,
    ErrorCode.SALE_TOKEN_INVALID: 403,
    ErrorCode.IN_QUEUE: 409,
    ErrorCode.QUEUE_TICKET_INVALID: 403,
    ErrorCode.HOARDER_BLOCKED: 403,
    ErrorCode.HOARDER_THROTTLED: 409,
    ErrorCode.HOLDS_CAPPED: 409,
    ErrorCode.QUIZ_FAILED: 403,
}

# Refusals that a retry a moment later may turn into a success.
_RETRYABLE = frozenset({ErrorCode.PAYMENT_IN_PROGRESS})
_RETRY_SOON = {"Retry-After": "1"}
MAX_RETRY_AFTER_S = 5
MAX_RATE_LIMIT_WAIT_S = 3600
# Refusals whose wait is exact (a rate limit's window, a quiz's penalty), so Retry-After says all of it.
_EXACT_WAITS = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.QUIZ_FAILED})

# Starlette raises HTTPException itself for unknown routes, wrong methods and undecodable bodies.
_CODE_OF_STATUS: dict[int, ErrorCode] = {
    400: ErrorCode.VALIDATION_ERROR,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
}


# A 422's details stay small whatever the input: the first errors say what is wrong, the rest is a count.
# (A loc is as deep as the request schemas, which are shallow; it is each part that may be huge.)
MAX_DETAILS = 20
MAX_TEXT = 120  # characters of one loc part or message: a 60 KB key is not echoed back

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# Required headers whose absence has a code (and status) of its own instead of 422 VALIDATION_ERROR.
# Only "missing": an optional header of the same name (the key on pay) is never missing, only malformed.
_CODE_OF_MISSING_HEADER: dict[str, ErrorCode] = {"idempotency-key": ErrorCode.IDEMPOTENCY_KEY_REQUIRED}


class ErrorOut(BaseModel):
    """Every refusal has this shape; clients switch on `code`, which never changes meaning."""

    code: ErrorCode
    message: str
    details: list[dict[str, Any]] | None = Field(
        None, description=f"Validation errors: where and why, at most {MAX_DETAILS}"
    )
    details_omitted: int | None = Field(
        None, description="How many more validation errors there were than `details` lists"
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Describe the given refusal statuses in the OpenAPI document."""
    return {status: {"model": ErrorOut} for status in statuses}


def render(
    code: ErrorCode,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    details_omitted: int = 0,
    headers: Mapping[str, str] | None = None,
    status: int | None = None,
) -> JSONResponse:
    """Build the JSON response for a refusal, with its mapped status unless one is given."""
    status = status or STATUS_OF.get(code, 400)
    body: dict[str, Any] = {"code": code.value, "message": message}
    if details is not None:
        body["details"] = details
    if details_omitted:
        body["details_omitted"] = details_omitted
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body, status_code=status, headers=headers)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Describe the first MAX_DETAILS errors: only where and why, clipped.

    Echoing the input back could reflect tokens or huge payloads, and an unbounded list of
    errors makes a small malformed body cost the server a large answer.
    """
    details = []
    for err in islice(errors, MAX_DETAILS):
        loc = [_clip(str(part)) for part in err.get("loc", ())]
        details.append({"loc": loc, "msg": _clip(str(err.get("msg", ""))), "type": _clip(str(err["type"]))})
    return details


def _missing_header(errors: Sequence[Any]) -> tuple[str, ErrorCode] | None:
    """Return the first required header that is absent and has a code of its own."""
    for err in errors:
        loc = err.get("loc", ())
        if len(loc) == 2 and loc[0] == "header" and err["type"] == "missing":
            code = _CODE_OF_MISSING_HEADER.get(str(loc[1]).lower())
            if code is not None:
                return str(loc[1]), code
    return None


def _allowed_methods(request: Request) -> str:
    """List every method some route serves on the request's path (Starlette names only the first route's).

    Each method is asked of the router as a request would be, rather than read off the routes:
    FastAPI nests included routers, whose own routes know neither their prefix nor their siblings.
    """
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


async def _on_flash_sale_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FlashSaleError)
    headers = _RETRY_SOON if exc.code in _RETRYABLE else None
    if exc.retry_after_s is not None:
        # A pause's lease is an upper bound (a repair usually ends sooner); a rate limit's window is exact.
        most = MAX_RATE_LIMIT_WAIT_S if exc.code in _EXACT_WAITS else MAX_RETRY_AFTER_S
        headers = {"Retry-After": str(min(max(math.ceil(exc.retry_after_s), 1), most))}
    return render(exc.code, exc.message, headers=headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    missing = _missing_header(errors)
    if missing is not None:  # checked before the body, as a dependency refusing it would be
        header, code = missing
        return render(code, f"the {header} header is required")
    details = _validation_details(errors)
    return render(
        ErrorCode.VALIDATION_ERROR,
        "the request is not valid",
        details=details,
        details_omitted=len(errors) - len(details),
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_OF_STATUS.get(exc.status_code)
    if code is None:  # e.g. 413 from a body-size limit: keep the status, call it a validation error
        return render(ErrorCode.VALIDATION_ERROR, str(exc.detail), status=exc.status_code)
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return render(code, str(exc.detail), headers=headers)


def _transient(exc: Exception) -> bool:
    """Tell a store that did not answer (retry later) from a bug that happens to be an OperationalError."""
    if not isinstance(exc, OperationalError) or exc.connection_invalidated:
        return True
    if isinstance(exc.orig, sqlite3.Error):  # SQLite reports "no such table" as operational too
        return any(word in str(exc.orig).lower() for word in ("locked", "busy"))
    return True


async def _on_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Redis or the database did not answer: nothing was decided that a retry with the same
    # Idempotency-Key would not replay, so tell the client to come back shortly.
    if not _transient(exc):
        return await _on_unexpected(request, exc)
    log.warning("backing store unavailable on %s %s: %s", request.method, request.url.path, exc)
    return render(
        ErrorCode.SERVICE_UNAVAILABLE, "the sale is briefly unavailable; retry", headers={"Retry-After": "1"}
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render(ErrorCode.INTERNAL_ERROR, "internal error")


_HANDLERS: tuple[tuple[type[Exception], Callable[[Request, Exception], Awaitable[Response]]], ...] = (
    (FlashSaleError, _on_flash_sale_error),
    (RequestValidationError, _on_validation_error),
    (StarletteHTTPException, _on_http_error),
    (RedisConnectionError, _on_unavailable),
    (RedisTimeoutError, _on_unavailable),
    (OperationalError, _on_unavailable),
    (Exception, _on_unexpected),
)


def install_error_handlers(app: FastAPI) -> None:
    """Route every refusal, validation failure and unexpected error through `render`."""
    for kind, handler in _HANDLERS:
        app.add_exception_handler(kind, handler)


async def error_response(request: Request, exc: Exception) -> Response:
    """Answer `exc` as the installed handlers would, for code that runs outside the routes."""
    handler = next(h for kind, h in _HANDLERS if isinstance(exc, kind))
    return await handler(request, exc)
