"""`restore`: rebuilding the counters from the system of record after a restart."""

from __future__ import annotations

import pytest

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode
from flashsale.domain.holds import Hold, HoldState
from flashsale.ledger import Ledger, StockLevel
from tests.contract.checks import error_code
from tests.factories import OPENS_AT, terms

TTL = 60.0
ITEM = terms(1, quota=10, per_user_limit=2, hold_ttl_s=TTL)


def stored(hold_id: str, user_id: str, qty: int, state: HoldState, *, at: float = OPENS_AT) -> Hold:
    """A hold as the store would hand it back: one per order row."""
    return Hold(hold_id, 1, user_id, qty, f"key-{hold_id}", at, at + TTL, state)


STORE = [
    stored("h-held", "ann", 2, HoldState.HELD),
    stored("h-sold", "bob", 2, HoldState.SOLD),
    stored("h-sold-2", "cy", 1, HoldState.SOLD),
    stored("h-released", "cy", 1, HoldState.RELEASED),
    stored("h-expired", "dee", 2, HoldState.EXPIRED),
    stored("h-refunded", "eve", 1, HoldState.REFUNDED),
]


@pytest.fixture
def restored(ledger: Ledger) -> Ledger:
    ledger.restore([ITEM], STORE)
    return ledger


def test_restore_counts_live_holds_as_held_and_sales_as_sold(restored: Ledger) -> None:
    assert restored.stock(1) == StockLevel(1, 10, 5, 2, 3)


def test_restore_counts_each_users_live_and_bought_units(restored: Ledger) -> None:
    used = {user: restored.used_by(1, user) for user in ("ann", "bob", "cy", "dee", "eve")}

    assert used == {"ann": 2, "bob": 2, "cy": 1, "dee": 0, "eve": 0}
    assert restored.reserve(item_id=1, user_id="cy", qty=2, request_id="new").code is ErrorCode.LIMIT_EXCEEDED
    assert restored.reserve(item_id=1, user_id="dee", qty=2, request_id="new").granted


def test_restored_holds_keep_their_state_and_deadline(restored: Ledger) -> None:
    assert [restored.get_hold(h.hold_id) for h in STORE] == STORE


def test_a_restored_key_is_remembered_so_a_retry_after_the_restart_is_a_replay(restored: Ledger) -> None:
    again = restored.reserve(item_id=1, user_id="ann", qty=2, request_id="key-h-held")

    assert again.replayed and again.hold == STORE[0]
    assert restored.stock(1).held == 2


def test_restored_holds_can_be_settled_as_before(restored: Ledger) -> None:
    assert restored.confirm("h-held").state is HoldState.SOLD
    assert restored.refund("h-sold").state is HoldState.REFUNDED
    assert error_code(restored.release, "h-expired") is ErrorCode.ORDER_EXPIRED
    assert restored.stock(1) == StockLevel(1, 10, 7, 0, 3)


def test_a_restored_live_hold_past_its_deadline_expires_and_is_handed_out_once(
    restored: Ledger, clock: ManualClock
) -> None:
    assert restored.next_expiry() == OPENS_AT + TTL
    clock.advance(TTL)

    assert [h.hold_id for h in restored.expire_due()] == ["h-held"]  # not the stored expiry again
    assert restored.expire_due() == []
    assert restored.stock(1) == StockLevel(1, 10, 7, 0, 3)


def test_restore_replaces_everything_the_ledger_knew(ledger: Ledger) -> None:
    ledger.configure(terms(9, quota=5))
    old = ledger.reserve(item_id=9, user_id="ann", qty=1, request_id="k").hold
    assert old is not None

    ledger.restore([ITEM], [])

    assert error_code(ledger.stock, 9) is ErrorCode.UNKNOWN_ITEM
    assert ledger.reserve(item_id=9, user_id="ann", qty=1, request_id="k").code is ErrorCode.UNKNOWN_ITEM
    assert ledger.get_hold(old.hold_id) is None
    assert ledger.stock(1) == StockLevel(1, 10, 10, 0, 0)
    assert ledger.next_expiry() is None
