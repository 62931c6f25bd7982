"""Keeping the ledger's terms in step with the catalogue: what an edit sends before it commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from flashsale.services.deps import Deps
from flashsale.store import repositories as repo
from flashsale.store.tables import ItemRow, SessionRow


def push_terms(
    deps: Deps,
    db: Session,
    *,
    item_id: int | None = None,
    session_id: int | None = None,
    campaign_id: int | None = None,
) -> None:
    """Send the edited items' new terms to the ledger before the edit commits.

    A ledger refusal (e.g. a quota below what is held and sold) raises, which rolls the edit back.
    The price book and the shop window hear of the edit once it is durable.
    """
    deps.prices.invalidate()
    deps.catalog_changed(db)
    query = select(ItemRow.id).join(SessionRow, ItemRow.session_id == SessionRow.id)
    if item_id is not None:
        query = query.where(ItemRow.id == item_id)
    if session_id is not None:
        query = query.where(SessionRow.id == session_id)
    if campaign_id is not None:
        query = query.where(SessionRow.campaign_id == campaign_id)
    wanted = set(db.scalars(query))
    for terms in repo.all_item_terms(db):
        if terms.item_id in wanted:
            deps.ledger.configure(terms)
