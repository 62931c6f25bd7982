"""Stock ledger engines behind one contract; `ledger_from_url` picks one."""

from __future__ import annotations

from flashsale.ledger.contract import Decision, Ledger, StockLevel
from flashsale.ledger.memory import Clock, MemoryLedger

__all__ = ["Clock", "Decision", "Ledger", "MemoryLedger", "StockLevel", "ledger_from_url"]


def ledger_from_url(url: str, clock: Clock) -> Ledger:
    """Build the ledger an URL names: `memory://` (in-process) is the only engine so far."""
    if url.startswith("memory://"):
        return MemoryLedger(clock)
    raise ValueError(f"unsupported ledger URL {url!r}: use memory://")
