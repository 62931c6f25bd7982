"""The coupon ledger: claims, redemptions and budgets behind one contract; `coupon_ledger_from_url`."""

from __future__ import annotations

from flashsale.clock import Clock
from flashsale.coupons.contract import BudgetLevel, ClaimDecision, CouponLedger, WaveLevel
from flashsale.coupons.memory import MemoryCouponLedger

__all__ = [
    "BudgetLevel",
    "ClaimDecision",
    "CouponLedger",
    "MemoryCouponLedger",
    "WaveLevel",
    "coupon_ledger_from_url",
]


def coupon_ledger_from_url(url: str, clock: Clock) -> CouponLedger:
    """Build the engine an URL names: `memory://` or `redis://host:port/db?prefix=NAME` (default "fc")."""
    if url.startswith("memory://"):
        return MemoryCouponLedger(clock)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from flashsale.coupons.redis import redis_coupon_ledger_from_url

        return redis_coupon_ledger_from_url(url, clock)
    raise ValueError(f"unsupported coupon ledger URL {url!r}: use memory:// or redis://host:port/db")
