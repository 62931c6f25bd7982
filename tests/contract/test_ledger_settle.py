"""`confirm`, `release`, `refund`: every transition, its error codes, and idempotent repeats."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode
from flashsale.domain.holds import Hold, HoldState
from flashsale.domain.sale import ItemTerms
from flashsale.ledger import Ledger
from tests.contract.checks import assert_conserved, error_code, granted
from tests.factories import HOLD_TTL_S

MOVES = ("confirm", "release", "refund")


def move(ledger: Ledger, name: str, hold_id: str) -> Hold:
    """Apply one of the settling moves, by name, so a table can drive them."""
    settle: Callable[[str], Hold] = getattr(ledger, name)
    return settle(hold_id)


def hold_in(ledger: Ledger, clock: ManualClock, state: HoldState) -> str:
    """Return the id of ann's 2-unit hold of item 1, brought into `state`."""
    hold_id = granted(ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k"))
    if state in (HoldState.SOLD, HoldState.REFUNDED):
        ledger.confirm(hold_id)
    if state is HoldState.REFUNDED:
        ledger.refund(hold_id)
    if state is HoldState.RELEASED:
        ledger.release(hold_id)
    if state is HoldState.EXPIRED:
        clock.advance(HOLD_TTL_S)
    hold = ledger.get_hold(hold_id)
    assert hold is not None and hold.state is state
    return hold_id


# -- the moves that are allowed -----------------------------------------------------------------


def test_confirming_a_live_hold_turns_its_units_into_sold_ones(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    hold_id = hold_in(ledger, clock, HoldState.HELD)

    hold = ledger.confirm(hold_id)

    assert hold.state is HoldState.SOLD and ledger.get_hold(hold_id) == hold
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (8, 0, 2)
    assert ledger.used_by(1, "ann") == 2


def test_releasing_a_live_hold_gives_the_units_and_the_users_quota_back(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    hold_id = hold_in(ledger, clock, HoldState.HELD)

    assert ledger.release(hold_id).state is HoldState.RELEASED

    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (10, 0, 0)
    assert ledger.used_by(1, "ann") == 0
    assert ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k2").granted


def test_refunding_a_sale_gives_the_units_and_the_users_quota_back(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    hold_id = hold_in(ledger, clock, HoldState.SOLD)

    assert ledger.refund(hold_id).state is HoldState.REFUNDED

    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (10, 0, 0)
    assert ledger.used_by(1, "ann") == 0


def test_a_settled_hold_keeps_its_identity(ledger: Ledger, item: ItemTerms, clock: ManualClock) -> None:
    held = ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k").hold
    assert held is not None

    sold = ledger.confirm(held.hold_id)

    assert (sold.hold_id, sold.item_id, sold.user_id, sold.qty, sold.request_id) == (
        held.hold_id,
        held.item_id,
        held.user_id,
        held.qty,
        held.request_id,
    )
    assert (sold.created_at, sold.expires_at) == (held.created_at, held.expires_at)


# -- repeats are harmless -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "state"),
    [("confirm", HoldState.SOLD), ("release", HoldState.RELEASED), ("refund", HoldState.REFUNDED)],
)
def test_repeating_a_move_that_already_happened_changes_nothing(
    ledger: Ledger, item: ItemTerms, clock: ManualClock, name: str, state: HoldState
) -> None:
    hold_id = hold_in(ledger, clock, state)
    before = (ledger.stock(1), ledger.used_by(1, "ann"))

    again = move(ledger, name, hold_id)

    assert again.state is state
    assert (ledger.stock(1), ledger.used_by(1, "ann")) == before


# -- the moves that are refused -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "name", "code"),
    [
        (HoldState.EXPIRED, "confirm", ErrorCode.ORDER_EXPIRED),
        (HoldState.EXPIRED, "release", ErrorCode.ORDER_EXPIRED),
        (HoldState.EXPIRED, "refund", ErrorCode.ORDER_EXPIRED),
        (HoldState.RELEASED, "confirm", ErrorCode.INVALID_TRANSITION),
        (HoldState.RELEASED, "refund", ErrorCode.INVALID_TRANSITION),
        (HoldState.REFUNDED, "confirm", ErrorCode.INVALID_TRANSITION),
        (HoldState.REFUNDED, "release", ErrorCode.INVALID_TRANSITION),
        (HoldState.SOLD, "release", ErrorCode.INVALID_TRANSITION),
        (HoldState.HELD, "refund", ErrorCode.INVALID_TRANSITION),
    ],
)
def test_a_move_the_state_machine_forbids_is_refused_and_changes_nothing(
    ledger: Ledger, item: ItemTerms, clock: ManualClock, state: HoldState, name: str, code: ErrorCode
) -> None:
    hold_id = hold_in(ledger, clock, state)
    before = (ledger.stock(1), ledger.used_by(1, "ann"), ledger.get_hold(hold_id))

    assert error_code(move, ledger, name, hold_id) is code

    assert (ledger.stock(1), ledger.used_by(1, "ann"), ledger.get_hold(hold_id)) == before


@pytest.mark.parametrize("name", MOVES)
def test_a_hold_id_the_ledger_never_issued_is_refused_with_unknown_hold(
    ledger: Ledger, item: ItemTerms, name: str
) -> None:
    assert error_code(move, ledger, name, "no-such-hold") is ErrorCode.UNKNOWN_HOLD
    assert ledger.get_hold("no-such-hold") is None
