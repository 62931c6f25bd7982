"""Dependencies as named Annotated aliases: the platform, the current shopper, the operator, the key.

They are `async def` although they never await: none of them blocks, and FastAPI runs a sync
dependency in the thread pool, a hop that cost more than the dependency itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flashsale.api.schemas import MAX_INT32
from flashsale.auth import ShopperTokens, is_admin_token
from flashsale.bootstrap import Platform
from flashsale.domain.errors import ErrorCode, FlashSaleError

MAX_IDEMPOTENCY_KEY_LENGTH = 255  # orders.request_id is VARCHAR(255)

PathId = Annotated[int, Path(ge=1, le=MAX_INT32)]
OrderId = Annotated[str, Path(min_length=1, max_length=64)]
ShopperId = Annotated[str, Path(min_length=1, max_length=64)]  # a shopper's user id, as in their token


async def get_platform(request: Request) -> Platform:
    """Return the platform the app was created with."""
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]

# auto_error=False: a missing or non-Bearer header must answer our 401 body, not FastAPI's 403.
_shopper_bearer = HTTPBearer(
    auto_error=False, scheme_name="ShopperToken", description="HS256 JWT minted by `flashsale token`"
)
_admin_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken", description="FLASHSALE_ADMIN_TOKEN")
BearerCredentials = HTTPAuthorizationCredentials | None


def _shopper_of(request: Request, token: str) -> str:
    tokens: ShopperTokens = request.app.state.shopper_tokens
    platform: Platform = request.app.state.platform
    return tokens.verify(token, now=platform.deps.clock())


async def current_shopper(
    request: Request, credentials: Annotated[BearerCredentials, Depends(_shopper_bearer)]
) -> str:
    """Return the shopper id of the bearer token, or refuse with 401."""
    if credentials is None:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "a shopper bearer token is required")
    return _shopper_of(request, credentials.credentials)


CurrentShopper = Annotated[str, Depends(current_shopper)]


async def require_admin(
    request: Request, platform: PlatformDep, credentials: Annotated[BearerCredentials, Depends(_admin_bearer)]
) -> None:
    """Let the operator through; a valid shopper token gets 403, anything else 401."""
    if credentials is None:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "the admin bearer token is required")
    if is_admin_token(platform.settings.admin_token, credentials.credentials):
        return
    try:
        _shopper_of(request, credentials.credentials)
    except FlashSaleError:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "invalid admin token") from None
    raise FlashSaleError(ErrorCode.FORBIDDEN, "shopper tokens cannot use the admin API")


AdminDep = Depends(require_admin)


async def idempotency_key(
    key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
            # Documented, not validated here: an empty key must answer 400 IDEMPOTENCY_KEY_REQUIRED
            # like a missing one (below), not the 422 a failed minLength would give.
            json_schema_extra={"minLength": 1},
            description="Required (400 IDEMPOTENCY_KEY_REQUIRED without it): one per purchase attempt, "
            "e.g. a UUIDv4; a retry with the same key replays the same order",
        ),
    ],
) -> str:
    """Return the request's Idempotency-Key, or refuse an empty one with 400 IDEMPOTENCY_KEY_REQUIRED.

    The header is required, so the OpenAPI document says so; FastAPI reports a missing one as a
    validation error, which `api.errors` answers with the same 400.
    """
    if not key:
        raise FlashSaleError(
            ErrorCode.IDEMPOTENCY_KEY_REQUIRED,
            f"send an Idempotency-Key header of 1..{MAX_IDEMPOTENCY_KEY_LENGTH} characters",
        )
    return key


IdempotencyKey = Annotated[str, Depends(idempotency_key)]

# Paying is safe without a key (one charge per order whatever arrives), so here the key is optional.
OptionalIdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        description="Optional: a retry with the same key replays the first answer "
        "(`Idempotent-Replayed: true`); the key used for another order is refused with 422",
    ),
]
