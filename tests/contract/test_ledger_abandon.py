"""`abandon`: undo grants nobody was told of; units back and request keys forgotten, on every engine."""

from __future__ import annotations

from flashsale.clock import ManualClock
from flashsale.domain.holds import HoldState
from flashsale.ledger import Ledger
from tests.contract.checks import assert_conserved, granted
from tests.factories import OPENS_AT, terms

TTL = 60.0


def test_an_abandoned_hold_gives_its_units_back_and_its_key_is_decided_afresh(ledger: Ledger) -> None:
    ledger.configure(terms(1, quota=3, per_user_limit=2, hold_ttl_s=TTL))
    failed = granted(ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k"))
    kept = granted(ledger.reserve(item_id=1, user_id="bob", qty=1, request_id="k"))

    assert ledger.abandon([failed]) == 1

    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (2, 1, 0)
    assert ledger.used_by(1, "ann") == 0
    assert ledger.get_hold(failed) is None
    assert [h.hold_id for h in ledger.holds(1)] == [kept]
    retry = ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k")
    assert granted(retry) != failed  # a fresh decision, not a replay of the abandoned grant
    assert assert_conserved(ledger, 1).available == 0


def test_abandon_forgets_released_and_expired_holds_but_never_touches_sold_ones(
    ledger: Ledger, clock: ManualClock
) -> None:
    ledger.configure(terms(1, quota=10, per_user_limit=5, hold_ttl_s=TTL))
    released = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="r"))
    lapsed = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="e"))
    sold = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="s"))
    ledger.release(released)
    ledger.confirm(sold)
    clock.advance(TTL)  # the unpaid one lapses, not handed out yet

    assert ledger.abandon([released, lapsed, sold, "no-such-hold"]) == 2
    assert ledger.abandon([released]) == 0  # idempotent

    assert ledger.expire_due() == []  # a forgotten expiry is not handed out
    assert [(h.hold_id, h.state) for h in ledger.holds(1)] == [(sold, HoldState.SOLD)]
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (9, 0, 1)
    again = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="s")
    assert again.replayed and again.hold is not None and again.hold.hold_id == sold


def test_an_abandoned_key_may_name_an_item_of_another_slot_group(ledger: Ledger) -> None:
    # Items 1 and 2 are in different slot groups on the Cluster: the key's claim must go too.
    ledger.configure(terms(1, quota=5))
    ledger.configure(terms(2, quota=5))
    failed = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k"))

    ledger.abandon([failed])

    granted(ledger.reserve(item_id=2, user_id="ann", qty=1, request_id="k"))
    assert assert_conserved(ledger, 1).available == 5
    assert assert_conserved(ledger, 2).available == 4


def test_abandon_is_not_held_back_by_a_pause(ledger: Ledger, clock: ManualClock) -> None:
    ledger.configure(terms(1, quota=5))
    failed = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k"))
    ledger.pause([1], until=OPENS_AT + 30, token="repair")

    assert ledger.abandon([failed]) == 1
    assert assert_conserved(ledger, 1).available == 5
