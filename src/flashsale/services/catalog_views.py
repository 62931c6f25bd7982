"""Operators' reads of the catalogue: campaigns, products, an item's counters; and the read models
the shop window (services/showcase.py) and the API serialise.

Reads only, on the read-only side of the store (`Deps.read()`): they never queue behind writers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from flashsale.domain.campaign import Campaign, FlashSession, SessionState
from flashsale.domain.catalog import Product
from flashsale.domain.orders import OrderStatus
from flashsale.domain.sale import FlashItem
from flashsale.ledger.contract import StockLevel
from flashsale.services.deps import Deps
from flashsale.store import repositories as repo
from flashsale.store.tables import CampaignRow, ItemRow, OrderRow, ProductRow


@dataclass(frozen=True, slots=True)
class ItemView:
    item: FlashItem
    product: Product
    stock: StockLevel


@dataclass(frozen=True, slots=True)
class SessionView:
    session: FlashSession
    state: SessionState
    items: tuple[ItemView, ...]


@dataclass(frozen=True, slots=True)
class ItemStats:
    item: FlashItem
    stock: StockLevel
    orders_by_status: dict[str, int]
    units_by_status: dict[str, int]
    buyers: int
    revenue_cents: int


class CatalogViews:
    """What operators read of the catalogue."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def get_campaign(self, campaign_id: int) -> Campaign:
        with self.deps.read() as r:
            return repo.load_campaign(r.db, campaign_id)

    def list_campaigns(self) -> list[Campaign]:
        with self.deps.read() as r:
            rows = r.db.scalars(select(CampaignRow).order_by(CampaignRow.id))
            return [repo.campaign_with_phases(r.db, row) for row in rows]

    def list_products(self) -> list[Product]:
        with self.deps.read() as r:
            return [repo.product_of(p) for p in r.db.scalars(select(ProductRow).order_by(ProductRow.id))]

    def item_stats(self, item_id: int) -> ItemStats:
        """Counters from the ledger beside the stored orders of one item."""
        with self.deps.read() as r:
            row = repo.get_row(r.db, ItemRow, item_id, "item")
            grouped = r.db.execute(
                select(OrderRow.status, func.count(), func.sum(OrderRow.qty), func.sum(OrderRow.total_cents))
                .where(OrderRow.item_id == item_id)
                .group_by(OrderRow.status)
            ).all()
            buyers = r.db.scalar(
                select(func.count(func.distinct(OrderRow.user_id))).where(
                    OrderRow.item_id == item_id, OrderRow.status == OrderStatus.PAID.value
                )
            )
            return ItemStats(
                item=repo.item_of(row),
                stock=self.deps.ledger.stock(item_id),
                orders_by_status={s: n for s, n, _, _ in grouped},
                units_by_status={s: int(u or 0) for s, _, u, _ in grouped},
                buyers=int(buyers or 0),
                revenue_cents=sum(int(t or 0) for s, _, _, t in grouped if s == OrderStatus.PAID.value),
            )
