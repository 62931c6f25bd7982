"""What every use case needs, wired once by `flashsale.bootstrap`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

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

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)

    def now(self) -> datetime:
        return from_epoch(self.clock())

    def commit(self, uow: UnitOfWork) -> None:
        """Commit and then publish: subscribers never see an event that was rolled back."""
        self.bus.publish(uow.commit())
