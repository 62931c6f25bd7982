"""Sale tokens, the hidden path: a per-shopper, per-item pass to buy, signed, short-lived, single-use.

An item that requires one is bought only with a token issued to that shopper for that item once its
session is open (`POST /items/{id}/sale-token`), so a bot cannot fire purchases it prepared before
the open, and cannot pass a token to another account or use it for another item: the token is an
HMAC over (shopper, item, expiry, nonce) and names neither the shopper nor anything secret.

Single-use is kept where every worker sees it: `spend` claims the token's nonce in the ledger's
Redis with one `SET NX` (scale-out), or in a dict under a lock (the embedded default, one process).
The claim remembers the request it was spent on, so a retry of that purchase with the same
Idempotency-Key passes again (and replays its order) while any other request is refused. A token
spent on a refused purchase (sold out, limit) is gone: the shopper asks for a new one.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import math
import secrets
import threading
from typing import Protocol

from redis import Redis

from flashsale.clock import Clock
from flashsale.domain.errors import ErrorCode, FlashSaleError

DEFAULT_TTL_S = 60.0
MAX_TOKEN_LENGTH = 200


class SpentTokens(Protocol):
    """Where spent tokens are remembered until they expire anyway."""

    def claim(self, nonce: str, owner: str, ttl_s: float) -> bool:
        """Spend `nonce` for `owner`: True if it was unspent, or spent by this same owner already."""
        ...


class MemorySpentTokens:
    """Spent nonces in process (the embedded default); forgotten once past their token's expiry."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._owners: dict[str, str] = {}
        self._due: list[tuple[float, str]] = []

    def claim(self, nonce: str, owner: str, ttl_s: float) -> bool:
        now = self._clock()
        with self._lock:
            while self._due and self._due[0][0] <= now:  # past their expiry: verify refuses them anyway
                self._owners.pop(heapq.heappop(self._due)[1], None)
            spent_by = self._owners.get(nonce)
            if spent_by is None:
                self._owners[nonce] = owner
                heapq.heappush(self._due, (now + ttl_s, nonce))
                return True
            return spent_by == owner


class RedisSpentTokens:
    """Spent nonces in the ledger's Redis, shared by every worker: one atomic SET NX per claim."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}:saletok:"

    def claim(self, nonce: str, owner: str, ttl_s: float) -> bool:
        # SET NX GET (Redis >= 7.0): sets if absent and returns what was there, in one step.
        before = self._client.set(self._prefix + nonce, owner, ex=max(1, math.ceil(ttl_s)), nx=True, get=True)
        return before is None or before == owner


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class SaleTokens:
    """Issue and spend sale tokens; see the module doc."""

    def __init__(self, key: bytes, spent: SpentTokens, *, ttl_s: float = DEFAULT_TTL_S) -> None:
        self._key = key
        self._spent = spent
        self.ttl_s = ttl_s

    def _sign(self, shopper: str, item_id: int, expires: int, nonce: str) -> str:
        message = f"{shopper}\n{item_id}\n{expires}\n{nonce}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def issue(self, shopper: str, item_id: int, now: float) -> tuple[str, int]:
        """A fresh token for this shopper and item, and its expiry (epoch seconds)."""
        expires = math.ceil(now + self.ttl_s)
        nonce = _b64(secrets.token_bytes(16))
        return f"{item_id}.{expires}.{nonce}.{self._sign(shopper, item_id, expires, nonce)}", expires

    def spend(self, token: str, *, shopper: str, item_id: int, request_id: str, now: float) -> None:
        """Check the token is this shopper's for this item and unexpired, and spend it on `request_id`.

        Refuses with SALE_TOKEN_INVALID, saying no more than "not valid" for a forgery.
        """
        parts = token.split(".") if len(token) <= MAX_TOKEN_LENGTH else []
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in parts[:2]):
            raise FlashSaleError(ErrorCode.SALE_TOKEN_INVALID, "the sale token is not valid")
        item, expires, nonce, signature = int(parts[0]), int(parts[1]), parts[2], parts[3]
        if item != item_id or not hmac.compare_digest(signature, self._sign(shopper, item, expires, nonce)):
            raise FlashSaleError(ErrorCode.SALE_TOKEN_INVALID, "the sale token is not valid for this item")
        if now >= expires:
            raise FlashSaleError(ErrorCode.SALE_TOKEN_INVALID, "the sale token expired; ask for a new one")
        if not self._spent.claim(nonce, f"{shopper}\n{request_id}", expires - now):
            raise FlashSaleError(ErrorCode.SALE_TOKEN_INVALID, "the sale token was used already")


def sale_token_key(secret: str | None, jwt_secret: str) -> bytes:
    """The HMAC key of sale tokens: its own secret if set, else one derived from the JWT secret.

    Derived under its own label, so a sale token is never a valid signature of anything else.
    """
    if secret:
        return secret.encode()
    return hmac.new(jwt_secret.encode(), b"flashsale sale tokens", hashlib.sha256).digest()
