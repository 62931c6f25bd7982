"""Expiry: the exact instant, lazy expiry on every read, `expire_due` (once each), `next_expiry`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode
from flashsale.domain.holds import HoldState
from flashsale.domain.sale import ItemTerms
from flashsale.ledger import Ledger
from tests.contract.checks import assert_conserved, error_code, granted
from tests.factories import OPENS_AT, terms

TTL = 60.0  # shorter than the session, so holds expire while buying is still open


@pytest.fixture
def short(ledger: Ledger) -> ItemTerms:
    """Item 1 with 10 units, 2 per user, and a one-minute payment window."""
    item_terms = terms(1, quota=10, per_user_limit=2, hold_ttl_s=TTL)
    ledger.configure(item_terms)
    return item_terms


def hold_for(ledger: Ledger, user_id: str, qty: int = 1) -> str:
    return granted(ledger.reserve(item_id=1, user_id=user_id, qty=qty, request_id="k"))


# -- the instant of expiry ----------------------------------------------------------------------


def test_a_hold_can_still_be_paid_an_instant_before_it_expires(
    ledger: Ledger, short: ItemTerms, clock: ManualClock
) -> None:
    hold_id = hold_for(ledger, "ann")
    clock.set(OPENS_AT + TTL - 0.001)

    assert ledger.confirm(hold_id).state is HoldState.SOLD


def test_at_exactly_expires_at_the_hold_is_expired_and_cannot_be_paid(
    ledger: Ledger, short: ItemTerms, clock: ManualClock
) -> None:
    hold_id = hold_for(ledger, "ann", qty=2)
    hold = ledger.get_hold(hold_id)
    assert hold is not None
    clock.set(hold.expires_at)

    assert error_code(ledger.confirm, hold_id) is ErrorCode.ORDER_EXPIRED

    expired = ledger.get_hold(hold_id)
    assert expired is not None and expired.state is HoldState.EXPIRED
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held) == (10, 0)


def test_an_expired_hold_gives_its_units_and_the_users_quota_back(
    ledger: Ledger, short: ItemTerms, clock: ManualClock
) -> None:
    hold_for(ledger, "ann", qty=2)
    clock.advance(TTL)

    assert ledger.used_by(1, "ann") == 0
    assert ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k2").granted


def test_units_freed_by_expiry_can_be_bought_by_the_next_buyer_at_once(
    ledger: Ledger, clock: ManualClock
) -> None:
    ledger.configure(terms(1, quota=1, per_user_limit=1, hold_ttl_s=TTL))
    hold_for(ledger, "ann")
    assert ledger.reserve(item_id=1, user_id="bob", qty=1, request_id="k").code is ErrorCode.SOLD_OUT
    clock.advance(TTL)

    assert ledger.reserve(item_id=1, user_id="bob", qty=1, request_id="k").granted


# -- lazy expiry on reads -----------------------------------------------------------------------

READS: dict[str, Callable[[Ledger, str], object]] = {
    "stock": lambda ledger, _: ledger.stock(1),
    "used_by": lambda ledger, _: ledger.used_by(1, "ann"),
    "get_hold": lambda ledger, hold_id: ledger.get_hold(hold_id),
}


@pytest.mark.parametrize("read", sorted(READS))
def test_a_read_after_the_deadline_sees_the_hold_expired_without_any_sweep(
    ledger: Ledger, short: ItemTerms, clock: ManualClock, read: str
) -> None:
    hold_id = hold_for(ledger, "ann", qty=2)
    clock.advance(TTL)

    READS[read](ledger, hold_id)

    hold = ledger.get_hold(hold_id)
    assert hold is not None and hold.state is HoldState.EXPIRED
    assert (ledger.stock(1).held, ledger.used_by(1, "ann")) == (0, 0)
    assert [h.hold_id for h in ledger.expire_due()] == [hold_id]  # still handed out, once


# -- expire_due ---------------------------------------------------------------------------------


def test_expire_due_hands_out_nothing_before_anything_is_due(
    ledger: Ledger, short: ItemTerms, clock: ManualClock
) -> None:
    hold_for(ledger, "ann")
    clock.advance(TTL - 0.001)

    assert ledger.expire_due() == []
    assert ledger.stock(1).held == 1


def test_expire_due_hands_each_expiry_out_exactly_once(
    ledger: Ledger, short: ItemTerms, clock: ManualClock
) -> None:
    ids = {hold_for(ledger, user) for user in ("ann", "bob", "cy")}
    clock.advance(TTL)

    handed = ledger.expire_due()

    assert {h.hold_id for h in handed} == ids and len(handed) == 3
    assert all(h.state is HoldState.EXPIRED for h in handed)
    assert ledger.expire_due() == []
    clock.advance(TTL)
    assert ledger.expire_due() == []


def test_expire_due_leaves_paid_and_cancelled_holds_alone(
    ledger: Ledger, short: ItemTerms, clock: ManualClock
) -> None:
    paid, cancelled, forgotten = (hold_for(ledger, user) for user in ("ann", "bob", "cy"))
    ledger.confirm(paid)
    ledger.release(cancelled)
    clock.advance(TTL)

    assert [h.hold_id for h in ledger.expire_due()] == [forgotten]
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (9, 0, 1)


def test_expire_due_hands_out_no_more_than_its_limit_and_the_rest_later(
    ledger: Ledger, short: ItemTerms, clock: ManualClock
) -> None:
    ids = {hold_for(ledger, f"u{n}") for n in range(5)}
    clock.advance(TTL)

    batches = [ledger.expire_due(limit=2) for _ in range(4)]

    assert [len(b) for b in batches] == [2, 2, 1, 0]
    handed = [h.hold_id for batch in batches for h in batch]
    assert sorted(handed) == sorted(ids)


def test_holds_expire_one_by_one_as_their_own_deadlines_pass(
    ledger: Ledger, short: ItemTerms, clock: ManualClock
) -> None:
    early = hold_for(ledger, "ann")
    clock.advance(10)
    late = hold_for(ledger, "bob")
    clock.advance(TTL - 10)

    assert [h.hold_id for h in ledger.expire_due()] == [early]
    clock.advance(10)
    assert [h.hold_id for h in ledger.expire_due()] == [late]


# -- next_expiry --------------------------------------------------------------------------------


def test_next_expiry_is_none_when_nothing_is_held(ledger: Ledger, short: ItemTerms) -> None:
    assert ledger.next_expiry() is None


def test_next_expiry_is_the_earliest_deadline_among_live_holds(
    ledger: Ledger, short: ItemTerms, clock: ManualClock
) -> None:
    first = hold_for(ledger, "ann")
    clock.advance(5)
    second = hold_for(ledger, "bob")
    clock.advance(5)
    hold_for(ledger, "cy")

    assert ledger.next_expiry() == OPENS_AT + TTL
    ledger.confirm(first)
    assert ledger.next_expiry() == OPENS_AT + 5 + TTL
    ledger.release(second)
    assert ledger.next_expiry() == OPENS_AT + 10 + TTL


def test_next_expiry_forgets_holds_once_they_expired(
    ledger: Ledger, short: ItemTerms, clock: ManualClock
) -> None:
    hold_for(ledger, "ann")
    clock.advance(TTL)
    ledger.expire_due()

    assert ledger.next_expiry() is None


# -- a deadline brought forward (a flagged hoarder's shorter payment window) ----------------------


def test_a_shortened_hold_expires_at_its_new_deadline_and_never_later(
    ledger: Ledger, short: ItemTerms, clock: ManualClock
) -> None:
    hold_id, other = (
        hold_for(ledger, "ann"),
        granted(ledger.reserve(item_id=1, user_id="bob", qty=1, request_id="k")),
    )
    shortened = ledger.shorten(hold_id, OPENS_AT + 10)
    assert shortened.expires_at == OPENS_AT + 10 and shortened.state is HoldState.HELD
    assert ledger.shorten(hold_id, OPENS_AT + 30).expires_at == OPENS_AT + 10  # never later
    assert ledger.next_expiry() == OPENS_AT + 10
    clock.set(OPENS_AT + 10)
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held) == (9, 1)  # ann's unit is back; bob's keeps its minute
    assert [h.hold_id for h in ledger.expire_due()] == [hold_id]
    assert ledger.shorten(hold_id, OPENS_AT).state is HoldState.EXPIRED  # no longer held: unchanged
    assert error_code(ledger.confirm, hold_id) is ErrorCode.ORDER_EXPIRED
    assert ledger.confirm(other).state is HoldState.SOLD
    assert error_code(ledger.shorten, "no-such-hold", OPENS_AT) is ErrorCode.UNKNOWN_HOLD
