"""`pause` / `resume` / `pauses`: a lease that fences every write to an item and ends by itself."""

from __future__ import annotations

import pytest

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import HoldState
from flashsale.domain.sale import ItemTerms
from flashsale.ledger import Ledger, Pause, StockLevel
from tests.contract.checks import assert_conserved, error_code, granted
from tests.factories import HOLD_TTL_S, terms

LEASE = 30.0


def paused_for(ledger: Ledger, clock: ManualClock, *item_ids: int, token: str = "rec-1") -> float:
    """Pause the items for LEASE seconds from now under `token`; return the lease's deadline."""
    until = clock() + LEASE
    ledger.pause(item_ids, until=until, token=token)
    return until


def test_a_paused_item_refuses_purchases_with_sale_paused_and_changes_nothing(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    paused_for(ledger, clock, 1)

    decision = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k")

    assert decision.code is ErrorCode.SALE_PAUSED
    assert ledger.stock(1) == StockLevel(1, 10, 10, 0, 0)
    assert ledger.used_by(1, "ann") == 0


def test_a_replay_is_still_answered_during_a_pause(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    hold_id = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k"))
    paused_for(ledger, clock, 1)

    again = ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k")

    assert again.replayed and again.hold is not None and again.hold.hold_id == hold_id


@pytest.mark.parametrize("name", ["confirm", "release"])
def test_settling_a_hold_of_a_paused_item_is_refused_with_the_lease_deadline(
    ledger: Ledger, item: ItemTerms, clock: ManualClock, name: str
) -> None:
    hold_id = granted(ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k"))
    until = paused_for(ledger, clock, 1)
    before = (ledger.stock(1), ledger.get_hold(hold_id))

    with pytest.raises(FlashSaleError) as refused:
        getattr(ledger, name)(hold_id)

    assert refused.value.code is ErrorCode.SALE_PAUSED
    assert refused.value.retry_after_s == pytest.approx(until - clock())
    assert (ledger.stock(1), ledger.get_hold(hold_id)) == before


def test_a_refund_of_a_paused_item_is_refused_but_a_repeated_move_is_answered(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    hold_id = granted(ledger.reserve(item_id=1, user_id="ann", qty=2, request_id="k"))
    ledger.confirm(hold_id)
    paused_for(ledger, clock, 1)

    assert error_code(ledger.refund, hold_id) is ErrorCode.SALE_PAUSED
    assert ledger.confirm(hold_id).state is HoldState.SOLD  # a repeated callback changes nothing
    assert assert_conserved(ledger, 1).sold == 2


def test_changing_the_terms_of_a_paused_item_is_refused(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    paused_for(ledger, clock, 1)

    assert error_code(ledger.configure, terms(1, quota=20)) is ErrorCode.SALE_PAUSED
    assert ledger.stock(1).quota == 10


def test_the_pause_ends_by_itself_at_its_deadline(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    paused_for(ledger, clock, 1)
    clock.advance(LEASE)

    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k").granted
    assert ledger.pauses() == {}


def test_resume_with_the_token_ends_the_pause_and_another_token_does_not(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    until = paused_for(ledger, clock, 1)

    ledger.resume([1], token="someone-else")
    assert ledger.pauses() == {1: Pause(until, "rec-1")}

    ledger.resume([1], token="rec-1")
    assert ledger.pauses() == {}
    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k").granted


def test_an_operator_resume_without_a_token_ends_any_pause(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    paused_for(ledger, clock, 1)

    ledger.resume([1], token=None)

    assert ledger.pauses() == {}


def test_a_second_pauser_is_refused_while_the_lease_lives_and_the_holder_may_extend_it(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    ledger.configure(terms(2, quota=5))
    paused_for(ledger, clock, 1)

    with pytest.raises(FlashSaleError) as refused:
        ledger.pause([2, 1], until=clock() + LEASE, token="rec-2")
    assert refused.value.code is ErrorCode.SALE_PAUSED
    assert set(ledger.pauses()) == {1}  # all or nothing: item 2 was not paused either

    clock.advance(LEASE / 2)
    extended = paused_for(ledger, clock, 1)  # the holder renews its lease
    assert ledger.pauses() == {1: Pause(extended, "rec-1")}
    clock.advance(LEASE)
    paused_for(ledger, clock, 1, 2, token="rec-2")  # an ended lease is no obstacle
    assert set(ledger.pauses()) == {1, 2}


def test_a_pause_touches_only_its_items(ledger: Ledger, item: ItemTerms, clock: ManualClock) -> None:
    ledger.configure(terms(2, quota=5))
    paused_for(ledger, clock, 1)

    assert ledger.reserve(item_id=2, user_id="ann", qty=1, request_id="k").granted


def test_an_item_the_ledger_does_not_know_yet_can_be_paused(ledger: Ledger, clock: ManualClock) -> None:
    paused_for(ledger, clock, 7)

    assert ledger.reserve(item_id=7, user_id="ann", qty=1, request_id="k").code is ErrorCode.SALE_PAUSED
    assert error_code(ledger.stock, 7) is ErrorCode.UNKNOWN_ITEM  # reads answer as before


def test_holds_still_expire_during_a_pause(ledger: Ledger, item: ItemTerms, clock: ManualClock) -> None:
    hold_id = granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k"))
    paused_for(ledger, clock, 1)
    clock.advance(HOLD_TTL_S)

    assert [h.hold_id for h in ledger.expire_due()] == [hold_id]
    assert ledger.stock(1) == StockLevel(1, 10, 10, 0, 0)


def test_a_fenced_restore_needs_the_lease_and_keeps_the_pause(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k")

    assert error_code(lambda: ledger.restore([item], [], token="rec-1")) is ErrorCode.CONFLICT
    assert ledger.stock(1).held == 1  # refused: nothing changed

    until = paused_for(ledger, clock, 1)
    ledger.restore([item], [], token="rec-1")

    assert ledger.stock(1) == StockLevel(1, 10, 10, 0, 0)
    assert ledger.pauses() == {1: Pause(until, "rec-1")}


def test_a_fenced_restore_after_the_lease_ran_out_is_refused(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    paused_for(ledger, clock, 1)
    clock.advance(LEASE)
    granted(ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k"))  # the sale went on

    assert error_code(lambda: ledger.restore([item], [], token="rec-1")) is ErrorCode.CONFLICT
    assert ledger.stock(1).held == 1


def test_an_unfenced_restore_replaces_the_pauses_too(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    paused_for(ledger, clock, 1)

    ledger.restore([item], [])

    assert ledger.pauses() == {}
    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k").granted


def test_a_fresh_ledger_has_no_pauses(ledger: Ledger) -> None:
    assert ledger.pauses() == {}
