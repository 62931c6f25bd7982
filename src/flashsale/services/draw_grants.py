"""Draws granted automatically for paid orders, from the order outbox (`OrderPaid` events).

Every expiry-sweeper pass reads the OrderPaid events past its cursor and grants each qualifying
order its draws in every pool with a PAID_ORDER rule, through `DrawService.claim_order`: the same
grant key (`order:<id>`) as the shopper's own claim, so whichever comes first grants, and the
other is answered as a replay. Exactly once per (pool, order) rests on that key (the ledger's and
`draw_grants`'s); the cursor only saves work. Like the messaging cursor it re-reads the last
`REREAD_IDS` events each pass: on PostgreSQL event ids may commit out of order, and a re-read
event whose grant exists costs nothing but the one query that finds it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flashsale.domain.draws import EntitlementSource
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.events import OrderPaid
from flashsale.domain.orders import OrderStatus
from flashsale.services.deps import Deps
from flashsale.services.draws import DrawService
from flashsale.store import draw_repository as repo
from flashsale.store.repositories import insert_ignoring_duplicates
from flashsale.store.tables import DrawGrantRow, EventCursorRow, EventRow, OrderRow

CURSOR = "draw-grants"
REREAD_IDS = 256
# What a grant may meet that is no fault: the order was refunded (no longer PAID), or the rule's
# daily cap of order grants is used up. The order is skipped; nothing is retried.
SKIPPED = frozenset({ErrorCode.NO_ENTITLEMENT, ErrorCode.GRANT_LIMIT_REACHED, ErrorCode.ORDER_NOT_FOUND})


class PaidOrderGrants:
    """Grants the draws of paid orders as their OrderPaid events arrive."""

    def __init__(self, deps: Deps, draws: Callable[[], DrawService]) -> None:
        self.deps = deps
        self.draws = draws  # called only when there is a grant to give: the draw ledger is built lazily

    def run(self, batch: int = 500) -> int:
        """Grant the draws of the paid orders the outbox recorded since the last pass; return how many."""
        with self.deps.read() as r:
            cursor = r.db.get(EventCursorRow, CURSOR)
            last = 0 if cursor is None else cursor.last_id
            events = r.db.execute(
                select(EventRow.id, EventRow.order_id, EventRow.payload)
                .where(EventRow.id > last - REREAD_IDS, EventRow.kind == OrderPaid.__name__)
                .order_by(EventRow.id)
                .limit(batch)
            ).all()
            rules = [
                (pool.id, pool.rules[EntitlementSource.PAID_ORDER])
                for pool in repo.all_pools(r.db)
                if EntitlementSource.PAID_ORDER in pool.rules
            ]
            wanted = {
                (pool_id, str(e.payload["user_id"]), e.order_id)
                for e in events
                for pool_id, rule in rules
                if rule.order_qualifies(int(e.payload["amount_cents"]))
            }
            granted = self._granted(r.db, wanted)
            paid = set(
                r.db.scalars(
                    select(OrderRow.id).where(
                        OrderRow.id.in_({order_id for _, _, order_id in wanted - granted}),
                        OrderRow.status == OrderStatus.PAID.value,
                    )
                )
            )
        given = 0
        for pool_id, user_id, order_id in sorted(wanted - granted):
            if order_id not in paid:
                continue
            try:
                outcome = self.draws().claim_order(pool_id, user_id, order_id)
                given += outcome.granted > 0 and not outcome.replayed  # a racing pass's grant is a replay
            except FlashSaleError as exc:
                if exc.code not in SKIPPED:
                    raise
        newest = max((e.id for e in events), default=last)
        if newest > last:
            self._advance(newest)
        return given

    @staticmethod
    def _granted(db: Session, wanted: set[tuple[int, str, str]]) -> set[tuple[int, str, str]]:
        """Those of `wanted` (pool, user, order) whose order grant is stored already."""
        if not wanted:
            return set()
        keys = {f"order:{order_id}" for _, _, order_id in wanted}
        rows = db.execute(
            select(DrawGrantRow.pool_id, DrawGrantRow.user_id, DrawGrantRow.grant_key).where(
                DrawGrantRow.grant_key.in_(keys)
            )
        ).all()
        return {(pool_id, user_id, key.removeprefix("order:")) for pool_id, user_id, key in rows}

    def _advance(self, newest: int) -> None:
        """Move the cursor up to `newest`, never back (passes race: the comparison is in the statement)."""
        with self.deps.uow() as uow:
            conn = uow.db.connection()
            conn.execute(insert_ignoring_duplicates(uow.db, EventCursorRow), [{"name": CURSOR, "last_id": 0}])
            conn.execute(
                update(EventCursorRow)
                .where(EventCursorRow.name == CURSOR, EventCursorRow.last_id < newest)
                .values(last_id=newest)
            )
            uow.commit()
