"""Composition root: builds the store, the ledger, the services and the jobs from Settings."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from flashsale.config import Settings
from flashsale.jobs.expiry import ExpirySweeper
from flashsale.ledger import Clock, Ledger, ledger_from_url
from flashsale.services.catalog import CatalogService
from flashsale.services.deps import Deps
from flashsale.services.orders import OrderService
from flashsale.services.payments import SandboxProvider
from flashsale.services.pricebook import PriceBook
from flashsale.store import db as store_db
from flashsale.store import repositories as repo
from flashsale.store.lease import Lease, acquire_ledger_lease


@dataclass
class Platform:
    settings: Settings
    engine: Engine
    deps: Deps
    catalog: CatalogService
    orders: OrderService
    lease: Lease | None = None
    sweeper: ExpirySweeper | None = None

    @property
    def ledger(self) -> Ledger:
        return self.deps.ledger

    def start_jobs(self) -> None:
        if self.sweeper is None:
            self.sweeper = ExpirySweeper(
                self.orders, self.ledger, max_sleep_s=self.settings.expiry_sweep_max_s
            )
            self.sweeper.start()

    def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
            self.sweeper = None
        if self.lease is not None:
            self.lease.release()
            self.lease = None
        close_ledger = getattr(self.ledger, "close", None)  # network engines hold a connection pool
        if close_ledger is not None:
            close_ledger()
        self.engine.dispose()


def rebuild_ledger(deps: Deps) -> None:
    """Load every item's terms and every order into the ledger: the store is the truth after a restart."""
    with deps.uow() as uow:
        deps.ledger.restore(repo.all_item_terms(uow.db), repo.all_holds(uow.db))


def build(settings: Settings | None = None, *, clock: Clock = time.time, migrate: bool = True) -> Platform:
    """Wire a platform; migrate the schema (creating the SQLite file on first run) and rebuild the ledger."""
    settings = (settings or Settings()).with_secrets()
    url = settings.resolved_database_url()
    if migrate:
        store_db.upgrade(url)
    engine = store_db.make_engine(url)
    # An in-process ledger must be the only one deciding for this database (see store/lease.py).
    try:
        lease = acquire_ledger_lease(engine) if settings.backend == "memory" else None
    except BaseException:
        engine.dispose()
        raise
    ledger = ledger_from_url(settings.redis_url if settings.backend == "redis" else "memory://", clock)
    sessions = sessionmaker(engine, expire_on_commit=False)
    deps = Deps(sessions=sessions, ledger=ledger, clock=clock, prices=PriceBook(sessions, clock))
    assert settings.payment_secret is not None
    orders = OrderService(deps, {"sandbox": SandboxProvider(settings.payment_secret)})
    platform = Platform(settings, engine, deps, CatalogService(deps), orders, lease=lease)
    try:
        rebuild_ledger(deps)
        orders.payments.recover()  # finish any charge or refund a crash interrupted
    except BaseException:
        platform.close()
        raise
    return platform
