"""Flash items and the hold decision rule: each refusal, their priority, and the per-user limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashsale.domain.errors import ErrorCode
from flashsale.domain.sale import MAX_QUANTITY_PER_REQUEST, FlashItem, ItemTerms, check_hold_request

OPENS, CLOSES = 1000.0, 1600.0
PRIORITY = (
    ErrorCode.INVALID_QUANTITY,
    ErrorCode.SESSION_NOT_OPEN,
    ErrorCode.LIMIT_EXCEEDED,
    ErrorCode.SOLD_OUT,
    ErrorCode.INSUFFICIENT_STOCK,
)


def item_terms(limit: int = 2) -> ItemTerms:
    return ItemTerms(1, quota=10, per_user_limit=limit, opens_at=OPENS, closes_at=CLOSES, hold_ttl_s=900)


def decide(
    *, qty: int = 1, now: float = OPENS, available: int = 10, used: int = 0, limit: int = 2
) -> ErrorCode | None:
    return check_hold_request(terms=item_terms(limit), qty=qty, now=now, available=available, user_used=used)


# -- flash items --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "quota", "limit"), [(-1, 10, 1), (100, -1, 1), (100, 10, 0)], ids=["price", "quota", "limit"]
)
def test_a_flash_item_refuses_negative_prices_and_quotas_and_a_limit_below_one(
    price: int, quota: int, limit: int
) -> None:
    with pytest.raises(ValueError):
        FlashItem(1, 1, 1, price, quota, limit)


def test_a_free_item_with_no_stock_is_allowed() -> None:
    assert FlashItem(1, 1, 1, 0, 0, 1).quota == 0


# -- each refusal -------------------------------------------------------------------------------


def test_a_fair_request_inside_the_window_is_granted() -> None:
    assert decide(qty=2, now=CLOSES - 0.001, available=2, used=0) is None


@pytest.mark.parametrize("qty", [0, -5, MAX_QUANTITY_PER_REQUEST + 1])
def test_quantities_outside_one_to_the_maximum_are_invalid(qty: int) -> None:
    assert decide(qty=qty) is ErrorCode.INVALID_QUANTITY


@pytest.mark.parametrize("now", [OPENS - 0.001, CLOSES, CLOSES + 1])
def test_outside_the_window_the_session_is_not_open(now: float) -> None:
    assert decide(now=now) is ErrorCode.SESSION_NOT_OPEN


def test_no_units_left_is_sold_out() -> None:
    assert decide(available=0) is ErrorCode.SOLD_OUT


def test_more_than_the_user_may_still_take_exceeds_the_limit() -> None:
    assert decide(qty=1, used=2) is ErrorCode.LIMIT_EXCEEDED
    assert decide(qty=3, used=0) is ErrorCode.LIMIT_EXCEEDED


def test_more_than_is_left_is_insufficient_stock() -> None:
    assert decide(qty=2, available=1) is ErrorCode.INSUFFICIENT_STOCK


# -- priority -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("qty", "used"), [(1, 2), (3, 0)], ids=["at-the-limit", "one-request-too-big"])
def test_a_request_over_the_limit_is_told_so_even_when_the_item_is_sold_out(qty: int, used: int) -> None:
    assert decide(qty=qty, available=0, used=used) is ErrorCode.LIMIT_EXCEEDED


def test_a_request_over_the_limit_is_told_so_before_insufficient_stock() -> None:
    assert decide(qty=2, available=1, used=1) is ErrorCode.LIMIT_EXCEEDED


def test_a_request_within_the_limit_on_a_sold_out_item_is_sold_out() -> None:
    assert decide(qty=1, available=0, used=1) is ErrorCode.SOLD_OUT


@given(
    qty=st.integers(-2, MAX_QUANTITY_PER_REQUEST + 2),
    now=st.sampled_from([OPENS - 1, OPENS, CLOSES - 1, CLOSES]),
    available=st.integers(-1, 5),
    used=st.integers(0, 4),
    limit=st.integers(1, 3),
)
def test_the_refusal_is_always_the_first_broken_rule_in_contract_order(
    qty: int, now: float, available: int, used: int, limit: int
) -> None:
    broken = {
        ErrorCode.INVALID_QUANTITY: not 1 <= qty <= MAX_QUANTITY_PER_REQUEST,
        ErrorCode.SESSION_NOT_OPEN: not OPENS <= now < CLOSES,
        ErrorCode.SOLD_OUT: available <= 0,
        ErrorCode.LIMIT_EXCEEDED: used + qty > limit,
        ErrorCode.INSUFFICIENT_STOCK: qty > available,
    }

    expected = next((code for code in PRIORITY if broken[code]), None)

    assert decide(qty=qty, now=now, available=available, used=used, limit=limit) is expected


# -- the limit over many requests ---------------------------------------------------------------


@given(
    limit=st.integers(1, 5),
    stock=st.integers(0, 12),
    steps=st.lists(st.tuples(st.sampled_from(["ask", "give-back"]), st.integers(-1, 6)), max_size=40),
)
def test_whatever_one_user_asks_for_in_turn_they_never_hold_more_than_the_limit(
    limit: int, stock: int, steps: list[tuple[str, int]]
) -> None:
    used, available, held = 0, stock, []
    for action, qty in steps:
        if action == "give-back" and held:  # a cancel or an expiry returns one earlier grant
            back = held.pop(qty % len(held))
            used, available = used - back, available + back
            continue
        code = decide(qty=qty, available=available, used=used, limit=limit)
        if code is None:
            held.append(qty)
            used, available = used + qty, available - qty
        else:
            assert code is not ErrorCode.LIMIT_EXCEEDED or used + qty > limit
        assert 0 <= used <= limit and available >= 0
    assert used == sum(held)
