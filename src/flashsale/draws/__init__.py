"""Draw ledgers (lottery, scratch card, golden egg) behind one contract; `draw_ledger_from_url` picks one."""

from __future__ import annotations

from flashsale.draws.contract import (
    DrawDecision,
    DrawLedger,
    DrawRecord,
    GrantDecision,
    GrantRecord,
    PrizeLevel,
)
from flashsale.draws.memory import MemoryDrawLedger
from flashsale.draws.rng import Rng, system_rng

__all__ = [
    "DrawDecision",
    "DrawLedger",
    "DrawRecord",
    "GrantDecision",
    "GrantRecord",
    "MemoryDrawLedger",
    "PrizeLevel",
    "Rng",
    "draw_ledger_from_url",
    "system_rng",
]


def draw_ledger_from_url(url: str, rng: Rng | None = None) -> DrawLedger:
    """Build the draw ledger an URL names: `memory://` or `redis://host:port/db?prefix=NAME`.

    `rng` defaults to `secrets` (the OS's CSPRNG); tests pass a seeded `random.Random`.
    """
    if url.startswith("memory://"):
        return MemoryDrawLedger(rng)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from flashsale.draws.redis import redis_draw_ledger_from_url

        return redis_draw_ledger_from_url(url, rng)
    raise ValueError(f"unsupported draw ledger URL {url!r}: use memory:// or redis://host:port/db")
