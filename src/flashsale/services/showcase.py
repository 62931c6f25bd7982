"""The shop window: an in-memory view of the sessions, their items and live stock, for public reads.

`GET /sessions` is anonymous, so it must cost almost nothing however often it is called. Readers
never touch the database or the ledger: they read an immutable `ShowcaseSnapshot`, which one
caller at a time (single-flight) rebuilds when it is stale:

- the catalogue (sessions, items, products) is loaded with a constant number of queries, at once
  after an edit in this process and otherwise at most every `catalog_ttl_s` (edits made by other
  processes, e.g. other uvicorn workers on the Redis ledger, are seen within that time);
- the stock levels are read from the ledger at most every `stock_ttl_s`.

Session states are not part of a snapshot: they are computed against the caller's `now`, so a
session shows OPEN exactly at its start whatever the snapshot's age. The freshness deadlines are
read on the platform clock, so tests move them with the manual clock.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from flashsale.clock import Clock
from flashsale.domain.campaign import FlashSession, SessionState
from flashsale.domain.catalog import Product
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.sale import FlashItem
from flashsale.ledger.contract import Ledger, StockLevel
from flashsale.services.catalog_views import ItemView, SessionView
from flashsale.store import repositories as repo
from flashsale.store.tables import CampaignRow, ItemRow, ProductRow, SessionRow

T = TypeVar("T")

CATALOG_TTL_S = 1.0
STOCK_TTL_S = 0.5
SHOWN_BY_DEFAULT = frozenset({SessionState.OPEN, SessionState.UPCOMING})


@dataclass(frozen=True, slots=True)
class Catalog:
    """Sessions (soonest first) with their items and products, as loaded from the store."""

    sessions: tuple[FlashSession, ...]
    items: dict[int, tuple[tuple[FlashItem, Product], ...]]  # by session id, in item id order


@dataclass(frozen=True, eq=False)
class ShowcaseSnapshot:
    """One consistent picture of the catalogue and its stock; never changed once built.

    `memo` keeps what callers derive from it (e.g. serialised pages), so each is built once per
    snapshot and per state epoch.
    """

    sessions: tuple[tuple[FlashSession, tuple[ItemView, ...]], ...]
    by_id: dict[int, tuple[FlashSession, tuple[ItemView, ...]]]
    boundaries: tuple[datetime, ...]  # every start and end, sorted: states change only there
    memo: dict[Any, tuple[int, Any]] = field(default_factory=dict)

    def epoch(self, now: datetime) -> int:
        """Return how many state boundaries `now` has passed: equal epochs mean equal states."""
        return bisect_right(self.boundaries, now)

    def views(self, states: Iterable[SessionState], now: datetime) -> list[SessionView]:
        """Return the sessions in `states` at `now`, soonest first, with their items."""
        wanted = set(states)
        views = []
        for session, items in self.sessions:
            state = session.state(now)
            if state in wanted:
                views.append(SessionView(session, state, items))
        return views

    def view(self, session_id: int, now: datetime) -> SessionView:
        """Return one session at `now`, or refuse with NOT_FOUND."""
        found = self.by_id.get(session_id)
        if found is None:
            raise FlashSaleError(ErrorCode.NOT_FOUND, f"no session {session_id}")
        session, items = found
        return SessionView(session, session.state(now), items)

    def memoized(self, key: Any, now: datetime, build: Callable[[], T]) -> T:
        """Return what `build` made for `key` in this snapshot and state epoch, building it once."""
        epoch = self.epoch(now)
        cached = self.memo.get(key)
        if cached is not None and cached[0] == epoch:
            return cast(T, cached[1])  # `key` names what was built: this very `build`'s kind of value
        value = build()
        self.memo[key] = (epoch, value)  # a racing builder makes the same value; last one wins
        return value


class _State(NamedTuple):
    """Everything a refresh produces, swapped in as one value so readers never see half of it."""

    snapshot: ShowcaseSnapshot
    catalog: Catalog
    levels: dict[int, StockLevel]
    generation: int  # the invalidation count the catalogue was loaded after
    catalog_loaded_at: float
    stock_taken_at: float


class Showcase:
    """Serve the public catalogue from memory; see the module docstring for how it stays fresh."""

    def __init__(
        self,
        reads: sessionmaker[Session],
        ledger: Ledger,
        clock: Clock,
        *,
        catalog_ttl_s: float = CATALOG_TTL_S,
        stock_ttl_s: float = STOCK_TTL_S,
    ) -> None:
        self._reads = reads
        self._ledger = ledger
        self._clock = clock
        self.catalog_ttl_s = catalog_ttl_s
        self.stock_ttl_s = stock_ttl_s
        self._lock = threading.Lock()  # one refresh at a time; readers of a fresh snapshot skip it
        self._generations = itertools.count(1)
        self._generation = 0  # bumped by every invalidation
        self._state: _State | None = None
        self._refreshing: asyncio.Future[ShowcaseSnapshot] | None = None

    def invalidate(self) -> None:
        """Forget the catalogue (after an edit): the next reader reloads it and all the stock."""
        self._generation = next(self._generations)

    def current(self) -> ShowcaseSnapshot | None:
        """Return the snapshot if it is fresh, else None; never blocks."""
        state, now = self._state, self._clock()
        if state is None or not self._catalog_fresh(state, now):
            return None
        return state.snapshot if _young(now, state.stock_taken_at, self.stock_ttl_s) else None

    def snapshot(self) -> ShowcaseSnapshot:
        """Return a fresh snapshot, refreshing it first if needed (blocks on the store and the ledger)."""
        return self.current() or self.refresh()

    async def snapshot_async(self) -> ShowcaseSnapshot:
        """Return a fresh snapshot without blocking the event loop.

        A stale snapshot is refreshed in a worker thread, once for all the coroutines that ask
        meanwhile: a flood of readers costs one store and ledger read per interval, not one each.
        """
        fresh = self.current()
        if fresh is not None:
            return fresh
        loop = asyncio.get_running_loop()
        pending = self._refreshing
        if pending is None or pending.done() or pending.get_loop() is not loop:
            pending = self._refreshing = asyncio.ensure_future(asyncio.to_thread(self.refresh))
        # shield: a reader that disconnects must not cancel the refresh the others wait for
        return await asyncio.shield(pending)

    def refresh(self, *, force: bool = False) -> ShowcaseSnapshot:
        """Rebuild what is stale (everything with `force`) and return the new snapshot.

        Callers that queued behind another refresh get its result instead of refreshing again.
        """
        with self._lock:
            if not force and (fresh := self.current()) is not None:
                return fresh
            now, old = self._clock(), self._state
            if old is not None and not force and self._catalog_fresh(old, now):
                catalog, generation, loaded_at = old.catalog, old.generation, old.catalog_loaded_at
            else:
                generation = self._generation  # read before loading: an edit meanwhile stays pending
                catalog, loaded_at = self._load_catalog(), now
                if force or old is None or old.generation != generation or catalog != old.catalog:
                    old = None  # an edit: every item's stock is read again and the snapshot rebuilt
            if old is None:
                levels = self._take_stock(catalog, {}, since=None)
                snapshot = _snapshot_of(catalog, levels)
            else:
                levels = self._take_stock(catalog, old.levels, since=old.stock_taken_at)
                # Nothing moved: keep the snapshot, so its memo (serialised pages, ETags) stays valid.
                snapshot = old.snapshot if levels == old.levels else _snapshot_of(catalog, levels)
            self._state = _State(snapshot, catalog, levels, generation, loaded_at, now)
            return snapshot

    def _catalog_fresh(self, state: _State, now: float) -> bool:
        return state.generation == self._generation and _young(
            now, state.catalog_loaded_at, self.catalog_ttl_s
        )

    def _load_catalog(self) -> Catalog:
        # Two queries whatever the number of sessions, on the read engine (no write lock on SQLite).
        # A rehearsal's copy is not on show: only its crowd, which knows its items, may buy it.
        shown = select(SessionRow.id).join(CampaignRow).where(CampaignRow.rehearsal.is_(False))
        with self._reads() as db:
            sessions = tuple(
                repo.session_of(r)
                for r in db.scalars(
                    select(SessionRow)
                    .where(SessionRow.id.in_(shown))
                    .order_by(SessionRow.starts_at, SessionRow.id)
                )
            )
            rows = db.execute(
                select(ItemRow, ProductRow)
                .join(ProductRow, ItemRow.product_id == ProductRow.id)
                .where(ItemRow.session_id.in_(shown))
                .order_by(ItemRow.session_id, ItemRow.id)
            ).all()
        items: dict[int, list[tuple[FlashItem, Product]]] = {}
        for item_row, product_row in rows:
            items.setdefault(item_row.session_id, []).append(
                (repo.item_of(item_row), repo.product_of(product_row))
            )
        return Catalog(sessions, {sid: tuple(pairs) for sid, pairs in items.items()})

    def _take_stock(
        self, catalog: Catalog, known: dict[int, StockLevel], *, since: float | None
    ) -> dict[int, StockLevel]:
        """Read the levels of the items whose session has not closed since `since` (all when None).

        An item whose session had closed when `known` was read cannot be sold any more, so that
        level is kept: a year of past sessions costs no ledger call per refresh.
        """
        levels: dict[int, StockLevel] = {}
        for session in catalog.sessions:
            live = since is None or session.ends_at.timestamp() >= since
            for item, _ in catalog.items.get(session.id, ()):
                kept = None if live else known.get(item.id)
                levels[item.id] = kept if kept is not None else self._level(item)
        return levels

    def _level(self, item: FlashItem) -> StockLevel:
        try:
            return self._ledger.stock(item.id)
        except FlashSaleError as exc:
            if exc.code is not ErrorCode.UNKNOWN_ITEM:
                raise
            # Committed items are configured first; an unknown one (a Redis that lost its data,
            # before reconcile) cannot be sold, so it shows nothing remaining.
            return StockLevel(item.id, item.quota, 0, 0, 0)


def _young(now: float, since: float, ttl_s: float) -> bool:
    # A clock that went backwards makes the data stale rather than fresh for longer.
    return 0.0 <= now - since < ttl_s


def _snapshot_of(catalog: Catalog, levels: dict[int, StockLevel]) -> ShowcaseSnapshot:
    entries = tuple(
        (session, tuple(ItemView(i, p, levels[i.id]) for i, p in catalog.items.get(session.id, ())))
        for session in catalog.sessions
    )
    bounds = sorted({moment for s in catalog.sessions for moment in (s.starts_at, s.ends_at)})
    return ShowcaseSnapshot(entries, {s.id: (s, items) for s, items in entries}, tuple(bounds))
