"""Retention on the whole order path: forgotten holds and keys are answered from the store, never held again.

The ledger contract suite (tests/contract/test_ledger_retention.py) covers the engines; here the
buy path (`services/recall.py`), the refund path (`services/settlement.py`) and the retention pass
(`services/retention.py`) run on the two ends and on the Cluster: write-through (SQLite +
in-process) and write-behind (PostgreSQL + Redis).
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from flashsale.bootstrap import Platform, order_writer_for
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import HoldState
from flashsale.domain.orders import OrderStatus
from flashsale.ledger.redis import RedisLedger
from flashsale.services.audit import audit_payments
from flashsale.services.orders import Buy, Purchase
from flashsale.services.reconcile import Reconciler
from flashsale.services.settlement import PENDING, REFUND
from flashsale.store.tables import OrderRow
from tests.engines import POSTGRES_REDIS, POSTGRES_REDIS_CLUSTER, SQLITE, drain_orders
from tests.factories import open_sale, release_together
from tests.integration.api_support import open_api
from tests.integration.redis_support import unindex

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS, POSTGRES_REDIS_CLUSTER)

WINDOW_S = 86_400  # unpaid holds outlive the retention age, so the stock stays taken
KEEP_S = 3_600.0  # the retention age here (FLASHSALE_LEDGER_RETENTION_HOURS is a day by default)
SOLD_KEEP_S = 7_200.0  # the sold holds' (FLASHSALE_LEDGER_SOLD_RETENTION_HOURS is a week by default)


@pytest.fixture(autouse=True)
def hour_long_retention(platform: Platform) -> None:
    platform.retention.keep_s = KEEP_S
    platform.retention.sold_keep_s = SOLD_KEEP_S


def stored_orders(platform: Platform) -> dict[str, str]:
    """Every stored order's id -> status."""
    with platform.deps.read() as r:
        return {row.id: row.status for row in r.db.execute(select(OrderRow.id, OrderRow.status))}


def test_a_forgotten_key_replays_its_stored_order_and_holds_nothing(
    platform: Platform, clock: ManualClock
) -> None:
    item = open_sale(platform, quota=3, per_user_limit=1, payment_window_s=WINDOW_S, hours=72)
    clock.advance(1)
    first = platform.orders.buy(Buy("ann", item, 1, "k")).order
    platform.orders.cancel(first.id, "ann")
    others = [platform.orders.buy(Buy(u, item, 1, "k")).order.id for u in ("bob", "cat", "dan")]
    drain_orders(platform)
    clock.advance(KEEP_S + 1)
    kept = len(platform.ledger.holds(item))

    assert platform.retention.forget_finished().forgotten == 1

    assert len(platform.ledger.holds(item)) == kept - 1
    assert platform.ledger.get_hold(first.id) is None
    replay = platform.orders.buy(Buy("ann", item, 1, "k"))
    assert replay.replayed and replay.order.id == first.id
    assert replay.order.status is OrderStatus.CANCELLED  # not SOLD_OUT, and no second hold
    with pytest.raises(FlashSaleError) as mismatch:
        platform.orders.buy(Buy("ann", item, 2, "k"))
    assert mismatch.value.code is ErrorCode.IDEMPOTENCY_MISMATCH
    with pytest.raises(FlashSaleError) as sold_out:  # a key with no stored order is decided
        platform.orders.buy(Buy("ann", item, 1, "new"))
    assert sold_out.value.code is ErrorCode.SOLD_OUT
    level = platform.ledger.stock(item)
    assert level.conserved and (level.available, level.held, level.sold) == (0, 3, 0)
    drain_orders(platform)
    assert stored_orders(platform) == {
        first.id: OrderStatus.CANCELLED.value,
        **dict.fromkeys(others, OrderStatus.UNPAID.value),
    }


def test_a_forgotten_key_without_a_stored_order_is_granted_once(
    platform: Platform, clock: ManualClock
) -> None:
    item = open_sale(platform, quota=5, per_user_limit=2, payment_window_s=WINDOW_S, hours=72)
    clock.advance(1)
    platform.orders.cancel(platform.orders.buy(Buy("ann", item, 1, "old")).order.id, "ann")
    drain_orders(platform)
    clock.advance(KEEP_S + 1)
    platform.retention.forget_finished()

    answers = platform.orders.buy_many([Buy("ann", item, 1, "new"), Buy("ann", item, 1, "new")])

    first, double_click = answers
    assert isinstance(first, Purchase) and isinstance(double_click, Purchase)
    assert not first.replayed and double_click.replayed and double_click.order.id == first.order.id
    assert platform.ledger.stock(item).held == 1
    drain_orders(platform)
    assert stored_orders(platform)[first.order.id] == OrderStatus.UNPAID.value


@pytest.mark.engines(POSTGRES_REDIS)
def test_retention_stores_an_order_the_writer_has_not_written_before_forgetting_its_hold(
    platform: Platform, clock: ManualClock
) -> None:
    item = open_sale(platform, quota=5, per_user_limit=2, payment_window_s=WINDOW_S, hours=72)
    clock.advance(1)
    order = platform.orders.buy(Buy("ann", item, 1, "k")).order
    platform.ledger.release(order.id)  # released before the writer stored the grant
    clock.advance(KEEP_S + 1)

    done = platform.retention.forget_finished()

    assert (done.forgotten, done.written) == (1, 1)
    assert stored_orders(platform) == {order.id: OrderStatus.CANCELLED.value}
    order_writer_for(platform).drain()  # the stream's copy of the grant is a duplicate now
    assert stored_orders(platform) == {order.id: OrderStatus.CANCELLED.value}
    replay = platform.orders.buy(Buy("ann", item, 1, "k"))
    assert replay.replayed and replay.order.id == order.id


@pytest.mark.engines(SQLITE, POSTGRES_REDIS)
def test_a_crowd_buying_cancelling_and_retrying_while_retention_runs_never_holds_a_key_twice(
    platform: Platform, clock: ManualClock
) -> None:
    buyers, quota = 40, 60
    item = open_sale(platform, quota=quota, per_user_limit=2, payment_window_s=WINDOW_S, hours=72)
    clock.advance(1)
    platform.retention.keep_s = 0.0  # forget what finished before the clock's present
    gate = threading.Barrier(buyers + 1, timeout=60)
    done = threading.Event()
    answers: dict[str, list[Purchase]] = {}
    errors: list[BaseException] = []

    def shopper(user: str) -> None:
        try:
            gate.wait()
            cancelled = platform.orders.buy(Buy(user, item, 1, "first")).order
            platform.orders.cancel(cancelled.id, user)
            clock.advance(0.001)
            answers[user] = [
                platform.orders.buy(Buy(user, item, 1, "first")),  # replayed, by the ledger or the store
                platform.orders.buy(Buy(user, item, 1, "second")),
                platform.orders.buy(Buy(user, item, 1, "first")),
            ]
        except BaseException as exc:
            errors.append(exc)

    def retain() -> None:
        gate.wait()
        while not done.is_set():
            platform.retention.forget_finished()
            clock.advance(0.001)

    threads = [threading.Thread(target=shopper, args=(f"u{n}",)) for n in range(buyers)]
    keeper = threading.Thread(target=retain)
    for t in [*threads, keeper]:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    keeper.join(60)
    platform.retention.forget_finished()

    assert errors == []
    for user, (replay, second, replay_again) in answers.items():
        assert replay.replayed and replay_again.replayed, user
        assert replay.order.id == replay_again.order.id
        assert replay.order.status is OrderStatus.CANCELLED
        assert not second.replayed and second.order.status is OrderStatus.UNPAID
    level = platform.ledger.stock(item)
    assert level.conserved and (level.held, level.sold) == (buyers, 0)
    drain_orders(platform)
    with platform.deps.read() as r:
        count = r.db.scalar(select(func.count()).select_from(OrderRow))
    assert count == 2 * buyers  # one order per key, none dropped, none twice
    assert len(platform.ledger.holds(item)) == buyers  # every cancelled one was forgotten


@pytest.mark.engines(SQLITE, POSTGRES_REDIS)
def test_the_admin_trigger_forgets_and_a_retried_purchase_is_answered_as_a_replay(
    platform: Platform, clock: ManualClock
) -> None:
    item = open_sale(platform, quota=5, per_user_limit=2, payment_window_s=WINDOW_S, hours=72)
    clock.advance(1)
    with open_api(platform, clock) as api:
        placed = api.buy("ann", item, key="k")
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        cancelled = api.client.post(f"/orders/{order_id}/cancel", headers=api.shopper("ann"))
        assert cancelled.status_code == 200, cancelled.text
        drain_orders(platform)
        clock.advance(KEEP_S + 1)

        run = api.client.post("/admin/ledger/retention", headers=api.admin)
        retried = api.buy("ann", item, key="k")

    assert run.status_code == 200 and run.json() == {"forgotten": 1, "written": 0, "sold": 0}
    assert retried.status_code == 200 and retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["id"] == order_id and retried.json()["status"] == "CANCELLED"
    assert platform.ledger.stock(item).available == 5


def paid_order(platform: Platform, item: int, user: str, key: str) -> str:
    """A purchase, stored and paid; its order id."""
    order = platform.orders.buy(Buy(user, item, 1, key)).order
    drain_orders(platform)
    assert platform.orders.pay(order.id, user).status is OrderStatus.PAID
    return order.id


def test_a_paid_order_whose_hold_was_forgotten_replays_and_is_refunded_once(
    platform: Platform, clock: ManualClock
) -> None:
    item = open_sale(platform, quota=3, per_user_limit=2, payment_window_s=WINDOW_S, hours=72)
    clock.advance(1)
    order_id = paid_order(platform, item, "ann", "k")
    held = platform.orders.buy(Buy("ann", item, 1, "k2")).order  # ann's second unit, unpaid
    drain_orders(platform)
    clock.advance(KEEP_S + 1)
    assert platform.retention.forget_finished().sold == 0  # not old enough yet
    clock.advance(SOLD_KEEP_S)

    assert platform.retention.forget_finished().sold == 1

    assert platform.ledger.get_hold(order_id) is None
    level = platform.ledger.stock(item)
    assert level.conserved and (level.available, level.held, level.sold) == (1, 1, 1)
    assert Reconciler(platform.orders).run(repair=False).clean  # forgotten is not lost
    replay = platform.orders.buy(Buy("ann", item, 1, "k"))
    assert replay.replayed and replay.order.id == order_id and replay.order.status is OrderStatus.PAID
    with pytest.raises(FlashSaleError) as over:  # the forgotten unit still counts against the limit
        platform.orders.buy(Buy("ann", item, 1, "k3"))
    assert over.value.code is ErrorCode.LIMIT_EXCEEDED

    refunds = release_together([lambda: platform.orders.refund(order_id)] * 2)

    assert {(o.id, o.status) for o in refunds} == {(order_id, OrderStatus.REFUNDED)}
    assert platform.orders.refund(order_id).status is OrderStatus.REFUNDED  # a retry moves nothing
    level = platform.ledger.stock(item)
    assert level.conserved and (level.available, level.held, level.sold) == (2, 1, 0)
    assert platform.ledger.used_by(item, "ann") == 1
    assert audit_payments(platform.deps.sessions).clean  # the money went back once
    again = platform.orders.buy(Buy("ann", item, 1, "k3"))  # the unit is back in ann's quota
    assert not again.replayed and again.order.status is OrderStatus.UNPAID
    drain_orders(platform)
    assert Reconciler(platform.orders).run(repair=False).clean
    assert stored_orders(platform) == {
        order_id: OrderStatus.REFUNDED.value,
        held.id: OrderStatus.UNPAID.value,
        again.order.id: OrderStatus.UNPAID.value,
    }


def test_a_refund_the_store_has_not_recorded_yet_keeps_its_hold_until_it_has(
    platform: Platform, clock: ManualClock
) -> None:
    item = open_sale(platform, quota=3, per_user_limit=3, payment_window_s=WINDOW_S, hours=72)
    clock.advance(1)
    order_id = paid_order(platform, item, "ann", "k")
    kept_id = paid_order(platform, item, "ann", "k2")  # what a second move of the refund would take
    platform.ledger.refund(order_id)  # the ledger's step of a refund; the process died before the order's
    clock.advance(SOLD_KEEP_S + 1)

    done = platform.retention.forget_finished()

    assert (done.forgotten, done.sold) == (0, 1)  # ann's other paid one; the refunded one waits
    hold = platform.ledger.get_hold(order_id)
    assert hold is not None and hold.state is HoldState.REFUNDED
    assert platform.orders.refund(order_id).status is OrderStatus.REFUNDED  # carried out: no second move
    level = platform.ledger.stock(item)
    assert level.conserved and (level.available, level.held, level.sold) == (2, 0, 1)
    assert platform.ledger.used_by(item, "ann") == 1
    assert platform.retention.forget_finished().forgotten == 1  # the store agrees now
    drain_orders(platform)
    assert stored_orders(platform) == {order_id: OrderStatus.REFUNDED.value, kept_id: OrderStatus.PAID.value}


@pytest.mark.engines(POSTGRES_REDIS, POSTGRES_REDIS_CLUSTER)
def test_the_pass_indexes_what_an_older_deploy_left_and_forgets_it_a_period_later(
    platform: Platform, clock: ManualClock
) -> None:
    item = open_sale(platform, quota=5, per_user_limit=2, payment_window_s=WINDOW_S, hours=72)
    clock.advance(1)
    cancelled = platform.orders.buy(Buy("ann", item, 1, "old")).order
    platform.orders.cancel(cancelled.id, "ann")
    paid_id = paid_order(platform, item, "bob", "old")
    drain_orders(platform)
    assert isinstance(platform.ledger, RedisLedger)
    unindex(platform.ledger)  # as the deploy before the indexes left its holds
    clock.advance(SOLD_KEEP_S + 1)

    first = platform.retention.forget_finished()  # indexes them: retained from now
    clock.advance(SOLD_KEEP_S + 1)
    second = platform.retention.forget_finished()

    assert (first.forgotten, first.sold) == (0, 0) and (second.forgotten, second.sold) == (1, 1)
    assert platform.ledger.holds(item) == []
    level = platform.ledger.stock(item)
    assert level.conserved and (level.available, level.held, level.sold) == (4, 0, 1)
    for user, order_id in (("ann", cancelled.id), ("bob", paid_id)):
        replay = platform.orders.buy(Buy(user, item, 1, "old"))
        assert replay.replayed and replay.order.id == order_id


def test_a_refund_decided_before_a_crash_is_carried_out_once_after_its_hold_was_forgotten(
    platform: Platform, clock: ManualClock
) -> None:
    item = open_sale(platform, quota=3, per_user_limit=2, payment_window_s=WINDOW_S, hours=72)
    clock.advance(1)
    order_id = paid_order(platform, item, "ann", "k")
    other_id = paid_order(platform, item, "ann", "k2")  # what a second move of the refund would take
    paid = platform.orders.get(order_id)
    assert paid.payment_ref is not None
    desk = platform.orders.payments
    with platform.deps.uow() as uow:  # journaled, then the process died before the ledger heard of it
        desk._journal(uow.db, order_id, "sandbox", paid.payment_ref, paid.total_cents, REFUND, PENDING)
        uow.commit()
    clock.advance(SOLD_KEEP_S + 1)
    assert platform.retention.forget_finished().sold == 2  # the store says paid, the ledger sold

    desk.recover()
    desk.recover()  # a second recovery (another process) finds nothing left to do

    assert platform.orders.get(order_id).status is OrderStatus.REFUNDED
    level = platform.ledger.stock(item)
    assert level.conserved and (level.available, level.held, level.sold) == (2, 0, 1)
    assert platform.ledger.used_by(item, "ann") == 1
    assert audit_payments(platform.deps.sessions).clean
    assert platform.orders.get(other_id).status is OrderStatus.PAID


@pytest.mark.engines(SQLITE, POSTGRES_REDIS)
def test_a_crowd_paying_and_refunding_while_retention_forgets_sold_holds_moves_each_unit_once(
    platform: Platform, clock: ManualClock
) -> None:
    buyers, quota, limit = 20, 45, 2
    item = open_sale(platform, quota=quota, per_user_limit=limit, payment_window_s=WINDOW_S, hours=72)
    clock.advance(1)
    platform.retention.keep_s = platform.retention.sold_keep_s = 0.0  # forget all it may at once
    users = [f"u{n}" for n in range(buyers)]
    gate = threading.Barrier(buyers + 2, timeout=60)
    done = threading.Event()
    kept: dict[str, str] = {}
    errors: list[BaseException] = []

    def shopper(user: str) -> None:
        try:
            gate.wait()
            refunded = platform.orders.buy(Buy(user, item, 1, "first")).order.id
            platform.orders.pay(refunded, user)
            kept[user] = platform.orders.buy(Buy(user, item, 1, "second")).order.id
            platform.orders.pay(kept[user], user)
            clock.advance(0.001)
            for _ in range(2):  # the second is a retry: the hold may be forgotten by now
                assert platform.orders.refund(refunded).status is OrderStatus.REFUNDED
            replay = platform.orders.buy(Buy(user, item, 1, "first"))
            assert replay.replayed and replay.order.id == refunded
        except BaseException as exc:
            errors.append(exc)

    def retain() -> None:
        try:
            gate.wait()
            while not done.is_set():
                platform.retention.forget_finished()
                clock.advance(0.001)
        except BaseException as exc:
            errors.append(exc)

    def watch() -> None:  # conservation and limits at every moment it looks
        try:
            gate.wait()
            while not done.is_set():
                assert platform.ledger.stock(item).conserved
                assert all(platform.ledger.used_by(item, u) <= limit for u in users)
        except BaseException as exc:
            errors.append(exc)

    shoppers = [threading.Thread(target=shopper, args=(u,)) for u in users]
    others = [threading.Thread(target=retain), threading.Thread(target=watch)]
    for t in [*shoppers, *others]:
        t.start()
    for t in shoppers:
        t.join(120)
    done.set()
    for t in others:
        t.join(60)
    drain_orders(platform)
    clock.advance(1)
    platform.retention.forget_finished()

    assert errors == []
    level = platform.ledger.stock(item)
    assert level.conserved and (level.available, level.held, level.sold) == (quota - buyers, 0, buyers)
    assert all(platform.ledger.used_by(item, u) == 1 for u in users)
    assert platform.ledger.holds(item) == []  # every paid and refunded one forgotten at last
    statuses = stored_orders(platform)
    assert sorted(statuses[kept[u]] for u in users) == [OrderStatus.PAID.value] * buyers
    assert sorted(statuses.values()).count(OrderStatus.REFUNDED.value) == buyers
    assert audit_payments(platform.deps.sessions).clean
