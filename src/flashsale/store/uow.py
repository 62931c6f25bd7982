"""Unit of work: one transaction that commits or rolls back whole, and the events it produced."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from flashsale.domain.events import Event
from flashsale.store.group_commit import GroupCommit
from flashsale.store.order_repository import OrderRepository, SqlOrderRepository
from flashsale.store.repositories import from_epoch, insert_events

AFTER_COMMIT = "flashsale.after_commit"  # Session.info key: callbacks to run once the commit is durable


class UnitOfWork:
    """`with UnitOfWork(factory) as uow: ...; uow.commit()` — anything not committed is rolled back.

    With a `group` (the embedded default's SQLite, see store/group_commit.py) the unit of work is
    a savepoint in a transaction shared with the units of work around it; `commit()` still returns
    only once its writes are durable.
    """

    def __init__(self, factory: sessionmaker[Session], group: GroupCommit | None = None) -> None:
        self._factory = factory
        self._group = group
        self.events: list[Event] = []
        self._open = False

    def __enter__(self) -> UnitOfWork:
        self.db = self._group.enter() if self._group is not None else self._factory()
        self.orders: OrderRepository = SqlOrderRepository(self.db)
        self.events = []
        self._open = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._open:
            self._end(committed=False)

    def record(self, event: Event) -> None:
        """Write the event to the outbox (`order_events`) with this transaction: the durable record of it."""
        self.events.append(event)

    def commit(self) -> list[Event]:
        """Commit the work and its outbox events; return once durable. The unit of work ends here."""
        if self.events:  # one statement for the whole outbox batch
            insert_events(self.db, [(e.order_id, e.kind, e.payload(), from_epoch(e.at)) for e in self.events])
        self.db.commit()
        callbacks: list[Callable[[], None]] = self.db.info.pop(AFTER_COMMIT, [])
        self._end(committed=True)
        for callback in callbacks:
            callback()
        done, self.events = self.events, []
        return done

    def _end(self, *, committed: bool) -> None:
        self._open = False
        try:
            if not committed:
                self.db.rollback()
            self.db.close()
        finally:
            durable = self._group.leave(committed) if self._group is not None else None
        if durable is not None:
            durable()


class ReadUnit:
    """A look at the store for reading only: `with deps.read() as r: r.orders.get(...)`."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def __enter__(self) -> ReadUnit:
        self.db = self._factory()
        self.orders: OrderRepository = SqlOrderRepository(self.db)
        return self

    def __exit__(self, *_: object) -> None:
        self.db.close()
