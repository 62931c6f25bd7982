"""The live board: one picture of the sale, built once per tick and shared by every viewer.

Shoppers see, per session, a stock bar, the countdown to its open or close, how many people took
part and whether it sold out; operators see per item what is available, held and sold, orders in
the last minute and the paid share of what was reserved. `BoardFeed` builds that picture at most
once per `interval_s` from the shop window's snapshot (the ledger's levels, shared with
`GET /sessions`) and one grouped read of the orders, whatever the number of viewers: a viewer
costs a copy of the latest picture, never a query.

Each build is encoded once, as the bytes of its two Server-Sent Events: `board` (the whole picture)
and `patch` (only the sessions that changed since the build before). A viewer who got the build
before is sent the patch, any other the whole board, so a viewer who fell behind skips to the
newest build. Countdowns are left out of the comparison: they move with the clock alone, and the
page counts them down from the sessions' times and the build's `at`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from flashsale.domain.orders import OrderStatus
from flashsale.services.catalog_views import ItemView
from flashsale.services.deps import Deps
from flashsale.services.showcase import Showcase, ShowcaseSnapshot
from flashsale.store.tables import OrderRow

RECENT = timedelta(minutes=1)  # "orders in the last minute"
COUNTDOWNS = frozenset({"opens_in_s", "closes_in_s"})  # change every second, derived from the times
# Viewers woken per turn of the event loop after a build: between two batches the loop answers
# whatever else is ready (the buyers), instead of writing to every viewer in one stretch.
WAKE_BATCH = 32


@dataclass(frozen=True, slots=True)
class OrderFigures:
    """What the stored orders of one item say, as of one tick."""

    participants: int = 0  # shoppers with any order of the item
    reserved_units: int = 0  # units of every order ever placed (paid, unpaid, and given back)
    paid_units: int = 0
    orders_last_minute: int = 0


def read_order_figures(deps: Deps, now: datetime) -> dict[int, OrderFigures]:
    """One grouped read of the orders per item (on the read-only side of the store)."""
    was_paid = OrderRow.status.in_((OrderStatus.PAID.value, OrderStatus.REFUNDED.value))
    paid = func.sum(OrderRow.qty).filter(was_paid)
    recent = func.count().filter(OrderRow.created_at >= now - RECENT)
    query = select(
        OrderRow.item_id, func.count(func.distinct(OrderRow.user_id)), func.sum(OrderRow.qty), paid, recent
    ).group_by(OrderRow.item_id)
    with deps.read() as r:
        rows = r.db.execute(query).all()
    return {
        item_id: OrderFigures(int(people), int(units or 0), int(paid_units or 0), int(last_minute))
        for item_id, people, units, paid_units, last_minute in rows
    }


def board_view(
    snapshot: ShowcaseSnapshot, figures: Mapping[int, OrderFigures], now: datetime
) -> dict[str, Any]:
    """The board as JSON-ready data: every session the shop window shows, its items and their figures."""
    sessions = []
    for session, views in snapshot.sessions:
        items = [_item(view, figures.get(view.item.id, OrderFigures())) for view in views]
        state = session.state(now)
        sessions.append(
            {
                "id": session.id,
                "name": session.name,
                "state": state.value,
                "starts_at": session.starts_at.isoformat(),
                "ends_at": session.ends_at.isoformat(),
                "opens_in_s": max(0, round((session.starts_at - now).total_seconds())),
                "closes_in_s": max(0, round((session.ends_at - now).total_seconds())),
                "participants": sum(i["participants"] for i in items),
                "sold_out": bool(items) and all(i["sold_out"] for i in items),
                "items": items,
            }
        )
    return {"at": now.isoformat(), "sessions": sessions}


def _item(view: ItemView, figures: OrderFigures) -> dict[str, Any]:
    stock, reserved = view.stock, figures.reserved_units
    return {
        "id": view.item.id,
        "name": view.product.name,
        "flash_price_cents": view.item.flash_price_cents,
        "quota": stock.quota,
        "available": stock.available,
        "held": stock.held,
        "sold": stock.sold,
        "sold_out": stock.available == 0,
        "participants": figures.participants,
        "orders_last_minute": figures.orders_last_minute,
        # Paid units over units ever reserved: how much of the rush turned into money.
        "conversion": round(figures.paid_units / reserved, 4) if reserved else None,
    }


def board_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the sessions of `after` that differ from `before` (countdowns aside), with `after`'s time.

    None when the sessions themselves changed (one came, went, or moved): then only the whole
    board says what the page must show.
    """
    old, new = before["sessions"], after["sessions"]
    if [s["id"] for s in old] != [s["id"] for s in new]:
        return None
    changed = [n for o, n in zip(old, new, strict=True) if _without_countdowns(o) != _without_countdowns(n)]
    return {"at": after["at"], "sessions": changed}


def apply_patch(board: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Return `board` with the patch's sessions put in place of those with the same id (as the page does)."""
    by_id = {s["id"]: s for s in patch["sessions"]}
    return {"at": patch["at"], "sessions": [by_id.get(s["id"], s) for s in board["sessions"]]}


def _without_countdowns(session: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if k not in COUNTDOWNS}


def _event(kind: str, version: int, data: Mapping[str, Any]) -> bytes:
    # JSON escapes every line break, so `data` is one line, as an event's field must be.
    return f"id: {version}\nevent: {kind}\ndata: {_json(data)}\n\n".encode()


def _json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class BoardFrame:
    """One build of the board, serialised once for every viewer."""

    version: int
    body: str  # the whole board as JSON (GET /board/view)
    full: bytes  # the event `board`: the whole board
    patch: bytes | None  # the event `patch`: what changed since build `version - 1` (None: send `full`)

    def event_after(self, seen: int) -> bytes:
        """Return the event that brings a viewer whose last build was `seen` to this one."""
        return self.patch if self.patch is not None and seen == self.version - 1 else self.full


class BoardFeed:
    """Builds the board at most once per `interval_s` while anyone watches; viewers share each build.

    One event loop at a time (the app's). `next(seen)` waits for a build newer than `seen`; the
    first viewer starts the builder, and it stops once nobody has watched for a whole interval.
    """

    def __init__(
        self,
        deps: Deps,
        showcase: Showcase,
        *,
        interval_s: float = 1.0,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._deps = deps
        self._showcase = showcase
        self.interval_s = interval_s
        self._now = now or deps.now
        self.builds = 0
        self.frame: BoardFrame | None = None  # the last build
        self._view: dict[str, Any] | None = None  # the last build as data, to compare the next with
        self._built_at = 0.0  # time.monotonic() of the last build
        self._waiters: deque[asyncio.Future[None]] = deque()  # viewers waiting for the next build
        self._builder: asyncio.Task[None] | None = None
        self._asked = False  # a viewer asked since the last build
        self._closed = False

    @property
    def version(self) -> int:
        """The number of the last build (0: none yet)."""
        return self.frame.version if self.frame is not None else 0

    @property
    def latest(self) -> str | None:
        """The last build as JSON, if any."""
        return self.frame.body if self.frame is not None else None

    async def next(self, seen: int) -> BoardFrame | None:
        """Wait for a build newer than version `seen` and return it; None once the feed is closed."""
        self._asked = True
        if not self._closed and (self._builder is None or self._builder.done()):
            self._builder = asyncio.get_running_loop().create_task(self._build_while_watched())
        while not self._closed and (self.frame is None or self.frame.version <= seen):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return None if self._closed else self.frame

    async def current(self) -> str:
        """The board as of at most `interval_s` ago: the last build if that recent, else a new one."""
        if self.frame is not None and time.monotonic() - self._built_at < self.interval_s:
            return self.frame.body
        return (await self.build()).body

    async def build(self) -> BoardFrame:
        """Build the board once now, then wake the viewers waiting for it."""
        snapshot = await self._showcase.snapshot_async()
        now = self._now()
        figures = await asyncio.to_thread(read_order_figures, self._deps, now)
        view = board_view(snapshot, figures, now)
        version = self.version + 1
        patch = board_patch(self._view, view) if self._view is not None else None
        self.frame = BoardFrame(
            version,
            _json(view),
            _event("board", version, view),
            _event("patch", version, patch) if patch is not None else None,
        )
        self._view, self.builds, self._built_at = view, self.builds + 1, time.monotonic()
        await self._wake()
        return self.frame

    def close(self) -> None:
        """Stop the builder and let every viewer go (the app is shutting down)."""
        self._closed = True
        if self._builder is not None:
            self._builder.cancel()
        while self._waiters:
            _release(self._waiters.popleft())

    async def _wake(self) -> None:
        # Those who start waiting meanwhile are waiting for the next build, so take only these.
        waiting, self._waiters = self._waiters, deque()
        while waiting:
            for _ in range(min(WAKE_BATCH, len(waiting))):
                _release(waiting.popleft())
            if waiting:
                await asyncio.sleep(0)

    async def _build_while_watched(self) -> None:
        # Runs while someone waits or asked during the last interval; a board nobody watches costs nothing.
        while self._waiters or self._asked:
            self._asked = False
            await self.build()
            await asyncio.sleep(self.interval_s)


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # a viewer that went away cancelled its own
        waiter.set_result(None)
