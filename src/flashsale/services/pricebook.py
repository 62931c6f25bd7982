"""Flash items and their products by id, cached briefly so the hot buy path does not query for prices.

Catalog edits made in this process invalidate the cache at once; edits made by another process
are seen within `ttl_s` seconds of real time (a monotonic clock: the injected clock is the sale's
time, which a simulation may run hundreds of times faster, reloading prices as often). The price a
shopper pays is fixed when their order is recorded.

The buy path must not need the store (in Redis mode the sale goes on through a database outage):
every item is loaded at start-up (`preload`), and while the store cannot be reached the last
price read stays in force. That is the price: an edit cannot commit while the store is down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from flashsale.domain.catalog import Product
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.sale import FlashItem
from flashsale.store import repositories as repo
from flashsale.store.tables import ItemRow, ProductRow

Entry = tuple[FlashItem, Product]


class PriceBook:
    def __init__(
        self, sessions: sessionmaker[Session], clock: Callable[[], float] = time.monotonic, ttl_s: float = 2.0
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[float, Entry]] = {}

    def get(self, item_id: int) -> Entry:
        """Return the flash item and its product, from cache when fresh (or when the store is down).

        A stale entry is read again together with every other stale one, in one query: entries
        read together (at start-up, or in one such query) go stale together, and a sale of many
        items would otherwise ask once per item and interval, on the buy path and in the writer.
        """
        now = self._clock()
        cached = self._entries.get(item_id)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        with self._lock:
            stale = {i for i, (at, _) in self._entries.items() if not now - at < self._ttl_s}
        asked = stale | {item_id}
        try:
            entries = self._load(ItemRow.id.in_(asked))
        except OperationalError:
            if cached is None:
                raise
            # The store is unreachable: the last prices read are still the prices, and a down
            # store is asked again after ttl_s, not per call.
            with self._lock:
                self._entries.update({i: (now, e) for i, (_, e) in self._entries.items() if i in stale})
            return cached[1]
        with self._lock:
            self._entries.update({i: (now, entry) for i, entry in entries.items()})
            for gone in asked - entries.keys():
                self._entries.pop(gone, None)
        if item_id not in entries:
            raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {item_id}")
        return entries[item_id]

    def preload(self) -> None:
        """Load every item at once, so a buy path started with the store up never needs it again."""
        now = self._clock()
        entries = self._load(None)
        with self._lock:
            self._entries.update({item_id: (now, entry) for item_id, entry in entries.items()})

    def _load(self, where: ColumnElement[bool] | None) -> dict[int, Entry]:
        query = select(ItemRow, ProductRow).join(ProductRow, ItemRow.product_id == ProductRow.id)
        if where is not None:
            query = query.where(where)
        with self._sessions() as db:
            rows = db.execute(query).all()
        return {item.id: (repo.item_of(item), repo.product_of(product)) for item, product in rows}

    def invalidate(self) -> None:
        """Forget everything (after a catalog edit)."""
        with self._lock:
            self._entries.clear()
