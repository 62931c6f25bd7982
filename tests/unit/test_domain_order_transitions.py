"""Order transitions: pure moves along ORDER_TRANSITIONS, each with its outbox event; the due rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashsale.domain import events as ev
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold, HoldState, is_due
from flashsale.domain.orders import ORDER_TRANSITIONS, Order, OrderStatus, order_transition_error

T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
AT = T0.timestamp() + 30.25

Move = Callable[[Order, float], Order]
MOVES: dict[OrderStatus, Move] = {
    OrderStatus.PAID: lambda order, at: order.paid("ch_1", at),
    OrderStatus.CANCELLED: lambda order, at: order.cancelled(at),
    OrderStatus.EXPIRED: lambda order, at: order.expired(at),
    OrderStatus.REFUNDED: lambda order, at: order.refunded(at),
}

EVENT_OF = {
    OrderStatus.PAID: "OrderPaid",
    OrderStatus.CANCELLED: "OrderCancelled",
    OrderStatus.EXPIRED: "OrderExpired",
    OrderStatus.REFUNDED: "OrderRefunded",
}


def unpaid_order(status: OrderStatus = OrderStatus.UNPAID) -> Order:
    return Order(
        id="o1",
        user_id="ann",
        item_id=7,
        qty=2,
        unit_price_cents=500,
        total_cents=1000,
        status=status,
        request_id="k",
        created_at=T0,
        expires_at=T0 + timedelta(minutes=15),
    )


def test_paying_an_unpaid_order_records_the_charge_and_its_time() -> None:
    order = unpaid_order()

    paid = order.paid("ch_1", AT)

    assert paid.status is OrderStatus.PAID and paid.payment_ref == "ch_1"
    assert paid.paid_at == datetime.fromtimestamp(AT, UTC) and paid.closed_at is None
    assert order.status is OrderStatus.UNPAID  # pure: the original is untouched
    assert paid.event(AT) == ev.OrderPaid("o1", 7, "ann", 2, AT, payment_ref="ch_1", amount_cents=1000)


@pytest.mark.parametrize(
    ("move", "event"),
    [
        (lambda o: o.cancelled(AT), ev.OrderCancelled("o1", 7, "ann", 2, AT)),
        (lambda o: o.expired(AT), ev.OrderExpired("o1", 7, "ann", 2, AT)),
    ],
)
def test_closing_an_unpaid_order_stamps_closed_at_and_yields_its_event(
    move: Callable[[Order], Order], event: ev.Event
) -> None:
    closed = move(unpaid_order())

    assert closed.closed_at == datetime.fromtimestamp(AT, UTC) and closed.paid_at is None
    assert closed.event(AT) == event


def test_refunding_a_paid_order_keeps_its_charge_and_gives_the_amount_back() -> None:
    refunded = unpaid_order().paid("ch_1", AT).refunded(AT + 60)

    assert refunded.status is OrderStatus.REFUNDED and refunded.payment_ref == "ch_1"
    assert refunded.closed_at == datetime.fromtimestamp(AT + 60, UTC)
    assert refunded.event(AT + 60) == ev.OrderRefunded("o1", 7, "ann", 2, AT + 60, amount_cents=1000)


@pytest.mark.parametrize("status", list(OrderStatus))
@pytest.mark.parametrize("target", list(MOVES))
def test_a_forbidden_move_raises_the_code_the_state_machine_gives(
    status: OrderStatus, target: OrderStatus
) -> None:
    order = unpaid_order(status)
    error = order_transition_error(status, target)

    if error is None:
        assert MOVES[target](order, AT).status is target and order.can_become(target)
        return
    assert not order.can_become(target)
    with pytest.raises(FlashSaleError) as raised:
        MOVES[target](order, AT)
    assert raised.value.code is error
    if status is OrderStatus.EXPIRED:
        assert error is ErrorCode.ORDER_EXPIRED


def test_an_unpaid_order_has_no_transition_event() -> None:
    with pytest.raises(ValueError):
        unpaid_order().event(AT)


@given(st.lists(st.sampled_from(list(MOVES)), max_size=8))
def test_any_sequence_of_moves_follows_order_transitions(targets: list[OrderStatus]) -> None:
    order = unpaid_order()
    at = AT
    for target in targets:
        at += 1.0
        allowed = target in ORDER_TRANSITIONS[order.status]
        try:
            moved = MOVES[target](order, at)
        except FlashSaleError as exc:
            assert not allowed and exc.code is order_transition_error(order.status, target)
            continue
        assert allowed and moved.status is target
        assert moved.event(at).kind == EVENT_OF[target]
        assert (moved.id, moved.total_cents) == (order.id, order.total_cents)
        order = moved
    if order.status is not OrderStatus.UNPAID:
        assert (order.paid_at is not None) == (order.payment_ref is not None)


def test_a_window_is_due_from_the_instant_it_ends() -> None:
    assert not is_due(160.0, 159.999)
    assert is_due(160.0, 160.0)
    assert is_due(160.0, 160.001)


def test_an_order_reads_expired_exactly_when_its_hold_is_due() -> None:
    order = unpaid_order()
    hold = Hold("o1", 7, "ann", 2, "k", T0.timestamp(), order.expires_at.timestamp(), HoldState.HELD)
    for delta in (-0.001, 0.0, 0.001):
        now = order.expires_at + timedelta(seconds=delta)
        expired = order.effective_status(now) is OrderStatus.EXPIRED
        assert expired is hold.is_due(now.timestamp()) is (not hold.is_live(now.timestamp()))


def test_a_sold_hold_stays_live_and_a_closed_one_never_is() -> None:
    base = ("h", 1, "ann", 1, "k", 100.0, 160.0)
    assert Hold(*base, HoldState.SOLD).is_live(999.0)
    assert Hold(*base, HoldState.HELD).is_live(159.0) and not Hold(*base, HoldState.HELD).is_live(160.0)
    for state in (HoldState.RELEASED, HoldState.EXPIRED, HoldState.REFUNDED):
        assert not Hold(*base, state).is_live(100.0)
