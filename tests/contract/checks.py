"""Assertions shared by the ledger contract tests."""

from __future__ import annotations

from collections.abc import Callable

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.ledger import Decision, Ledger, StockLevel


def assert_conserved(ledger: Ledger, item_id: int) -> StockLevel:
    """Check available + held + sold == quota with no negative term, and return the level."""
    level = ledger.stock(item_id)
    assert level.conserved, level
    return level


def granted(decision: Decision) -> str:
    """Return the hold id of a decision that must be a fresh grant."""
    assert decision.hold is not None, decision.code
    assert not decision.replayed
    return decision.hold.hold_id


def error_code(call: Callable[..., object], *args: object) -> ErrorCode:
    """Call and return the code of the FlashSaleError it must raise."""
    try:
        call(*args)
    except FlashSaleError as exc:
        return exc.code
    raise AssertionError(f"{call} did not refuse")
