"""The check every order-path test ends with: the stored orders and the ledger tell the same story."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from flashsale.bootstrap import Platform
from flashsale.domain.orders import OrderStatus
from flashsale.ledger import StockLevel
from flashsale.services.audit import audit_payments
from flashsale.store.repositories import from_epoch
from flashsale.store.tables import OrderRow


def assert_store_matches_ledger(platform: Platform, item_id: int, *, limit: int) -> StockLevel:
    """Check the ledger's counters against the item's order rows, and every buyer's limit; return the level.

    sold == PAID units, held == UNPAID units still inside their payment window, units are conserved,
    each buyer's live units are within `limit` and equal what the ledger counts, no order id or
    (user, request id) appears twice, and the payments journal nets to what every order says.
    """
    now = from_epoch(platform.deps.clock())
    level = platform.ledger.stock(item_id)
    assert level.conserved, level
    with platform.deps.uow() as uow:
        rows = uow.db.execute(
            select(
                OrderRow.id,
                OrderRow.user_id,
                OrderRow.request_id,
                OrderRow.qty,
                OrderRow.status,
                OrderRow.expires_at,
            ).where(OrderRow.item_id == item_id)
        ).all()
    assert len({r.id for r in rows}) == len(rows)
    assert len({(r.user_id, r.request_id) for r in rows}) == len(rows)
    live = [
        r
        for r in rows
        if r.status == OrderStatus.PAID or (r.status == OrderStatus.UNPAID and r.expires_at > now)
    ]
    assert level.sold == sum(r.qty for r in live if r.status == OrderStatus.PAID)
    assert level.held == sum(r.qty for r in live if r.status == OrderStatus.UNPAID)
    per_user = Counter[str]()
    for row in live:
        per_user[row.user_id] += row.qty
    for user, units in per_user.items():
        assert units <= limit, (user, units)
        assert platform.ledger.used_by(item_id, user) == units, user
    audit = audit_payments(platform.deps.sessions)
    assert audit.clean, audit.discrepancies[:5]
    return level
