"""Storing order transitions: one compare-and-set, so of two racing moves exactly one is written."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.orders import Order, OrderStatus
from flashsale.services.orders import Buy
from flashsale.store import repositories as repo
from flashsale.store.tables import EventRow, OrderRow
from tests.engines import IN_PROCESS
from tests.factories import open_sale, release_together

# The store is what is under test: both databases, with the ledger that writes orders through.
pytestmark = pytest.mark.engines(*IN_PROCESS)
WINDOW_S = 60


def placed(platform: Platform, users: int = 1) -> list[Order]:
    item_id = open_sale(platform, quota=users, per_user_limit=1, payment_window_s=WINDOW_S)
    return [platform.orders.buy(Buy(f"u{n}", item_id, 1, "k")).order for n in range(users)]


def stored(platform: Platform, order_id: str) -> Order:
    with platform.deps.uow() as uow:
        row = uow.db.get(OrderRow, order_id)
        assert row is not None
        return repo.order_of(row)


def save(platform: Platform, before: Order, after: Order) -> bool:
    with platform.deps.uow() as uow:
        changed = repo.save_transition(uow.db, before, after)
        uow.commit()
        return changed


def events(platform: Platform) -> Counter[tuple[str, str]]:
    with platform.deps.uow() as uow:
        return Counter((e.order_id, e.kind) for e in uow.db.execute(select(EventRow.order_id, EventRow.kind)))


def test_of_two_racing_moves_from_one_status_exactly_one_is_stored(platform: Platform) -> None:
    (unpaid,) = placed(platform)
    at = unpaid.created_at.timestamp() + 1
    moves = [unpaid.paid("ch_1", at), unpaid.cancelled(at), unpaid.expired(at), unpaid.paid("ch_2", at)]

    won = release_together([lambda after=after: (save(platform, unpaid, after), after) for after in moves])

    winners = [after for changed, after in won if changed]
    assert len(winners) == 1
    assert stored(platform, unpaid.id) == winners[0]


def test_a_move_from_a_status_the_order_has_left_changes_nothing(platform: Platform) -> None:
    (unpaid,) = placed(platform)
    at = unpaid.created_at.timestamp() + 1
    paid = unpaid.paid("ch_1", at)
    assert save(platform, unpaid, paid)

    assert not save(platform, unpaid, unpaid.cancelled(at + 1))
    assert stored(platform, unpaid.id) == paid
    refunded = paid.refunded(at + 2)
    assert save(platform, paid, refunded) and stored(platform, unpaid.id) == refunded


def test_racing_cancels_of_one_order_record_one_cancellation(platform: Platform) -> None:
    (order,) = placed(platform)

    answers = release_together([lambda: platform.orders.cancel(order.id, order.user_id)] * 4)

    assert {a.status for a in answers} == {OrderStatus.CANCELLED}
    assert events(platform)[(order.id, "OrderCancelled")] == 1


def test_racing_sweeps_write_each_expiry_once(platform: Platform, clock: ManualClock) -> None:
    orders = placed(platform, users=20)
    clock.advance(WINDOW_S)  # the instant the window ends: due

    written = release_together([platform.orders.expire_due] * 4)

    assert sum(written) == len(orders)
    seen = events(platform)
    assert all(seen[(o.id, "OrderExpired")] == 1 for o in orders)
    assert {stored(platform, o.id).status for o in orders} == {OrderStatus.EXPIRED}
