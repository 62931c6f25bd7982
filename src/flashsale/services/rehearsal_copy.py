"""A throwaway copy of a campaign for a load rehearsal: same items, prices, quotas and limits, its
own products (so the real stock is untouched) and its own session windows (so it can open now).

The copy is a campaign named "[rehearsal] <name>" marked as a rehearsal: its orders, ledger
counters and review are its own and never mix with the real campaign's; the shop window (GET
/sessions, the live board) does not show it, and only a purchase that carries the copy's
rehearsal pass (`RehearsalPasses`, handed to the operator with the copy) may buy its items:
anyone else is told the item does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from flashsale.domain.campaign import Campaign, FlashSession
from flashsale.domain.catalog import Product
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.sale import FlashItem
from flashsale.services.catalog import CatalogService
from flashsale.store import repositories as repo
from flashsale.store.tables import ItemRow, ProductRow, SessionRow

REHEARSAL_MARK = "[rehearsal]"


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """Where the copy of session `source_session_id` opens and closes."""

    source_session_id: int
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class CopiedItem:
    source_item_id: int
    item: FlashItem
    product: Product


@dataclass(frozen=True, slots=True)
class CopiedSession:
    source_session_id: int
    session: FlashSession
    items: tuple[CopiedItem, ...]


@dataclass(frozen=True, slots=True)
class RehearsalCopy:
    source_campaign_id: int
    campaign: Campaign
    sessions: tuple[CopiedSession, ...]


def copy_for_rehearsal(
    catalog: CatalogService, campaign_id: int, windows: Sequence[SessionWindow]
) -> RehearsalCopy:
    """Copy the campaign's sessions named in `windows` (at those windows) with their items.

    Each copied item gets a new product of the same name and list price whose stock is the
    item's quota, under SKU "<sku>~r<copy id>".
    """
    if not windows:
        raise FlashSaleError(ErrorCode.VALIDATION_ERROR, "name at least one session to rehearse")
    with catalog.deps.read() as r:
        source = repo.load_campaign(r.db, campaign_id)
        sessions = {
            row.id: row
            for row in r.db.scalars(select(SessionRow).where(SessionRow.campaign_id == campaign_id))
        }
        strangers = sorted({w.source_session_id for w in windows} - set(sessions))
        if strangers:
            raise FlashSaleError(
                ErrorCode.VALIDATION_ERROR, f"sessions {strangers} are not sessions of campaign {campaign_id}"
            )
        items = {
            w.source_session_id: [
                (repo.item_of(item), repo.product_of(product))
                for item, product in r.db.execute(
                    select(ItemRow, ProductRow)
                    .join(ProductRow, ItemRow.product_id == ProductRow.id)
                    .where(ItemRow.session_id == w.source_session_id)
                    .order_by(ItemRow.id)
                )
            ]
            for w in windows
        }
    copy = catalog.create_campaign(
        name=f"{REHEARSAL_MARK} {source.name}"[:200],
        theme=f"rehearsal of campaign {campaign_id}",
        starts_at=min(w.starts_at for w in windows),
        ends_at=max(w.ends_at for w in windows),
        payment_window_s=source.payment_window_s,
        rehearsal=True,
    )
    created = catalog.create_sessions(
        copy.id, [(sessions[w.source_session_id].name, w.starts_at, w.ends_at) for w in windows]
    )
    copied = []
    for window, session in zip(windows, created, strict=True):
        copied_items = []
        for item, product in items[window.source_session_id]:
            twin = catalog.create_product(
                sku=f"{product.sku[:80]}~r{copy.id}",
                name=product.name,
                list_price_cents=product.list_price_cents,
                stock=item.quota,
            )
            copied_items.append(
                CopiedItem(
                    item.id,
                    catalog.create_item(
                        session_id=session.id,
                        product_id=twin.id,
                        flash_price_cents=item.flash_price_cents,
                        quota=item.quota,
                        per_user_limit=item.per_user_limit,
                        coupons_allowed=item.coupons_allowed,
                        allow_above_list_price=True,  # the source's price was accepted when it was set
                    ),
                    twin,
                )
            )
        copied.append(CopiedSession(window.source_session_id, session, tuple(copied_items)))
    return RehearsalCopy(campaign_id, copy, tuple(copied))
