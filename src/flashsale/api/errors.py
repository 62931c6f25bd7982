"""The one place where an ErrorCode becomes an HTTP status and a `{"code", "message"}` body.

Choices worth knowing:
- INVALID_SIGNATURE (a payment callback whose HMAC does not match) answers 400, not 401: the
  caller is a provider, not a user who could log in, so there is no WWW-Authenticate challenge.
- A missing Idempotency-Key answers 400 IDEMPOTENCY_KEY_REQUIRED (as in the IETF
  idempotency-key draft); a malformed one (too long) is an ordinary 422 VALIDATION_ERROR.
- Redis or the database not answering (connection refused, timeout, a locked SQLite file)
  answers 503 SERVICE_UNAVAILABLE with Retry-After: 1, not 500: it is temporary.
- A body that cannot be decoded at all (bad UTF-8, an integer literal too long to parse) is
  reported like malformed JSON: 422 VALIDATION_ERROR, never FastAPI's bare 400.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

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
    ErrorCode.QUOTA_BELOW_COMMITTED: 409,
    ErrorCode.INVALID_QUANTITY: 422,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.IDEMPOTENCY_MISMATCH: 422,
    ErrorCode.UNKNOWN_ITEM: 422,
    ErrorCode.PAYMENT_MISMATCH: 422,
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
}

# Starlette raises HTTPException itself for unknown routes, wrong methods and undecodable bodies.
_CODE_OF_STATUS: dict[int, ErrorCode] = {
    400: ErrorCode.VALIDATION_ERROR,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
}


class ErrorOut(BaseModel):
    """Every refusal has this shape; clients switch on `code`, which never changes meaning."""

    code: ErrorCode
    message: str
    details: list[dict[str, Any]] | None = None


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Describe the given refusal statuses in the OpenAPI document."""
    return {status: {"model": ErrorOut} for status in statuses}


def render(
    code: ErrorCode,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    status: int | None = None,
) -> JSONResponse:
    """Build the JSON response for a refusal, with its mapped status unless one is given."""
    status = status or STATUS_OF.get(code, 400)
    body: dict[str, Any] = {"code": code.value, "message": message}
    if details is not None:
        body["details"] = details
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only where and why: echoing the input back could reflect tokens or huge payloads.
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": err["type"],
        }
        for err in exc.errors()
    ]


async def _on_flash_sale_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FlashSaleError)
    return render(exc.code, exc.message)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return render(ErrorCode.VALIDATION_ERROR, "the request is not valid", details=_validation_details(exc))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_OF_STATUS.get(exc.status_code)
    if code is None:  # e.g. 413 from a body-size limit: keep the status, call it a validation error
        return render(ErrorCode.VALIDATION_ERROR, str(exc.detail), status=exc.status_code)
    return render(code, str(exc.detail), headers=exc.headers)


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


def install_error_handlers(app: FastAPI) -> None:
    """Route every refusal, validation failure and unexpected error through `render`."""
    app.add_exception_handler(FlashSaleError, _on_flash_sale_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for unavailable in (RedisConnectionError, RedisTimeoutError, OperationalError):
        app.add_exception_handler(unavailable, _on_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
