"""Stock ledger engines behind one contract; `ledger_from_url` picks one."""

from __future__ import annotations

from flashsale.clock import Clock
from flashsale.ledger.contract import Decision, Ledger, Pause, PurchaseStream, Reservation, StockLevel
from flashsale.ledger.memory import MemoryLedger

__all__ = [
    "Decision",
    "Ledger",
    "MemoryLedger",
    "Pause",
    "PurchaseStream",
    "Reservation",
    "StockLevel",
    "ledger_from_url",
]


def ledger_from_url(url: str, clock: Clock) -> Ledger:
    """Build the ledger an URL names: `memory://` (in-process) or `redis://host:port/db?prefix=NAME`.

    Redis URLs also take `buckets=N` (stock split per item, see `flashsale.ledger.redis`); other query
    options go to redis-py. `redis+cluster://host:port` runs on a Redis Cluster (`groups=N` slot
    groups). The Redis client is imported only when a Redis URL is given.
    """
    if url.startswith("memory://"):
        return MemoryLedger(clock)
    if url.startswith(("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")):
        from flashsale.ledger.redis import redis_ledger_from_url

        return redis_ledger_from_url(url, clock)
    raise ValueError(
        f"unsupported ledger URL {url!r}: use memory://, redis://host:port/db or redis+cluster://host:port"
    )
