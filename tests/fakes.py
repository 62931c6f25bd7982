"""Fakes for the service tier's unit tests: a store in memory behind the same ports as the real one.

`FakeDeps` wires `OrderService` to the in-process ledger (pure, no I/O), a fixed price list and a
`FakeStore` whose units of work stage their writes and publish them only on commit, so a test can
see what a use case wrote, in which events, and that a failed one wrote nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any

from flashsale.clock import ManualClock
from flashsale.domain.catalog import Product
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.events import Event
from flashsale.domain.orders import Order, OrderStatus
from flashsale.domain.sale import FlashItem
from flashsale.ledger.memory import MemoryLedger
from flashsale.services.deps import Deps


class FakeOrderRepository:
    """`OrderRepository` (store/order_repository.py) on a dict, with the SQL one's semantics."""

    def __init__(self, rows: dict[str, Order]) -> None:
        self.rows = rows

    def get(self, order_id: str) -> Order | None:
        return self.rows.get(order_id)

    def get_many(self, order_ids: Iterable[str]) -> dict[str, Order]:
        return {i: self.rows[i] for i in order_ids if i in self.rows}

    def by_key(self, user_id: str, request_id: str) -> Order | None:
        key = (user_id, request_id)
        return next((o for o in self.rows.values() if (o.user_id, o.request_id) == key), None)

    def add_new(self, orders: Sequence[Order]) -> set[str]:
        new: set[str] = set()
        for order in orders:
            if order.id in self.rows or self.by_key(order.user_id, order.request_id) is not None:
                continue  # the unique id and the unique (user, request id), as in the table
            self.rows[order.id] = order
            new.add(order.id)
        return new

    def save_transition(self, before: Order, after: Order) -> bool:
        stored = self.rows.get(before.id)
        if stored is None or stored.status is not before.status:
            return False
        self.rows[before.id] = replace(
            stored,
            status=after.status,
            paid_at=after.paid_at,
            closed_at=after.closed_at,
            payment_ref=after.payment_ref,
        )
        return True

    def mark_paid(self, paid: Sequence[Order]) -> dict[str, Order]:
        for order in paid:
            if order.id in self.rows and self.rows[order.id].status is OrderStatus.UNPAID:
                self.save_transition(self.rows[order.id], order)
        return {o.id: self.rows[o.id] for o in paid if o.id in self.rows}

    def for_user(self, user_id: str, *, limit: int, offset: int) -> list[Order]:
        mine = sorted((o for o in self.rows.values() if o.user_id == user_id), key=lambda o: o.id)
        mine.sort(key=lambda o: o.created_at, reverse=True)
        return mine[offset : offset + limit]

    def unpaid_due(self, now: datetime, limit: int) -> list[Order]:
        due = [o for o in self.rows.values() if o.status is OrderStatus.UNPAID and o.expires_at <= now]
        return due[:limit]

    def stored_ids(self, order_ids: Iterable[str]) -> set[str]:
        return {i for i in order_ids if i in self.rows}


@dataclass
class FakeStore:
    """What was committed: orders, outbox events, and how many commits it took."""

    orders: dict[str, Order] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    commits: int = 0
    fail_commits: bool = False  # the disk is gone: every commit raises, nothing is published


class FakeUnitOfWork:
    """A unit of work on a copy of the store, published whole on commit, dropped otherwise."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store
        self.events: list[Event] = []

    def __enter__(self) -> FakeUnitOfWork:
        self.orders = FakeOrderRepository(dict(self._store.orders))
        self.events = []
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.events = []

    def record(self, event: Event) -> None:
        self.events.append(event)

    def commit(self) -> list[Event]:
        if self._store.fail_commits:
            raise OSError("the store refused the commit")
        self._store.orders = self.orders.rows
        self._store.events.extend(self.events)
        self._store.commits += 1
        done, self.events = self.events, []
        return done


class FakeReadUnit:
    """A read-only look at what was committed."""

    def __init__(self, store: FakeStore) -> None:
        self.orders = FakeOrderRepository(store.orders)

    def __enter__(self) -> FakeReadUnit:
        return self

    def __exit__(self, *_: Any) -> None:
        return None


class FakePrices:
    """The price book's port: a fixed list of flash items and their products."""

    def __init__(self, entries: dict[int, tuple[FlashItem, Product]]) -> None:
        self.entries = entries

    def get(self, item_id: int) -> tuple[FlashItem, Product]:
        try:
            return self.entries[item_id]
        except KeyError:
            raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {item_id}") from None

    def invalidate(self) -> None:
        return None


class FakeDeps(Deps):
    """`Deps` whose units of work and reads go to a `FakeStore`."""

    def __init__(self, ledger: MemoryLedger, clock: ManualClock, prices: FakePrices) -> None:
        super().__init__(sessions=None, ledger=ledger, clock=clock, prices=prices)  # type: ignore[arg-type]
        self.store = FakeStore()

    def uow(self) -> FakeUnitOfWork:  # type: ignore[override]
        return FakeUnitOfWork(self.store)

    def read(self) -> FakeReadUnit:  # type: ignore[override]
        return FakeReadUnit(self.store)
