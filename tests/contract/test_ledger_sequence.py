"""`sequences` / `expect`: every grant raises its book's sequence; a book below a known floor sells nothing.

A ledger that lost acknowledged writes is one whose sequence went back: what a caller saw (its
floor) is above what the ledger has, and the ledger refuses fresh requests with LEDGER_BEHIND
until a restore starts a new epoch above every floor and mark. Sequences are kept per book
((item, bucket)): one book per item, but one per bucket of an item a ledger spreads.
"""

from __future__ import annotations

from flashsale.domain.errors import ErrorCode
from flashsale.domain.sale import ItemTerms
from flashsale.ledger import Ledger
from flashsale.ledger.contract import SEQUENCE_EPOCH, next_epoch
from tests.contract.checks import assert_conserved, granted
from tests.factories import terms


def floors_above(ledger: Ledger, item_id: int, by: int) -> dict[tuple[int, int], int]:
    """A floor `by` above each of the item's books' sequences: every book lost `by` grants."""
    return {(item_id, b): seq + by for b, seq in enumerate(ledger.sequences(item_id))}


def test_every_grant_raises_one_books_sequence_by_one_and_nothing_else_does(
    ledger: Ledger, item: ItemTerms
) -> None:
    start = ledger.sequences(1)
    first = granted(ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="a"))
    after = ledger.sequences(1)
    assert sum(after) == sum(start) + 1  # one grant, whatever its quantity
    assert sum(a != b for a, b in zip(start, after, strict=True)) == 1  # in one book
    ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="a")  # a replay
    ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="b")  # a refusal: over the limit
    ledger.confirm(first)
    assert ledger.sequences(1) == after
    ledger.reserve_many([(1, "bob", 1, "c"), (1, "cid", 1, "d")])
    assert sum(ledger.sequences(1)) == sum(start) + 3


def test_a_floor_above_the_sequence_refuses_fresh_requests_and_changes_nothing(
    ledger: Ledger, item: ItemTerms
) -> None:
    held = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="a"))
    reached = ledger.sequences(1)
    ledger.expect(floors_above(ledger, 1, 5))  # grants this ledger no longer has

    refused = ledger.reserve(item_id=1, user_id="bob", qty=1, request_id="b")
    replay = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="a")

    assert refused.code is ErrorCode.LEDGER_BEHIND
    assert replay.replayed and replay.hold is not None and replay.hold.hold_id == held
    assert ledger.sequences(1) == reached
    assert ledger.used_by(1, "bob") == 0
    assert assert_conserved(ledger, 1).held == 1


def test_floors_only_go_up_and_a_floor_at_the_sequence_sells(ledger: Ledger, item: ItemTerms) -> None:
    granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="a"))
    ledger.expect(floors_above(ledger, 1, 0))
    ledger.expect(dict.fromkeys(floors_above(ledger, 1, 0), 0))  # an older mark read late lowers nothing
    assert ledger.reserve(item_id=1, user_id="bob", qty=1, request_id="b").granted
    ledger.expect(floors_above(ledger, 1, 1))
    ledger.expect(dict.fromkeys(floors_above(ledger, 1, 0), 0))
    assert ledger.reserve(item_id=1, user_id="cid", qty=1, request_id="c").code is ErrorCode.LEDGER_BEHIND


def test_a_mark_of_a_book_the_ledger_does_not_have_is_ignored(ledger: Ledger, item: ItemTerms) -> None:
    books = len(ledger.sequences(1))
    ledger.expect({(1, books): SEQUENCE_EPOCH * 9})  # a bucket of another layout
    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="a").granted


def test_a_restore_starts_a_new_epoch_above_every_floor_mark_and_sequence(
    ledger: Ledger, item: ItemTerms
) -> None:
    hold_id = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="a"))
    hold = ledger.get_hold(hold_id)
    assert hold is not None
    ledger.expect({(1, 0): SEQUENCE_EPOCH + 7})  # a floor from a Redis that was further along once
    other = terms(2, quota=5, per_user_limit=1)

    ledger.restore([item, other], [hold], marks={(2, 0): 3 * SEQUENCE_EPOCH - 1})

    first, *rest = ledger.sequences(1)
    assert first == 2 * SEQUENCE_EPOCH
    assert all(seq == SEQUENCE_EPOCH for seq in rest)  # each book above its own floors only
    assert ledger.sequences(2)[0] == 3 * SEQUENCE_EPOCH
    assert ledger.reserve(item_id=1, user_id="bob", qty=1, request_id="b").granted
    assert sum(ledger.sequences(1)) == 2 * SEQUENCE_EPOCH + len(rest) * SEQUENCE_EPOCH + 1
    assert ledger.get_hold(hold_id) == hold


def test_next_epoch_is_the_first_multiple_of_the_epoch_above_every_sequence() -> None:
    assert next_epoch() == SEQUENCE_EPOCH
    assert next_epoch(0, 5) == SEQUENCE_EPOCH
    assert next_epoch(SEQUENCE_EPOCH - 1) == SEQUENCE_EPOCH
    assert next_epoch(SEQUENCE_EPOCH, 3) == 2 * SEQUENCE_EPOCH
