"""Shopper tokens (HS256 JWTs) and the operator's bearer token.

Time is injected: expiry is checked against the caller's clock, not PyJWT's wall clock, so a
platform running on a manual clock (tests, the simulated demo) accepts exactly what it minted.
"""

from __future__ import annotations

import hmac
import time

import jwt

from flashsale.domain.errors import ErrorCode, FlashSaleError

ALGORITHM = "HS256"
SHOPPER_ROLE = "shopper"
MAX_USER_ID_LENGTH = 64  # orders.user_id is VARCHAR(64)


def mint_shopper_token(secret: str, user_id: str, ttl_s: float, now: float) -> str:
    """Sign a shopper token for `user_id`, valid for `ttl_s` seconds from `now` (epoch seconds)."""
    if not 1 <= len(user_id) <= MAX_USER_ID_LENGTH:
        raise ValueError(f"user id must be 1..{MAX_USER_ID_LENGTH} characters")
    if ttl_s <= 0:
        raise ValueError("token lifetime must be positive")
    issued = int(now)
    claims = {"sub": user_id, "iat": issued, "exp": issued + int(ttl_s), "role": SHOPPER_ROLE}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_shopper_token(secret: str, token: str, *, now: float | None = None) -> str:
    """Return the shopper id of a valid token, or raise UNAUTHENTICATED.

    The algorithm is pinned (no `none`, no key confusion); `exp` and `sub` are required and `exp`
    is compared with `now` (default: the wall clock).
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "invalid token") from exc
    expires = claims["exp"]
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "invalid token")
    if (time.time() if now is None else now) >= expires:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "token expired")
    user_id = claims["sub"]
    if claims.get("role") != SHOPPER_ROLE or not 1 <= len(user_id) <= MAX_USER_ID_LENGTH:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "invalid token")
    return str(user_id)


def is_admin_token(expected: str | None, presented: str) -> bool:
    """Compare a presented bearer token with the configured admin token in constant time."""
    if not expected:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
