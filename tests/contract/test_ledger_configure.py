"""`configure`: registering an item and changing its quota, limit, window and payment window."""

from __future__ import annotations

from dataclasses import replace

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode
from flashsale.domain.sale import ItemTerms
from flashsale.ledger import Ledger, StockLevel
from tests.contract.checks import assert_conserved, error_code, granted
from tests.factories import OPENS_AT, terms


def hold_for(ledger: Ledger, user_id: str, qty: int = 2, request_id: str = "k") -> str:
    return granted(ledger.reserve(item_id=1, user_id=user_id, qty=qty, request_id=request_id))


def test_a_new_item_starts_with_its_whole_quota_available(ledger: Ledger) -> None:
    assert ledger.configure(terms(7, quota=30)) == StockLevel(7, 30, 30, 0, 0)
    assert ledger.stock(7) == StockLevel(7, 30, 30, 0, 0)


def test_items_are_independent(ledger: Ledger, item: ItemTerms) -> None:
    ledger.configure(terms(2, quota=3))
    hold_for(ledger, "ann")

    assert ledger.stock(2) == StockLevel(2, 3, 3, 0, 0)


def test_raising_the_quota_puts_the_new_units_on_sale(ledger: Ledger, item: ItemTerms) -> None:
    ledger.confirm(hold_for(ledger, "ann"))
    hold_for(ledger, "bob")

    level = ledger.configure(replace(item, quota=15))

    assert level == StockLevel(1, 15, 11, 2, 2)
    assert ledger.stock(1) == level


def test_the_quota_may_drop_to_exactly_what_is_held_and_sold(ledger: Ledger, item: ItemTerms) -> None:
    ledger.confirm(hold_for(ledger, "ann"))
    hold_for(ledger, "bob")

    assert ledger.configure(replace(item, quota=4)) == StockLevel(1, 4, 0, 2, 2)
    assert ledger.reserve(item_id=1, user_id="cy", qty=1, request_id="k").code is ErrorCode.SOLD_OUT


def test_a_quota_below_what_is_held_and_sold_is_refused_and_changes_nothing(
    ledger: Ledger, item: ItemTerms
) -> None:
    ledger.confirm(hold_for(ledger, "ann"))
    hold_for(ledger, "bob")
    before = ledger.stock(1)

    assert error_code(ledger.configure, replace(item, quota=3)) is ErrorCode.QUOTA_BELOW_COMMITTED

    assert ledger.stock(1) == before
    assert ledger.reserve(item_id=1, user_id="cy", qty=2, request_id="k").granted  # old quota still rules


def test_expired_holds_do_not_count_against_a_lower_quota(ledger: Ledger, clock: ManualClock) -> None:
    short = terms(1, quota=10, hold_ttl_s=60)
    ledger.configure(short)
    hold_for(ledger, "ann")
    clock.advance(60)

    assert ledger.configure(replace(short, quota=0)) == StockLevel(1, 0, 0, 0, 0)


def test_a_raised_per_user_limit_lets_a_user_buy_more(ledger: Ledger, item: ItemTerms) -> None:
    hold_for(ledger, "ann")
    ledger.configure(replace(item, per_user_limit=3))

    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k2").granted


def test_a_lowered_per_user_limit_refuses_more_but_keeps_what_the_user_holds(
    ledger: Ledger, item: ItemTerms
) -> None:
    hold_id = hold_for(ledger, "ann")
    ledger.configure(replace(item, per_user_limit=1))

    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k2").code is ErrorCode.LIMIT_EXCEEDED
    assert ledger.confirm(hold_id).qty == 2
    assert_conserved(ledger, 1)


def test_moving_the_session_changes_when_the_item_can_be_bought(
    ledger: Ledger, item: ItemTerms, clock: ManualClock
) -> None:
    ledger.configure(replace(item, opens_at=OPENS_AT + 3600, closes_at=OPENS_AT + 4200))

    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k").code is ErrorCode.SESSION_NOT_OPEN
    clock.set(OPENS_AT + 3600)
    assert ledger.reserve(item_id=1, user_id="ann", qty=1, request_id="k").granted


def test_a_new_payment_window_applies_to_new_holds_only(ledger: Ledger, item: ItemTerms) -> None:
    before = ledger.get_hold(hold_for(ledger, "ann"))
    ledger.configure(replace(item, hold_ttl_s=60))
    after = ledger.get_hold(hold_for(ledger, "bob"))

    assert before is not None and after is not None
    assert before.expires_at == OPENS_AT + item.hold_ttl_s
    assert after.expires_at == OPENS_AT + 60
    current = ledger.get_hold(before.hold_id)
    assert current is not None and current.expires_at == before.expires_at
