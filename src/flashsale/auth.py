"""Shopper tokens (HS256 JWTs) and the operator's bearer token.

Time is injected: expiry is checked against the caller's clock, not PyJWT's wall clock, so a
platform running on a manual clock (tests, the simulated demo) accepts exactly what it minted.
"""

from __future__ import annotations

import hmac
import time
from functools import lru_cache, partial
from typing import NamedTuple

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
    return _shopper_of_claims(_signed_claims(secret, token), time.time() if now is None else now)


class ShopperTokens:
    """Verify shopper tokens as `verify_shopper_token` does, checking each token's signature once.

    A shopper sends the same token with every request, so the claims of the last `size` well-signed
    tokens are remembered (a bounded LRU keyed by the token string); expiry, role and shopper id are
    still checked on every call, and a token whose signature or claims' types fail is never
    remembered. Thread-safe.
    """

    def __init__(self, secret: str, *, size: int = 32_768) -> None:
        self._claims = lru_cache(maxsize=size)(partial(_signed_claims, secret))

    def verify(self, token: str, *, now: float) -> str:
        """Return the shopper id of a valid token, or raise UNAUTHENTICATED."""
        return _shopper_of_claims(self._claims(token), now)


class _Claims(NamedTuple):
    sub: str
    exp: float
    role: object


def _signed_claims(secret: str, token: str) -> _Claims:
    """Check the token's signature and the presence and types of its claims; nothing time-dependent."""
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
    return _Claims(claims["sub"], expires, claims.get("role"))


def _shopper_of_claims(claims: _Claims, now: float) -> str:
    if now >= claims.exp:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "token expired")
    if claims.role != SHOPPER_ROLE or not 1 <= len(claims.sub) <= MAX_USER_ID_LENGTH:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "invalid token")
    return str(claims.sub)


def is_admin_token(expected: str | None, presented: str) -> bool:
    """Compare a presented bearer token with the configured admin token in constant time."""
    if not expected:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
