"""The live board: one picture of the sale, built once per tick and shared by every viewer.

Shoppers see, per session, a stock bar, the countdown to its open or close, how many people took
part and whether it sold out; operators see per item what is available, held and sold, orders in
the last minute and the paid share of what was reserved. `BoardFeed` builds that picture at most
once per `interval_s` from the shop window's snapshot (the ledger's levels, shared with
`GET /sessions`) and one grouped read of the orders, whatever the number of viewers: a viewer
costs a copy of the latest picture, never a query.
"""

from __future__ import annotations

import asyncio
import json
import time
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
        self.version = 0
        self.builds = 0
        self.latest: str | None = None  # the last build, serialised once for every viewer
        self._built_at = 0.0  # time.monotonic() of the last build
        self._changed = asyncio.Event()
        self._builder: asyncio.Task[None] | None = None
        self._waiting = 0  # viewers waiting for the next build now
        self._asked = False  # a viewer asked since the last build

    async def next(self, seen: int) -> tuple[int, str]:
        """Wait for a build newer than version `seen`; return its version and JSON."""
        self._asked = True
        if self._builder is None or self._builder.done():
            self._builder = asyncio.get_running_loop().create_task(self._build_while_watched())
        self._waiting += 1
        try:
            while self.version <= seen or self.latest is None:
                self._changed.clear()
                await self._changed.wait()
        finally:
            self._waiting -= 1
        return self.version, self.latest

    async def current(self) -> str:
        """The board as of at most `interval_s` ago: the last build if that recent, else a new one."""
        if self.latest is not None and time.monotonic() - self._built_at < self.interval_s:
            return self.latest
        return await self.build()

    async def build(self) -> str:
        """Build the board once now."""
        snapshot = await self._showcase.snapshot_async()
        now = self._now()
        figures = await asyncio.to_thread(read_order_figures, self._deps, now)
        latest = json.dumps(board_view(snapshot, figures, now), ensure_ascii=False)
        self.latest, self.version, self.builds = latest, self.version + 1, self.builds + 1
        self._built_at = time.monotonic()
        self._changed.set()
        return latest

    def close(self) -> None:
        """Stop the builder (the app is shutting down)."""
        if self._builder is not None:
            self._builder.cancel()

    async def _build_while_watched(self) -> None:
        # Runs while someone waits or asked during the last interval; a board nobody watches costs nothing.
        while self._waiting or self._asked:
            self._asked = False
            await self.build()
            await asyncio.sleep(self.interval_s)
