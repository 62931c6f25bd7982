"""Flash items and their products by id, cached briefly so the hot buy path does not query for prices.

Catalog edits made in this process invalidate the cache at once; edits made by another process
are seen within `ttl_s`. The price a shopper pays is fixed when their order is recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from flashsale.domain.catalog import Product
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.sale import FlashItem
from flashsale.store import repositories as repo
from flashsale.store.tables import ItemRow, ProductRow

Entry = tuple[FlashItem, Product]


class PriceBook:
    def __init__(
        self, sessions: sessionmaker[Session], clock: Callable[[], float], ttl_s: float = 2.0
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[float, Entry]] = {}

    def get(self, item_id: int) -> Entry:
        """Return the flash item and its product, from cache when fresh."""
        now = self._clock()
        cached = self._entries.get(item_id)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        with self._sessions() as db:
            found = db.execute(
                select(ItemRow, ProductRow)
                .join(ProductRow, ItemRow.product_id == ProductRow.id)
                .where(ItemRow.id == item_id)
            ).one_or_none()
        if found is None:
            raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {item_id}")
        entry = (repo.item_of(found[0]), repo.product_of(found[1]))
        with self._lock:
            self._entries[item_id] = (now, entry)
        return entry

    def invalidate(self) -> None:
        """Forget everything (after a catalog edit)."""
        with self._lock:
            self._entries.clear()
