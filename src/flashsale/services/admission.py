"""Admission: rate limits in front of the ledger, per shopper, per client address and per route class.

The first step of the buy path (request → admission → ledger decision → order record): a bot that
sends thousands of purchases a second is answered 429 RATE_LIMITED with `Retry-After` before it
costs a decision, and a flood of anonymous reads from one address cannot take the event loop from
the buyers. Limits use the `limits` library's sliding window counter (a hit costs the same however
high the limit; a moving window keeps every hit, which a per-address limit makes expensive), one
storage for all of them: memory on the embedded default (one process decides), Redis in
scale-out, so a limit holds across every worker at once (atomic in Redis). Each limit is a
`limits` string such as "5/second;60/minute"; unset means no limit of that kind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter
from redis import Redis

from flashsale.domain.admission import ItemAdmission
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.services.local_windows import LocalWindows


def parse_limits(text: str | None) -> tuple[RateLimitItem, ...]:
    """Parse "5/second;60/minute" (None or blank: no limit); a malformed one raises ValueError."""
    if text is None or not text.strip():
        return ()
    return tuple(parse_many(text))


@lru_cache(maxsize=256)
def _cached_limits(text: str | None) -> tuple[RateLimitItem, ...]:
    """Campaign limits are parsed once per distinct string, not per request (they were checked when set)."""
    return parse_limits(text)


class Limiter(Protocol):
    """What admission asks of a sliding window counter: `limits`' strategy, or LocalWindows."""

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Count a hit unless the limit is reached; whether it was counted."""
        ...

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> tuple[float, int]:
        """(when a hit may next be counted, hits left now)."""
        ...


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limits of each kind; an empty tuple is no limit."""

    purchase_per_shopper: tuple[RateLimitItem, ...] = ()
    purchase_per_client: tuple[RateLimitItem, ...] = ()
    read_per_client: tuple[RateLimitItem, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.purchase_per_shopper or self.purchase_per_client or self.read_per_client)


class Admission:
    """Let a request through or refuse it with RATE_LIMITED; see the module doc."""

    def __init__(self, limits: RateLimits, storage: Storage) -> None:
        self.limits = limits
        # In process, the same counters without MemoryStorage's machinery (services/local_windows.py).
        self._limiter: Limiter = (
            LocalWindows() if isinstance(storage, MemoryStorage) else SlidingWindowCounterRateLimiter(storage)
        )

    def admit_purchase(self, shopper: str, client: str | None) -> None:
        """Count a purchase attempt against the shopper's and the client address's limits."""
        self._hit("purchase:shopper", shopper, self.limits.purchase_per_shopper)
        if client is not None:
            self._hit("purchase:client", client, self.limits.purchase_per_client)

    def admit_campaign_purchase(self, policy: ItemAdmission, shopper: str, client: str | None) -> None:
        """Count a purchase attempt against its campaign's own limits (set by operators, per campaign)."""
        campaign = policy.campaign_id
        self._hit(f"purchase:shopper:c{campaign}", shopper, _cached_limits(policy.purchase_per_shopper))
        if client is not None:
            self._hit(f"purchase:client:c{campaign}", client, _cached_limits(policy.purchase_per_client))

    def admit_read(self, client: str | None) -> None:
        """Count an anonymous read against the client address's limit."""
        if client is not None:
            self._hit("read:client", client, self.limits.read_per_client)

    def _hit(self, kind: str, who: str, limits: tuple[RateLimitItem, ...]) -> None:
        for limit in limits:
            if not self._limiter.hit(limit, kind, who):
                reset_at, _ = self._limiter.get_window_stats(limit, kind, who)
                wait_s = max(1.0, reset_at - self._now())
                raise FlashSaleError(
                    ErrorCode.RATE_LIMITED,
                    f"too many requests: at most {limit} ({kind.split(':')[0]})",
                    retry_after_s=wait_s,
                )

    @staticmethod
    def _now() -> float:
        return time.time()  # the limiter's windows run on the wall clock, whatever clock the sale uses


def admission_storage(ledger_url: str) -> Storage:
    """Memory for the in-process ledger; the ledger's Redis (its key prefix + ':limits') otherwise.

    On a Redis Cluster (`redis+cluster://`) the counters go to the same Cluster: each counter is one
    key, so any slot will do.
    """
    parts = urlsplit(ledger_url)
    if parts.scheme not in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        return MemoryStorage()
    query = dict(parse_qsl(parts.query))
    prefix = query.get("prefix", "fs")
    # `limits` takes a plain Redis URL: our own options (the key prefix, bucket count) stay ours.
    if parts.scheme.endswith("+cluster"):
        plain = urlunsplit(("redis+cluster", parts.netloc, "", "", ""))
        tls = parts.scheme == "rediss+cluster"
        return RedisClusterStorage(plain, key_prefix=f"{prefix}:limits", **({"ssl": True} if tls else {}))
    plain = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return RedisStorage(plain, key_prefix=f"{prefix}:limits")


def shared_redis(ledger_url: str) -> tuple[Redis, str] | None:
    """The ledger's Redis and key prefix, for admission state every worker must share; None in process.

    Sale tokens spent, the waiting room and hoarders' counts live beside the ledger's keys (same
    prefix), so one Redis holds all of a sale and a test's prefix cleanup takes them too.
    """
    parts = urlsplit(ledger_url)
    if parts.scheme not in ("redis", "rediss"):
        return None
    query = dict(parse_qsl(parts.query))
    plain = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return Redis.from_url(plain, decode_responses=True), query.get("prefix", "fs")
