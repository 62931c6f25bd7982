"""Unit of work: one transaction that commits or rolls back whole, and the events it produced."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from flashsale.domain.events import Event
from flashsale.store.repositories import from_epoch
from flashsale.store.tables import EventRow


class UnitOfWork:
    """`with UnitOfWork(factory) as uow: ...; uow.commit()` — anything not committed is rolled back."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self.events: list[Event] = []

    def __enter__(self) -> UnitOfWork:
        self.db = self._factory()
        self.events = []
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.db.rollback()
        self.db.close()

    def record(self, event: Event) -> None:
        """Write the event to the outbox (`order_events`) with this transaction: the durable record of it."""
        self.events.append(event)

    def commit(self) -> list[Event]:
        if self.events:  # one executemany for the whole outbox batch
            rows = [
                {
                    "order_id": e.order_id,
                    "kind": e.kind,
                    "payload": e.payload(),
                    "created_at": from_epoch(e.at),
                }
                for e in self.events
            ]
            self.db.execute(insert(EventRow), rows)
        self.db.commit()
        done, self.events = self.events, []
        return done
