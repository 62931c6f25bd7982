"""The order service on a fake unit of work: the order path's rules without a database.

The ledger is the in-process engine (pure, no I/O); the store is tests/fakes.py's. These tests say
what each use case writes (orders, outbox events, commits) and what it leaves when a write fails.
"""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from flashsale.clock import ManualClock
from flashsale.domain.catalog import Product
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import Order, OrderStatus
from flashsale.domain.sale import FlashItem, ItemTerms
from flashsale.ledger.memory import MemoryLedger
from flashsale.services.checkout import Checkout
from flashsale.services.orders import Buy, Cancel, OrderService, Purchase
from tests.fakes import FakeDeps, FakePrices

T0 = 1_800_000_000.0
ITEM, QUOTA, LIMIT, PRICE, WINDOW_S = 7, 5, 2, 1_999, 900.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def deps(clock: ManualClock) -> FakeDeps:
    ledger = MemoryLedger(clock)
    ledger.configure(ItemTerms(ITEM, QUOTA, LIMIT, T0 - 1, T0 + 3_600, WINDOW_S))
    item = FlashItem(ITEM, 1, 1, PRICE, QUOTA, LIMIT, coupons_allowed=False)
    return FakeDeps(ledger, clock, FakePrices({ITEM: (item, Product(1, "SKU", "Phone", 2_999, 100))}))


@pytest.fixture
def orders(deps: FakeDeps) -> OrderService:
    return OrderService(deps, {})


def test_a_purchase_records_its_priced_order_and_its_event_in_one_commit(
    orders: OrderService, deps: FakeDeps
) -> None:
    purchase = orders.buy(Buy("ann", ITEM, 2, "k1"))
    assert not purchase.replayed
    assert purchase.order.status is OrderStatus.UNPAID
    assert purchase.order.total_cents == 2 * PRICE
    assert deps.store.orders == {purchase.order.id: purchase.order}
    assert [e.kind for e in deps.store.events] == ["HoldPlaced"]
    assert deps.store.commits == 1


def test_a_batch_is_one_commit_and_each_purchase_gets_its_own_answer(
    orders: OrderService, deps: FakeDeps
) -> None:
    answers = orders.buy_many(
        [
            Buy("ann", ITEM, 2, "a"),
            Buy("ann", ITEM, 2, "a"),  # the double-click: the same order, as a replay
            Buy("bob", ITEM, 3, "b"),  # over bob's limit
            Buy("cat", ITEM, 2, "c"),
            Buy("dan", ITEM, 2, "d"),  # only one unit is left
        ]
    )
    first, replay, over_limit, cat, short = answers
    assert isinstance(first, Purchase) and isinstance(replay, Purchase) and isinstance(cat, Purchase)
    assert replay.replayed and replay.order.id == first.order.id
    assert isinstance(over_limit, FlashSaleError) and over_limit.code is ErrorCode.LIMIT_EXCEEDED
    assert isinstance(short, FlashSaleError) and short.code is ErrorCode.INSUFFICIENT_STOCK
    assert set(deps.store.orders) == {first.order.id, cat.order.id}
    assert deps.store.commits == 1  # group commit: the batch's new orders together


def test_a_failed_commit_gives_every_unit_back_and_stores_nothing(
    orders: OrderService, deps: FakeDeps
) -> None:
    deps.store.fail_commits = True
    answers = orders.buy_many([Buy("ann", ITEM, 2, "a"), Buy("bob", ITEM, 2, "b")])
    assert all(isinstance(a, OSError) for a in answers)
    assert deps.store.orders == {} and deps.store.events == []
    level = deps.ledger.stock(ITEM)
    assert (level.available, level.held, level.sold) == (QUOTA, 0, 0)  # no undersell
    deps.store.fail_commits = False
    # Nobody was told of the failed grant, so the ledger forgot its key: the retry is decided afresh.
    retry = orders.buy(Buy("ann", ITEM, 2, "a"))
    assert not retry.replayed and retry.order.status is OrderStatus.UNPAID
    assert deps.store.orders == {retry.order.id: retry.order}
    assert deps.ledger.stock(ITEM).available == QUOTA - 2
    assert deps.ledger.holds(ITEM) == [deps.ledger.get_hold(retry.order.id)]  # the failed one is gone


def test_cancel_moves_the_order_once_and_gives_the_units_back(orders: OrderService, deps: FakeDeps) -> None:
    placed = orders.buy(Buy("ann", ITEM, 2, "k")).order
    cancelled = orders.cancel(placed.id, "ann")
    again = orders.cancel(placed.id, "ann")
    assert cancelled.status is again.status is OrderStatus.CANCELLED
    assert [e.kind for e in deps.store.events] == ["HoldPlaced", "OrderCancelled"]
    assert deps.ledger.stock(ITEM).available == QUOTA


def test_a_batch_of_cancels_is_one_commit_and_each_order_moves_once(
    orders: OrderService, deps: FakeDeps
) -> None:
    ann = orders.buy(Buy("ann", ITEM, 2, "a")).order
    bob = orders.buy(Buy("bob", ITEM, 1, "b")).order
    commits = deps.store.commits
    answers = orders.cancel_many(
        [Cancel(ann.id, "ann"), Cancel(ann.id, "ann"), Cancel(bob.id, "mallory"), Cancel(bob.id, "bob")]
    )
    assert [a.status if isinstance(a, Order) else a.code for a in answers] == [  # type: ignore[union-attr]
        OrderStatus.CANCELLED,
        OrderStatus.CANCELLED,
        ErrorCode.ORDER_NOT_FOUND,
        OrderStatus.CANCELLED,
    ]
    assert deps.store.commits == commits + 1
    assert [e.kind for e in deps.store.events].count("OrderCancelled") == 2
    assert deps.ledger.stock(ITEM).available == QUOTA


def test_a_failed_commit_of_a_cancel_batch_refuses_each_request(orders: OrderService, deps: FakeDeps) -> None:
    placed = orders.buy(Buy("ann", ITEM, 1, "a")).order
    deps.store.fail_commits = True
    (answer,) = orders.cancel_many([Cancel(placed.id, "ann")])
    assert isinstance(answer, Exception) and not isinstance(answer, FlashSaleError)
    assert [e.kind for e in deps.store.events] == ["HoldPlaced"]


def test_someone_elses_order_is_not_found(orders: OrderService) -> None:
    placed = orders.buy(Buy("ann", ITEM, 1, "k")).order
    with pytest.raises(FlashSaleError) as refused:
        orders.cancel(placed.id, "mallory")
    assert refused.value.code is ErrorCode.ORDER_NOT_FOUND


def test_expiry_writes_each_due_order_once(orders: OrderService, deps: FakeDeps, clock: ManualClock) -> None:
    due = orders.buy(Buy("ann", ITEM, 1, "early")).order
    clock.advance(WINDOW_S / 2)
    later = orders.buy(Buy("bob", ITEM, 1, "late")).order
    clock.advance(WINDOW_S / 2)
    assert orders.get(due.id).status is OrderStatus.EXPIRED  # reported as it is, before any sweep
    assert orders.expire_due() == 1
    assert orders.expire_due() == 0
    assert deps.store.orders[due.id].status is OrderStatus.EXPIRED
    assert deps.store.orders[later.id].status is OrderStatus.UNPAID
    assert [e.kind for e in deps.store.events].count("OrderExpired") == 1
    assert deps.ledger.stock(ITEM).available == QUOTA - 1


def test_a_shoppers_orders_are_listed_newest_first(orders: OrderService, clock: ManualClock) -> None:
    first = orders.buy(Buy("ann", ITEM, 1, "1")).order
    clock.advance(1)
    second = orders.buy(Buy("ann", ITEM, 1, "2")).order
    assert [o.id for o in orders.list_for_user("ann")] == [second.id, first.id]
    assert orders.list_for_user("bob") == []


def test_a_key_the_ledger_lost_keeps_answering_its_stored_order_on_every_retry(
    orders: OrderService, deps: FakeDeps
) -> None:
    stored = orders.buy(Buy("ann", ITEM, 1, "k")).order
    # The ledger lost the key (rebuilt from less than the store holds), the store kept it.
    deps.ledger.restore([ItemTerms(ITEM, QUOTA, LIMIT, T0 - 1, T0 + 3_600, WINDOW_S)], [])

    first, second = orders.buy(Buy("ann", ITEM, 1, "k")), orders.buy(Buy("ann", ITEM, 1, "k"))

    assert first.replayed and second.replayed
    assert first.order.id == second.order.id == stored.id
    assert deps.ledger.stock(ITEM).available == QUOTA  # the fresh grants went back
    assert deps.ledger.holds(ITEM) == []


def test_a_batch_returns_its_refusals_unraised(orders: OrderService) -> None:
    # Raised and caught, a refusal's traceback would hold the batch's frame, whose answers hold the
    # refusal: a reference cycle per refused batch that kept the whole batch (commands, holds,
    # orders) for the cyclic collector, whose pauses were tens of milliseconds on a serving worker.
    answers = orders.buy_many([Buy(f"u{n}", ITEM, 1, f"k{n}") for n in range(2 * QUOTA)])
    refusals = [a for a in answers if isinstance(a, FlashSaleError)]
    assert [a.code for a in refusals] == [ErrorCode.SOLD_OUT] * QUOTA
    assert [a.__traceback__ for a in refusals] == [None] * QUOTA


async def test_a_refusal_raised_to_its_caller_is_freed_without_the_cyclic_collector(
    orders: OrderService, deps: FakeDeps
) -> None:
    checkout = Checkout(orders)
    deps.ledger.configure(ItemTerms(ITEM, 0, LIMIT, T0 - 1, T0 + 3_600, WINDOW_S))  # nothing to sell
    gc.collect()
    gc.disable()  # what a cycle holds stays alive from here on
    try:
        try:
            await checkout.buy(Buy("ann", ITEM, 1, "k"))
        except FlashSaleError as exc:
            assert exc.code is ErrorCode.SOLD_OUT
            refusal = weakref.ref(exc)
        for _ in range(10):  # the batch's task ends a few turns of the loop after its answers
            await asyncio.sleep(0)
        assert refusal() is None  # freed by its last reference, not left in a cycle with the waiter
    finally:
        gc.enable()
