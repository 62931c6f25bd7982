"""What every use case needs, wired once by `flashsale.bootstrap`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from flashsale.clock import Clock
from flashsale.domain.pricing import PriceStep
from flashsale.ledger.contract import Ledger
from flashsale.services.pricebook import PriceBook
from flashsale.store.repositories import from_epoch
from flashsale.store.uow import UnitOfWork


@dataclass
class Deps:
    sessions: sessionmaker[Session]
    ledger: Ledger
    clock: Clock
    prices: PriceBook
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
        """Commit the unit of work; its events reach the outbox (`order_events`) in the same transaction."""
        uow.commit()
