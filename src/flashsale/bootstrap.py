"""Composition root: builds the store, the ledger, the services and the jobs from Settings."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from flashsale.clock import Clock
from flashsale.config import Settings
from flashsale.coupons import coupon_ledger_from_url
from flashsale.domain.referral import RewardTerms
from flashsale.draws import draw_ledger_from_url
from flashsale.jobs.draw_scheduler import draw_scheduler
from flashsale.jobs.expiry import ExpirySweeper
from flashsale.jobs.order_writer import OrderWriter
from flashsale.jobs.periodic import PeriodicJob
from flashsale.jobs.retention import retention_job
from flashsale.ledger import Ledger, ledger_from_url
from flashsale.messaging.dispatch import Dispatcher
from flashsale.messaging.service import MessagingAdmin
from flashsale.messaging.wiring import dispatcher_for, policy_from
from flashsale.services.admission_gate import AdmissionState, admission_state
from flashsale.services.cart import CartService
from flashsale.services.catalog import CatalogService
from flashsale.services.catalog_views import CatalogViews
from flashsale.services.checkout_coupons import CheckoutCoupons
from flashsale.services.coupons import CouponService, load_coupon_ledger
from flashsale.services.deps import Deps
from flashsale.services.draw_grants import PaidOrderGrants
from flashsale.services.draw_schedule import DrawSchedule
from flashsale.services.draws import DrawService
from flashsale.services.fence import sync_shared_ledger
from flashsale.services.free_orders import FreeOrders
from flashsale.services.group_buy import GroupBuyService
from flashsale.services.order_search import OrderSearch
from flashsale.services.orders import OrderService
from flashsale.services.payments import SandboxProvider
from flashsale.services.pricebook import PriceBook
from flashsale.services.prize_orders import PrizeOrders
from flashsale.services.reconcile import repair_lost_writes
from flashsale.services.referral import ReferralService
from flashsale.services.retention import HOUR_S, Retention
from flashsale.services.sale_tokens import sale_token_key
from flashsale.services.showcase import Showcase
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
    showcase: Showcase  # what the public reads (GET /sessions) are answered from
    read_engine: Engine  # reads that must not take SQLite's write lock; `engine` elsewhere
    coupons: CouponService
    admission: AdmissionState  # terms, sale tokens, waiting rooms, hoarders (services/admission_gate.py)
    lease: Lease | None = None
    sweeper: ExpirySweeper | None = None
    writer: OrderWriter | None = None
    draw_scheduler: PeriodicJob | None = None
    retention_job: PeriodicJob | None = None
    _draws: DrawService | None = field(default=None, repr=False)
    _draws_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    messenger: threading.Thread | None = None  # the message sender, when messaging_in_serve
    _stop_messenger: threading.Event = field(default_factory=threading.Event)

    @property
    def ledger(self) -> Ledger:
        return self.deps.ledger

    @cached_property
    def catalog_views(self) -> CatalogViews:
        """Operators' reads of the catalogue (the write side is `catalog`)."""
        return CatalogViews(self.deps)

    @property
    def draws(self) -> DrawService:
        """Prize pools and draws, on the draw ledger of the stock ledger's engine (built on first use).

        The in-process draw ledger is rebuilt from the store then, as the stock ledger is in `build`
        (a Redis one only gets the pools it lost); under a lock, since two first requests at once
        must not build two in-process ledgers.
        """
        with self._draws_lock:
            if self._draws is None:
                service = DrawService(
                    self.deps,
                    draw_ledger_from_url(self.settings.draw_ledger_url()),
                    PrizeOrders(self.deps, self.carts, self.orders),
                )
                # A shared Redis keeps its pools; one that lost them gets them back from the store.
                service.restore(only_missing=self.settings.backend == "redis")
                self._draws = service
            return self._draws

    @cached_property
    def draw_grants(self) -> PaidOrderGrants:
        """Draws granted for paid orders from the order outbox, run by the expiry sweeper."""
        return PaidOrderGrants(self.deps, lambda: self.draws)

    @cached_property
    def draw_schedule(self) -> DrawSchedule:
        """Scheduled draws (N winners among the day's qualifying buyers)."""
        return DrawSchedule(self.deps)

    @cached_property
    def retention(self) -> Retention:
        """Forgetting finished holds and their request keys once FLASHSALE_LEDGER_RETENTION_HOURS old,
        sold ones once FLASHSALE_LEDGER_SOLD_RETENTION_HOURS old."""
        return Retention(
            self.orders,
            keep_s=self.settings.ledger_retention_hours * HOUR_S,
            sold_keep_s=self.settings.ledger_sold_retention_hours * HOUR_S,
        )

    @cached_property
    def carts(self) -> CartService:
        """Shoppers' carts and their checkouts, on the same order path as purchases."""
        return CartService(self.deps, self.orders, self.checkout_coupons)

    @cached_property
    def checkout_coupons(self) -> CheckoutCoupons:
        """Coupons and shop promotions at checkout; given back when a checkout's orders all end unkept."""
        coupons = CheckoutCoupons(self.deps, self.coupons)
        self.orders.closed_listeners.append(coupons.closed)
        self.orders.refunded_listeners.append(coupons.closed)
        return coupons

    @cached_property
    def groups(self) -> GroupBuyService:
        """Group buys: deals, groups and their seats, settled by the expiry sweeper."""
        return GroupBuyService(self.deps, self.orders, self.carts)

    @cached_property
    def free_orders(self) -> FreeOrders:
        """Countdown free-order rules and their winners (decided in the pay transaction)."""
        return FreeOrders(self.deps)

    @cached_property
    def referrals(self) -> ReferralService:
        """Invite codes and referral rewards, settled by the expiry sweeper."""
        s = self.settings
        terms = RewardTerms(
            s.referral_inviter_points,
            s.referral_invitee_points,
            s.referral_coupon_template,
            s.referral_settle_s,
        )
        return ReferralService(self.deps, terms)

    @cached_property
    def order_search(self) -> OrderSearch:
        """Operators' reads of orders and payments, on connections that never take the write lock."""
        return OrderSearch(sessionmaker(self.read_engine))

    @cached_property
    def messaging(self) -> MessagingAdmin:
        """Operators' messaging: templates, members and opt-outs, waves and dry-runs, the delivery log."""
        return MessagingAdmin(
            sessionmaker(self.engine, expire_on_commit=False), policy_from(self.settings), self.deps.clock
        )

    def message_dispatcher(self) -> Dispatcher:
        """Build a message sender on this platform's database and clock."""
        return dispatcher_for(self.settings, self.engine, self.deps.clock)

    def start_jobs(self) -> None:
        if self.draw_scheduler is None:
            self.draw_scheduler = draw_scheduler(
                self.draw_schedule, interval_s=self.settings.draw_schedule_interval_s
            )
            self.draw_scheduler.start()
        if self.sweeper is None:
            self.sweeper = ExpirySweeper(
                self.orders,
                self.ledger,
                self.deps.clock,
                max_sleep_s=self.settings.expiry_sweep_max_s,
                also=(
                    self.groups.settle_due,
                    self.referrals.settle,
                    self.draw_grants.run,
                    self.checkout_coupons.sweep,
                ),
            )
            self.sweeper.start()
        if self.retention_job is None:
            self.retention_job = retention_job(
                self.retention, interval_s=self.settings.ledger_retention_interval_s
            )
            self.retention_job.start()
        if self.writer is None and self.orders.write_behind:
            # A process that sells repairs a ledger that lost writes; a CLI command leaves it to reconcile.
            self.orders.refusals.repair = repair_hook(self)
            self.writer = order_writer_for(self)
            self.writer.start()
        if self.messenger is None and self.settings.messaging_in_serve:
            run = self.message_dispatcher().run_forever
            self._stop_messenger.clear()
            self.messenger = threading.Thread(
                target=run,
                args=(self._stop_messenger, self.settings.messaging_poll_s),
                name="messages",
                daemon=True,
            )
            self.messenger.start()

    def close(self) -> None:
        for job in (self.sweeper, self.writer, self.draw_scheduler, self.retention_job):
            if job is not None:
                job.stop()
        self.sweeper = self.writer = self.draw_scheduler = self.retention_job = None
        if self.messenger is not None:
            self._stop_messenger.set()
            self.messenger.join()
            self.messenger = None
        self.admission.close()
        if self.lease is not None:
            self.lease.release()
            self.lease = None
        self.ledger.close()  # a network engine holds a connection pool
        if self._draws is not None:
            self._draws.ledger.close()
            self._draws = None
        self.coupons.ledger.close()
        if self.deps.group is not None:
            self.deps.group.close()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
        self.engine.dispose()


def order_writer_for(platform: Platform, *, consumer: str | None = None) -> OrderWriter:
    """Build the order writer that drains the ledger's purchase stream (Redis) into the database."""
    stream = platform.ledger.purchase_stream()
    if stream is None:  # the engine's orders are recorded by the buy path itself
        raise ValueError("only the Redis ledger has a purchase stream to write orders from")
    return OrderWriter(platform.orders, stream.client, stream.every_key, consumer=consumer)


def repair_hook(platform: Platform) -> Callable[[], object]:
    """What a process runs when its ledger refuses with LEDGER_BEHIND: reconcile, report in the data dir.

    Its writer is a consumer of its own, so it never reads the entries the process's running
    writer holds as its own pending ones.
    """

    def repair() -> object:
        writer = order_writer_for(platform, consumer=f"{socket.gethostname()}-{os.getpid()}-repair")
        return repair_lost_writes(platform.orders, writer.drain, platform.settings.data_dir)

    return repair


def rebuild_ledger(deps: Deps) -> None:
    """Load every item's terms and every order into the ledger: the store is the truth after a restart."""
    with deps.uow() as uow:
        deps.ledger.restore(repo.all_item_terms(uow.db), repo.all_holds(uow.db))


def build(
    settings: Settings | None = None,
    *,
    clock: Clock = time.time,
    migrate: bool = True,
    read_only: bool = False,
) -> Platform:
    """Wire a platform; migrate the schema (creating the SQLite file on first run) and rebuild the ledger.

    `read_only` (reconcile --dry-run) leaves a shared ledger and the payments as they are: no sync,
    no rebuild of an empty Redis, no payment recovery.
    """
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
    coupon_ledger = coupon_ledger_from_url(settings.coupon_ledger_url(), clock)
    sessions = sessionmaker(engine, expire_on_commit=False)
    read_engine = store_db.make_read_engine(url, engine)
    reads = sessionmaker(read_engine, expire_on_commit=False)
    deps = Deps(
        sessions=sessions,
        ledger=ledger,
        clock=clock,
        prices=PriceBook(reads),
        reads=reads,
        group=store_db.group_commit(url, engine),
    )
    assert settings.payment_secret is not None
    shared = settings.backend == "redis"
    # A shared ledger answers from its decision; the order writer records orders from its stream.
    orders = OrderService(deps, {"sandbox": SandboxProvider(settings.payment_secret)}, write_behind=shared)
    showcase = Showcase(reads, ledger, clock)
    deps.catalog_listeners.append(showcase.invalidate)
    assert settings.jwt_secret is not None
    admission = admission_state(
        reads,
        ledger,
        clock,
        orders,
        ledger_url=settings.ledger_url(),
        key=sale_token_key(settings.admission_secret, settings.jwt_secret),
        token_ttl_s=settings.sale_token_ttl_s,
    )
    deps.catalog_listeners.append(admission.policies.invalidate)
    platform = Platform(
        settings,
        engine,
        deps,
        CatalogService(deps),
        orders,
        showcase=showcase,
        read_engine=read_engine,
        coupons=CouponService(deps, coupon_ledger),
        admission=admission,
        lease=lease,
    )
    try:
        if not read_only:
            # A shared (Redis) coupon ledger other processes decide on is ahead of the store: kept.
            load_coupon_ledger(deps, coupon_ledger, only_if_empty=shared)
        if not shared:
            rebuild_ledger(deps)
        elif not read_only:
            sync_shared_ledger(deps)
        if not read_only:
            orders.payments.recover()  # finish any charge or refund a crash interrupted
        deps.prices.preload()  # the buy path then prices from memory, through a database outage too
    except BaseException:
        platform.close()
        raise
    return platform
