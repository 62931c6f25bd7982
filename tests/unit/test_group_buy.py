"""Group-buy rules: which seat a join takes, when a group is filled, when a failed group is done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.group_buy import (
    MAX_GROUP_SIZE,
    Group,
    GroupDeal,
    GroupStatus,
    Seat,
    free_seat,
    group_id_of,
    seat_key,
)
from flashsale.domain.orders import OrderStatus

OPENED = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
DEADLINE = OPENED + timedelta(minutes=30)


def group(size: int, status: GroupStatus = GroupStatus.OPEN) -> Group:
    return Group("gb_1", 1, 7, size, 100, "lea", status, OPENED, DEADLINE, 0)


@given(st.integers(1, 30).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(1, n)))))
def test_a_join_takes_the_lowest_free_seat_and_none_when_all_are_taken(case: tuple[int, set[int]]) -> None:
    size, taken = case
    seat = free_seat(sorted(taken), size)
    if len(taken) == size:
        assert seat is None
    else:
        assert seat is not None and 1 <= seat <= size and seat not in taken
        assert all(n in taken for n in range(1, seat))


paid_at = st.one_of(st.none(), st.integers(-60, 60).map(lambda m: DEADLINE + timedelta(minutes=m)))
statuses = st.sampled_from([*OrderStatus, None])


@given(st.lists(st.tuples(statuses, paid_at), max_size=6), st.integers(1, 6))
def test_a_group_is_filled_exactly_when_every_seat_paid_by_the_deadline(
    seats: list[tuple[OrderStatus | None, datetime | None]], size: int
) -> None:
    taken = [Seat(n + 1, f"u{n}", "c", status, at) for n, (status, at) in enumerate(seats)]
    in_time = [s for s in taken if s.order_status is OrderStatus.PAID and s.paid_at and s.paid_at <= DEADLINE]
    assert group(size).filled_by(taken) == (len(in_time) == size)


def test_a_failed_group_is_done_when_no_order_holds_a_unit_or_money() -> None:
    ended = [Seat(1, "a", "c", OrderStatus.REFUNDED), Seat(2, "b", "c", OrderStatus.CANCELLED)]
    assert group(3, GroupStatus.FAILING).settled_by(ended)
    assert not group(3, GroupStatus.FAILING).settled_by([*ended, Seat(3, "c", "c", OrderStatus.PAID)])
    assert not group(3, GroupStatus.FAILING).settled_by([*ended, Seat(3, "c", "c", None)])  # not placed yet


def test_a_join_is_refused_full_while_open_and_closed_after() -> None:
    assert group(2).refusal(OPENED) is ErrorCode.GROUP_FULL
    assert group(2).refusal(DEADLINE) is ErrorCode.GROUP_CLOSED
    assert group(2, GroupStatus.FILLED).refusal(OPENED) is ErrorCode.GROUP_CLOSED


@pytest.mark.parametrize(
    "size,price,window", [(1, 0, 60), (MAX_GROUP_SIZE + 1, 0, 60), (2, -1, 60), (2, 0, 0)]
)
def test_deal_terms_no_group_could_run_on_are_refused(size: int, price: int, window: int) -> None:
    with pytest.raises(FlashSaleError) as refused:
        GroupDeal.check(size, price, window)
    assert refused.value.code is ErrorCode.VALIDATION_ERROR


def test_keys_name_the_same_group_and_each_taking_of_a_seat_apart() -> None:
    assert group_id_of("lea", "k") == group_id_of("lea", "k") != group_id_of("ben", "k")
    assert seat_key("gb_1", 2, "a") != seat_key("gb_1", 2, "b")
