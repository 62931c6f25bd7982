"""Load a campaign's review (domain/review.py) from the store, on its read-only side."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from flashsale.domain.review import CampaignReview, review_campaign
from flashsale.store import repositories as repo
from flashsale.store.tables import ItemRow, OrderRow, ProductRow, SessionRow
from flashsale.store.uow import ReadUnit


def load_review(reads: sessionmaker[Session], campaign_id: int) -> CampaignReview:
    """Read the campaign, its sessions, items and every order of them; review them (NOT_FOUND if none).

    `reads`: sessions that only read (a serving process's read engine, or the CLI's own), so a
    review runs beside a live sale.
    """
    with ReadUnit(reads) as r:
        campaign = repo.load_campaign(r.db, campaign_id)
        sessions = [
            repo.session_of(row)
            for row in r.db.scalars(select(SessionRow).where(SessionRow.campaign_id == campaign_id))
        ]
        items = [
            (repo.item_of(item), repo.product_of(product))
            for item, product in r.db.execute(
                select(ItemRow, ProductRow)
                .join(ProductRow, ItemRow.product_id == ProductRow.id)
                .where(ItemRow.session_id.in_([s.id for s in sessions]))
                .order_by(ItemRow.id)
            )
        ]
        orders = [
            repo.order_of(row)
            for row in r.db.scalars(select(OrderRow).where(OrderRow.item_id.in_([i.id for i, _ in items])))
        ]
    return review_campaign(campaign, sessions, items, orders)
