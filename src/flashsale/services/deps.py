"""What every use case needs, wired once by `flashsale.bootstrap`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from flashsale.domain.events import Event
from flashsale.domain.pricing import PriceStep
from flashsale.ledger.contract import Ledger
from flashsale.ledger.memory import Clock
from flashsale.services.pricebook import PriceBook
from flashsale.store.repositories import from_epoch
from flashsale.store.uow import UnitOfWork

Handler = Callable[[Event], None]


class EventBus:
    """In-process publish/subscribe for committed events (the outbox table is the durable copy)."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, kind: str, handler: Handler) -> None:
        """Call `handler` for every event of `kind` ("*" for all) after its transaction commits."""
        self._handlers[kind].append(handler)

    def publish(self, events: list[Event]) -> None:
        for event in events:
            for handler in (*self._handlers[event.kind], *self._handlers["*"]):
                handler(event)


@dataclass
class Deps:
    sessions: sessionmaker[Session]
    ledger: Ledger
    clock: Clock
    prices: PriceBook
    bus: EventBus = field(default_factory=EventBus)
    price_steps: tuple[PriceStep, ...] = ()
    catalog_listeners: list[Callable[[], None]] = field(default_factory=list)

    def catalog_changed(self, db: Session) -> None:
        """Tell the catalogue's read models (the shop window) of this transaction's edit once it commits.

        After the commit, not before: a reader that refreshed in between would keep the old
        catalogue as if it were the new one.
        """

        def notify(_: Session) -> None:
            for listener in self.catalog_listeners:
                listener()

        sa_event.listen(db, "after_commit", notify, once=True)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)

    def now(self) -> datetime:
        return from_epoch(self.clock())

    def commit(self, uow: UnitOfWork) -> None:
        """Commit and then publish: subscribers never see an event that was rolled back."""
        self.bus.publish(uow.commit())
