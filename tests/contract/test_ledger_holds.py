"""`holds(item_id)`: every hold the ledger remembers for an item, for reconciliation with the store."""

from __future__ import annotations

from flashsale.clock import ManualClock
from flashsale.domain.holds import HoldState
from flashsale.ledger import Ledger
from tests.contract.checks import granted
from tests.factories import terms

TTL = 60.0


def test_holds_lists_every_hold_of_the_item_in_whatever_state_it_is(
    ledger: Ledger, clock: ManualClock
) -> None:
    ledger.configure(terms(1, quota=10, hold_ttl_s=TTL))
    ledger.configure(terms(2, quota=10, hold_ttl_s=TTL))
    ids = {user: granted(ledger.reserve(item_id=1, user_id=user, qty=1, request_id="k")) for user in "abcde"}
    granted(ledger.reserve(item_id=2, user_id="a", qty=1, request_id="other-item"))
    ledger.confirm(ids["b"])
    ledger.confirm(ids["c"])
    ledger.refund(ids["c"])
    ledger.release(ids["d"])
    clock.advance(TTL)  # a's and e's holds lapse: the listing must show them expired

    listed = {h.hold_id: h.state for h in ledger.holds(1)}

    assert listed == {
        ids["a"]: HoldState.EXPIRED,
        ids["b"]: HoldState.SOLD,
        ids["c"]: HoldState.REFUNDED,
        ids["d"]: HoldState.RELEASED,
        ids["e"]: HoldState.EXPIRED,
    }
    assert all(ledger.get_hold(h.hold_id) == h for h in ledger.holds(1))


def test_an_item_without_holds_lists_none(ledger: Ledger) -> None:
    ledger.configure(terms(1))

    assert ledger.holds(1) == []
