"""`reserve`: every refusal code, their priority, and idempotent replays — on every engine."""

from __future__ import annotations

import pytest

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode
from flashsale.domain.holds import HoldState
from flashsale.domain.sale import MAX_QUANTITY_PER_REQUEST, ItemTerms
from flashsale.ledger import Ledger
from tests.contract.checks import assert_conserved, granted
from tests.factories import CLOSES_AT, HOLD_TTL_S, OPENS_AT, terms


def fill(ledger: Ledger, item: ItemTerms, units: int) -> list[str]:
    """Let fresh users hold `units` units, two at a time where the limit allows; return the hold ids."""
    holds = []
    n = 0
    while units > 0:
        qty = min(units, item.per_user_limit)
        holds.append(granted(ledger.reserve(item_id=item.item_id, user_id=f"f{n}", qty=qty, request_id="r")))
        units -= qty
        n += 1
    return holds


# -- a grant ------------------------------------------------------------------------------------


def test_a_granted_hold_records_who_what_and_until_when(ledger: Ledger, item: ItemTerms) -> None:
    decision = ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k1")

    hold = decision.hold
    assert decision.granted and decision.code is None and not decision.replayed
    assert hold is not None
    assert (hold.item_id, hold.user_id, hold.qty, hold.request_id) == (1, "ann", 2, "k1")
    assert hold.state is HoldState.HELD
    assert hold.created_at == OPENS_AT
    assert hold.expires_at == OPENS_AT + HOLD_TTL_S
    assert ledger.get_hold(hold.hold_id) == hold
    assert ledger.used_by(1, "ann") == 2
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held, level.sold) == (8, 2, 0)


def test_every_grant_gets_its_own_hold_id(ledger: Ledger, item: ItemTerms) -> None:
    ids = fill(ledger, item, 10)

    assert len(set(ids)) == len(ids) == 5


# -- each refusal -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [OPENS_AT - 3600, OPENS_AT - 0.001, CLOSES_AT, CLOSES_AT + 0.001, CLOSES_AT + 86400],
    ids=["an-hour-early", "just-before-open", "at-close", "just-after-close", "next-day"],
)
def test_a_request_outside_the_session_is_refused_with_session_not_open(
    ledger: Ledger, item: ItemTerms, clock: ManualClock, moment: float
) -> None:
    clock.set(moment)

    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k").code is ErrorCode.SESSION_NOT_OPEN
    assert ledger.stock(1).available == 10


def test_the_session_is_open_from_its_first_instant_to_just_before_it_closes(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    clock.set(OPENS_AT)
    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k").granted
    clock.set(CLOSES_AT - 0.001)
    assert ledger.reserve(item_id=1, user_id="bob", qty=1, request_id="k").granted


def test_once_every_unit_is_held_everyone_hears_sold_out(ledger: Ledger, item: ItemTerms) -> None:
    fill(ledger, item, 10)

    assert ledger.reserve(item_id=1, user_id="late", qty=1, request_id="k").code is ErrorCode.SOLD_OUT
    assert_conserved(ledger, 1)


def test_asking_for_more_than_is_left_is_refused_with_insufficient_stock(
    ledger: Ledger, item: ItemTerms
) -> None:
    fill(ledger, item, 9)

    assert (
        ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k").code is ErrorCode.INSUFFICIENT_STOCK
    )
    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k").granted
    assert ledger.stock(1).available == 0


def test_the_per_user_limit_counts_every_hold_of_the_user(ledger: Ledger, item: ItemTerms) -> None:
    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k1").granted
    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k2").granted

    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k3").code is ErrorCode.LIMIT_EXCEEDED
    assert ledger.used_by(1, "ann") == 2


def test_the_per_user_limit_counts_bought_units_too(ledger: Ledger, item: ItemTerms) -> None:
    ledger.confirm(granted(ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k1")))

    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k2").code is ErrorCode.LIMIT_EXCEEDED


def test_a_single_request_above_the_limit_is_refused(ledger: Ledger, item: ItemTerms) -> None:
    assert ledger.reserve(item_id=1, user_id="ann", qty=3, request_id="k").code is ErrorCode.LIMIT_EXCEEDED
    assert ledger.used_by(1, "ann") == 0


def test_the_limit_is_per_item(ledger: Ledger, item: ItemTerms) -> None:
    ledger.configure(terms(2, quota=5, per_user_limit=1))
    assert ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k1").granted

    assert ledger.reserve(item_id=2, user_id="ann", qty=1, request_id="k2").granted
    assert (ledger.used_by(1, "ann"), ledger.used_by(2, "ann")) == (2, 1)


@pytest.mark.parametrize("qty", [0, -1, MAX_QUANTITY_PER_REQUEST + 1, 10**12])
def test_a_quantity_outside_one_to_the_maximum_is_refused_as_invalid(
    ledger: Ledger, item: ItemTerms, qty: int
) -> None:
    assert (
        ledger.reserve(item_id=1, user_id="ann", qty=qty, request_id="k").code is ErrorCode.INVALID_QUANTITY
    )
    assert ledger.stock(1).available == 10


def test_the_maximum_quantity_itself_is_valid_and_meets_the_limit_instead(
    ledger: Ledger, item: ItemTerms
) -> None:
    decision = ledger.reserve(item_id=1, user_id="ann", qty=MAX_QUANTITY_PER_REQUEST, request_id="k")

    assert decision.code is ErrorCode.LIMIT_EXCEEDED


def test_an_item_the_ledger_never_heard_of_is_refused_with_unknown_item(
    ledger: Ledger, item: ItemTerms
) -> None:
    assert ledger.reserve(item_id=99, user_id="ann", qty=1, request_id="k").code is ErrorCode.UNKNOWN_ITEM


def test_a_refusal_carries_no_hold_and_changes_nothing(ledger: Ledger, item: ItemTerms) -> None:
    before = ledger.stock(1)

    decision = ledger.reserve(item_id=1, user_id="ann", qty=3, request_id="k")

    assert not decision.granted and decision.hold is None and not decision.replayed
    assert ledger.stock(1) == before
    assert ledger.used_by(1, "ann") == 0


# -- which refusal wins -------------------------------------------------------------------------


def test_an_invalid_quantity_is_reported_before_a_closed_session(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    clock.set(CLOSES_AT)

    assert ledger.reserve(item_id=1, user_id="ann", qty=0, request_id="k").code is ErrorCode.INVALID_QUANTITY


def test_a_closed_session_is_reported_before_sold_out(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    fill(ledger, item, 10)
    clock.set(CLOSES_AT)

    assert ledger.reserve(item_id=1, user_id="late", qty=1, request_id="k").code is ErrorCode.SESSION_NOT_OPEN


def test_a_user_at_the_limit_hears_limit_exceeded_even_when_the_item_is_sold_out(
    ledger: Ledger, item: ItemTerms
) -> None:
    granted(ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k1"))
    fill(ledger, item, 8)

    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k2").code is ErrorCode.LIMIT_EXCEEDED
    assert ledger.reserve(item_id=1, user_id="bob", qty=1, request_id="k").code is ErrorCode.SOLD_OUT
    assert_conserved(ledger, 1)


def test_asking_for_more_than_the_limit_on_a_sold_out_item_is_limit_exceeded(
    ledger: Ledger, item: ItemTerms
) -> None:
    fill(ledger, item, 10)

    assert ledger.reserve(item_id=1, user_id="ann", qty=3, request_id="k").code is ErrorCode.LIMIT_EXCEEDED
    assert ledger.used_by(1, "ann") == 0


def test_a_batch_tells_the_user_over_the_limit_so_after_the_last_unit_went(
    ledger: Ledger, item: ItemTerms
) -> None:
    fill(ledger, item, 8)

    answers = ledger.reserve_many(
        [(1, "ann", 2, "k1"), (1, "ann", 1, "k2"), (1, "bob", 1, "k1"), (1, "ann", 5, "k3")]
    )

    assert [a.code for a in answers] == [
        None,
        ErrorCode.LIMIT_EXCEEDED,
        ErrorCode.SOLD_OUT,
        ErrorCode.LIMIT_EXCEEDED,
    ]


def test_the_limit_is_reported_before_insufficient_stock(ledger: Ledger, item: ItemTerms) -> None:
    granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k1"))
    fill(ledger, item, 8)

    assert ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k2").code is ErrorCode.LIMIT_EXCEEDED


# -- idempotency --------------------------------------------------------------------------------


def test_repeating_a_granted_request_returns_the_same_hold_and_reserves_nothing_more(
    ledger: Ledger, item: ItemTerms
) -> None:
    first = ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k")

    again = ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k")

    assert again.replayed and again.granted and again.code is None
    assert again.hold == first.hold
    assert ledger.used_by(1, "ann") == 2
    assert ledger.stock(1).held == 2


def test_a_replay_is_answered_even_after_the_item_sold_out_and_the_session_closed(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    first = granted(ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k"))
    fill(ledger, item, 8)
    clock.set(CLOSES_AT + 1)

    again = ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k")

    assert again.replayed and again.hold is not None and again.hold.hold_id == first


def test_a_replay_reports_the_hold_as_it_stands_now(ledger: Ledger, item: ItemTerms) -> None:
    hold_id = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k"))
    ledger.confirm(hold_id)

    again = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k")

    assert again.replayed and again.hold is not None
    assert (again.hold.hold_id, again.hold.state) == (hold_id, HoldState.SOLD)
    assert ledger.stock(1).sold == 1


def test_a_replay_after_the_hold_expired_does_not_reserve_again(ledger: Ledger, clock: ManualClock) -> None:
    ledger.configure(terms(1, quota=5, hold_ttl_s=60))  # expires while the session is still open
    hold_id = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k"))
    clock.advance(60)

    again = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k")

    assert again.replayed and again.hold is not None and again.hold.hold_id == hold_id
    assert ledger.stock(1).held == 0 and ledger.used_by(1, "ann") == 0


@pytest.mark.parametrize(("item_id", "qty"), [(1, 1), (2, 2), (1, 0)], ids=["qty", "item", "invalid-qty"])
def test_the_same_key_for_another_item_or_quantity_is_refused_as_a_mismatch(
    ledger: Ledger, item: ItemTerms, item_id: int, qty: int
) -> None:
    ledger.configure(terms(2, quota=5))
    granted(ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k"))

    decision = ledger.reserve(item_id=item_id, user_id="ann", qty=qty, request_id="k")

    assert decision.code is ErrorCode.IDEMPOTENCY_MISMATCH and decision.hold is None
    assert (ledger.stock(1).held, ledger.stock(2).held) == (2, 0)


def test_the_same_request_id_from_another_user_is_a_different_request(
    ledger: Ledger, item: ItemTerms
) -> None:
    ann = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k")
    bob = ledger.reserve(item_id=1, user_id="bob", qty=2, request_id="k")

    assert ann.hold is not None and bob.hold is not None
    assert not bob.replayed and ann.hold.hold_id != bob.hold.hold_id
    assert ledger.stock(1).held == 3


def test_a_refused_request_is_not_remembered_so_a_retry_is_decided_afresh(
    ledger: Ledger, item: ItemTerms
) -> None:
    holds = fill(ledger, item, 10)
    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k").code is ErrorCode.SOLD_OUT
    ledger.release(holds[0])

    retry = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k")

    assert retry.granted and not retry.replayed


# -- reserve_many -------------------------------------------------------------------------------


def test_a_batch_is_decided_in_order_exactly_as_one_reserve_after_another(
    ledger: Ledger, item: ItemTerms
) -> None:
    fill(ledger, item, 7)
    batch = [
        (1, "ann", 2, "k1"),  # granted: 1 left
        (1, "ann", 1, "k2"),  # over ann's limit
        (1, "bob", 2, "k1"),  # only 1 left
        (1, "bob", 0, "k2"),  # invalid
        (1, "ann", 2, "k1"),  # ann's first request again: a replay
        (99, "cy", 1, "k1"),  # no such item
        (1, "cy", 1, "k1"),  # the last unit
        (1, "dee", 1, "k1"),  # nothing left
    ]

    answers = ledger.reserve_many(batch)

    assert [a.code for a in answers] == [
        None,
        ErrorCode.LIMIT_EXCEEDED,
        ErrorCode.INSUFFICIENT_STOCK,
        ErrorCode.INVALID_QUANTITY,
        None,
        ErrorCode.UNKNOWN_ITEM,
        None,
        ErrorCode.SOLD_OUT,
    ]
    assert [a.replayed for a in answers] == [False, False, False, False, True, False, False, False]
    assert answers[0].hold == answers[4].hold
    level = assert_conserved(ledger, 1)
    assert (level.available, level.held) == (0, 10)


def test_an_empty_batch_decides_nothing(ledger: Ledger, item: ItemTerms) -> None:
    assert ledger.reserve_many([]) == []


def test_a_large_batch_gets_one_answer_per_request_and_never_oversells(ledger: Ledger) -> None:
    ledger.configure(terms(1, quota=700, per_user_limit=1))
    batch = [(1, f"u{n}", 1, "k") for n in range(1000)]

    answers = ledger.reserve_many(batch)

    assert [a.granted for a in answers] == [True] * 700 + [False] * 300
    assert {a.code for a in answers[700:]} == {ErrorCode.SOLD_OUT}
    assert [a.hold.user_id for a in answers[:700] if a.hold is not None] == [f"u{n}" for n in range(700)]
    assert assert_conserved(ledger, 1).held == 700
