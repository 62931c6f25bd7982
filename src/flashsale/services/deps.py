"""What every use case needs, wired once by `flashsale.bootstrap`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from flashsale.clock import Clock
from flashsale.domain.pricing import PriceStep
from flashsale.ledger.contract import Ledger
from flashsale.services.pricebook import PriceBook
from flashsale.store.group_commit import GroupCommit
from flashsale.store.repositories import from_epoch
from flashsale.store.uow import AFTER_COMMIT, ReadUnit, UnitOfWork


@dataclass
class Deps:
    sessions: sessionmaker[Session]
    ledger: Ledger
    clock: Clock
    prices: PriceBook
    price_steps: tuple[PriceStep, ...] = ()
    catalog_listeners: list[Callable[[], None]] = field(default_factory=list)
    # Sessions for reads that must not take the store's write lock (`sessions` where reads never do).
    reads: sessionmaker[Session] | None = None
    # Where the store admits one writer (SQLite): units of work take turns and share commits.
    group: GroupCommit | None = None

    def catalog_changed(self, db: Session) -> None:
        """Tell the catalogue's read models (the shop window) of this unit of work's edit once it is durable.

        After the commit, not before: a reader that refreshed in between would keep the old
        catalogue as if it were the new one. `db` is the session of a `UnitOfWork`.
        """

        def notify() -> None:
            for listener in self.catalog_listeners:
                listener()

        db.info.setdefault(AFTER_COMMIT, []).append(notify)

    def uow(self) -> UnitOfWork:
        """A unit of work: the one way to change the store."""
        return UnitOfWork(self.sessions, self.group)

    def read(self) -> ReadUnit:
        """A look at the store for reading only: it sees the last commit and never waits for a writer."""
        return ReadUnit(self.reads or self.sessions)

    def now(self) -> datetime:
        return from_epoch(self.clock())

    def commit(self, uow: UnitOfWork) -> None:
        """Commit the unit of work; its events reach the outbox (`order_events`) in the same transaction."""
        uow.commit()
