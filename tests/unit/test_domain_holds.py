"""Hold and order state machines: which moves are allowed, which code a forbidden one gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from flashsale.domain.errors import ErrorCode
from flashsale.domain.holds import HOLD_TRANSITIONS, Hold, HoldState, transition_error
from flashsale.domain.orders import (
    HOLD_OF_STATUS,
    STATUS_OF_HOLD,
    Order,
    OrderStatus,
    order_transition_error,
)

T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
ALLOWED_HOLD_MOVES = {
    (HoldState.HELD, HoldState.SOLD),
    (HoldState.HELD, HoldState.RELEASED),
    (HoldState.HELD, HoldState.EXPIRED),
    (HoldState.SOLD, HoldState.REFUNDED),
}


@pytest.mark.parametrize(("current", "target"), list(product(HoldState, HoldState)))
def test_a_hold_moves_only_along_the_documented_edges(current: HoldState, target: HoldState) -> None:
    error = transition_error(current, target)

    if (current, target) in ALLOWED_HOLD_MOVES:
        assert error is None and target in HOLD_TRANSITIONS[current]
    elif current is HoldState.EXPIRED:
        assert error is ErrorCode.ORDER_EXPIRED
    else:
        assert error is ErrorCode.INVALID_TRANSITION


def test_order_statuses_and_hold_states_map_one_to_one() -> None:
    assert len(STATUS_OF_HOLD) == len(HoldState) == len(OrderStatus)
    assert all(HOLD_OF_STATUS[STATUS_OF_HOLD[state]] is state for state in HoldState)


@pytest.mark.parametrize(("current", "target"), list(product(OrderStatus, OrderStatus)))
def test_an_order_moves_exactly_as_its_hold_does(current: OrderStatus, target: OrderStatus) -> None:
    assert order_transition_error(current, target) is transition_error(
        HOLD_OF_STATUS[current], HOLD_OF_STATUS[target]
    )


def test_a_hold_is_due_from_the_instant_its_window_ends_while_still_held() -> None:
    hold = Hold("h", 1, "ann", 1, "k", 100.0, 160.0, HoldState.HELD)

    assert not hold.is_due(159.999)
    assert hold.is_due(160.0)
    assert not Hold("h", 1, "ann", 1, "k", 100.0, 160.0, HoldState.SOLD).is_due(999.0)


def order(status: OrderStatus) -> Order:
    return Order("o", "ann", 1, 1, 100, 100, status, "k", T0, T0 + timedelta(minutes=15))


def test_an_unpaid_order_past_its_window_reads_as_expired_before_the_sweeper_writes_it() -> None:
    deadline = T0 + timedelta(minutes=15)

    assert (
        order(OrderStatus.UNPAID).effective_status(deadline - timedelta(microseconds=1)) is OrderStatus.UNPAID
    )
    assert order(OrderStatus.UNPAID).effective_status(deadline) is OrderStatus.EXPIRED
    assert order(OrderStatus.PAID).effective_status(deadline + timedelta(days=1)) is OrderStatus.PAID
