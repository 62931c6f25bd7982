"""The cart's rules: one line per item in the order first added, quantities within bounds, a cap on lines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashsale.domain.cart import (
    MAX_CART_LINES,
    Cart,
    checkout_id_of,
    is_checkout_line,
    line_request_id,
)
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.sale import MAX_QUANTITY_PER_REQUEST

edits = st.lists(st.tuples(st.integers(1, 6), st.integers(0, 5)), max_size=30)


@given(edits)
def test_a_cart_keeps_one_line_per_item_in_first_added_order_with_the_last_quantity_set(
    steps: list[tuple[int, int]],
) -> None:
    cart = Cart("alice")
    expected: dict[int, int] = {}  # dicts keep insertion order; a removed key loses its place
    for item_id, qty in steps:
        cart = cart.with_qty(item_id, qty)
        if qty == 0:
            expected.pop(item_id, None)
        else:
            expected[item_id] = qty
    assert [(ln.item_id, ln.qty) for ln in cart.lines] == list(expected.items())


def test_quantities_out_of_bounds_and_a_full_cart_are_refused_and_change_nothing() -> None:
    cart = Cart("alice").added(1, 2)
    for bad in (-1, MAX_QUANTITY_PER_REQUEST + 1):
        with pytest.raises(FlashSaleError) as refused:
            cart.with_qty(1, bad)
        assert refused.value.code is ErrorCode.INVALID_QUANTITY
    with pytest.raises(FlashSaleError) as refused:
        cart.added(1, 0)
    assert refused.value.code is ErrorCode.INVALID_QUANTITY
    full = Cart("alice")
    for item_id in range(1, MAX_CART_LINES + 1):
        full = full.added(item_id, 1)
    with pytest.raises(FlashSaleError) as refused:
        full.added(MAX_CART_LINES + 1, 1)
    assert refused.value.code is ErrorCode.CART_FULL
    assert full.added(1, 1).qty_of(1) == 2  # more of a line already there still fits
    assert cart.qty_of(1) == 2


def test_a_key_names_one_checkout_per_shopper_and_its_lines_are_recognisable() -> None:
    assert checkout_id_of("alice", "k") == checkout_id_of("alice", "k")
    assert checkout_id_of("alice", "k") != checkout_id_of("bob", "k")
    assert checkout_id_of("alice", "k") != checkout_id_of("alice", "k2")
    line = line_request_id(checkout_id_of("alice", "k"), 0)
    assert is_checkout_line(line) and not is_checkout_line("k") and not is_checkout_line("co_without_line")
