"""Shopper tokens (HS256 JWTs) and the operator's bearer token.

Time is injected: expiry and issue time are checked against the caller's clock, not PyJWT's wall
clock, so a platform running on a manual clock (tests, the simulated demo) accepts exactly what it
minted.

A token issued later than now (beyond a small leeway for clock skew between the minting host and
this one) is refused: it was minted by a host with a wrong clock or forged with a stolen key to
outlive a rotation, and either way its `exp` cannot be trusted. A token without `iat` is still
accepted: `mint_shopper_token` always writes one, so only a holder of the secret can make one
without, and such a token is still bounded by its required `exp`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import time
from functools import lru_cache, partial
from typing import NamedTuple

import jwt

from flashsale.domain.errors import ErrorCode, FlashSaleError

ALGORITHM = "HS256"
SHOPPER_ROLE = "shopper"
MAX_USER_ID_LENGTH = 64  # orders.user_id is VARCHAR(64)
IAT_LEEWAY_S = 60  # clock skew tolerated between the host that mints tokens and the one that checks them


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

    The algorithm is pinned (no `none`, no key confusion); `exp` and `sub` are required; `exp` and
    `iat` (when present) are compared with `now` (default: the wall clock).
    """
    return _shopper_of_claims(_signed_claims(secret, token), time.time() if now is None else now)


class ShopperTokens:
    """Verify shopper tokens as `verify_shopper_token` does, checking each token's signature once.

    A shopper sends the same token with every request, so the claims of the last `size` well-signed
    tokens are remembered (a bounded LRU keyed by the token string); expiry, issue time, role and
    shopper id are still checked against `now` on every call, and a token whose signature or claims'
    types fail is never remembered. Thread-safe.
    """

    def __init__(self, secret: str, *, size: int = 32_768) -> None:
        self._claims = lru_cache(maxsize=size)(partial(_signed_claims, secret))

    def verify(self, token: str, *, now: float) -> str:
        """Return the shopper id of a valid token, or raise UNAUTHENTICATED."""
        return _shopper_of_claims(self._claims(token), now)


class _Claims(NamedTuple):
    sub: str
    exp: float
    iat: float | None
    role: object


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# The header `mint_shopper_token` writes (PyJWT's for HS256), and the claims it writes.
_MINTED_HEADER = _b64url(json.dumps({"alg": ALGORITHM, "typ": "JWT"}, separators=(",", ":")).encode())
_MINTED_CLAIMS = frozenset({"sub", "iat", "exp", "role"})


def _signed_claims(secret: str, token: str) -> _Claims:
    """Check the token's signature and the presence and types of its claims; nothing time-dependent."""
    minted = _minted_claims(secret, token)
    if minted is not None:
        return minted
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "invalid token") from exc
    expires, issued = claims["exp"], claims.get("iat")
    if not _is_number(expires) or ("iat" in claims and not _is_number(issued)):
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "invalid token")
    return _Claims(claims["sub"], expires, issued, claims.get("role"))


def _minted_claims(secret: str, token: str) -> _Claims | None:
    """The claims of a token shaped as `mint_shopper_token` makes them, checked without PyJWT; else None.

    PyJWT's decode costs about 360 Python calls (it checks every base64 character in a generator),
    more than the rest of a purchase's route. Here a token is taken only if PyJWT would take it
    too: the exact header minted here, a signature that is the canonical encoding of the HMAC of
    what it signs, a canonically encoded JSON object holding nothing but the minted claims, `sub` a
    string. Anything else (a bad signature included) returns None and goes to PyJWT, which gives
    the answer, so no token is judged differently.
    """
    header, _, rest = token.partition(".")
    payload, _, signature = rest.partition(".")
    if header != _MINTED_HEADER or not payload.isascii() or not signature.isascii():
        return None
    signed = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, _b64url(signed)):
        return None
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    if _b64url(raw) != payload or not isinstance(claims, dict) or not claims.keys() <= _MINTED_CLAIMS:
        return None
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(claims.get("sub"), str) or not _is_number(expires):
        return None
    if "iat" in claims and not _is_number(issued):
        return None
    return _Claims(claims["sub"], claims["exp"], issued, claims.get("role"))


def _is_number(value: object) -> bool:
    # JSON as Python reads it admits NaN and Infinity, and no time compares as later than NaN.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _shopper_of_claims(claims: _Claims, now: float) -> str:
    if now >= claims.exp:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "token expired")
    if claims.iat is not None and claims.iat > now + IAT_LEEWAY_S:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "token issued in the future")
    if claims.role != SHOPPER_ROLE or not 1 <= len(claims.sub) <= MAX_USER_ID_LENGTH:
        raise FlashSaleError(ErrorCode.UNAUTHENTICATED, "invalid token")
    return str(claims.sub)


def is_admin_token(expected: str | None, presented: str) -> bool:
    """Compare a presented bearer token with the configured admin token in constant time."""
    if not expected:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
