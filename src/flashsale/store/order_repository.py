"""The orders repository: what the order path asks of the store, as domain `Order`s.

Services read and write orders only through `OrderRepository`; `SqlOrderRepository` answers it
with SQLAlchemy on one session (a unit of work's, or a read-only one). A fake in memory answers
it the same way in the service tier's unit tests (tests/fakes.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from flashsale.domain.orders import Order, OrderStatus
from flashsale.store import repositories as repo
from flashsale.store.tables import OrderRow

# Reads are plain Core on the session's connection, built once: an ORM load costs several times the
# query (identity map, instance state) and nothing here needs the ORM's objects.
_ORDERS = OrderRow.__table__
_BY_ID = select(_ORDERS).where(_ORDERS.c.id == bindparam("order_id"))
_BY_IDS = select(_ORDERS).where(_ORDERS.c.id.in_(bindparam("order_ids", expanding=True)))
_PAYMENT_REFS = select(_ORDERS.c.id, _ORDERS.c.payment_ref).where(
    _ORDERS.c.id.in_(bindparam("order_ids", expanding=True))
)
# The CAS of a payment, run as one executemany for a batch; who won is read back (see `mark_paid`).
_PAY = (
    update(OrderRow)
    .where(OrderRow.id == bindparam("order_id"), OrderRow.status == OrderStatus.UNPAID.value)
    .values(status=OrderStatus.PAID.value, paid_at=bindparam("at"), payment_ref=bindparam("ref"))
)
_BY_KEY = select(_ORDERS).where(
    _ORDERS.c.user_id == bindparam("user_id"), _ORDERS.c.request_id == bindparam("request_id")
)


class OrderRepository(Protocol):
    """Orders as the store holds them."""

    def get(self, order_id: str) -> Order | None:
        """The stored order, or None."""
        ...

    def get_many(self, order_ids: Iterable[str]) -> dict[str, Order]:
        """The stored orders among these ids, by id (ids not stored are left out)."""
        ...

    def by_key(self, user_id: str, request_id: str) -> Order | None:
        """The order the shopper placed with this idempotency key, or None."""
        ...

    def add_new(self, orders: Sequence[Order]) -> set[str]:
        """Store the orders not stored yet (by id or by key); return the ids that were new."""
        ...

    def save_transition(self, before: Order, after: Order) -> bool:
        """Store a move if the stored order still has `before`'s status (compare-and-set)."""
        ...

    def mark_paid(self, paid: Sequence[Order]) -> dict[str, Order]:
        """Store each order as paid (as `paid` holds it) if it is still UNPAID; return them as they now are.

        The compare-and-set of `save_transition` for a batch of payments. The orders this call
        paid are those that now carry their charge's reference: each charge has its own.
        """
        ...

    def for_user(self, user_id: str, *, limit: int, offset: int) -> list[Order]:
        """The shopper's orders, newest first."""
        ...

    def unpaid_due(self, now: datetime, limit: int) -> list[Order]:
        """UNPAID orders whose payment window ended by `now`."""
        ...

    def stored_ids(self, order_ids: Iterable[str]) -> set[str]:
        """Which of these ids are stored."""
        ...


class SqlOrderRepository:
    """`OrderRepository` on one SQLAlchemy session."""

    def __init__(self, db: Session) -> None:
        self.db = db

    def get(self, order_id: str) -> Order | None:
        row = self.db.connection().execute(_BY_ID, {"order_id": order_id}).first()
        return None if row is None else repo.order_of(row)

    def get_many(self, order_ids: Iterable[str]) -> dict[str, Order]:
        ids = list(order_ids)
        if not ids:
            return {}
        rows = self.db.connection().execute(_BY_IDS, {"order_ids": ids})
        return {row.id: repo.order_of(row) for row in rows}

    def by_key(self, user_id: str, request_id: str) -> Order | None:
        params = {"user_id": user_id, "request_id": request_id}
        row = self.db.connection().execute(_BY_KEY, params).first()
        return None if row is None else repo.order_of(row)

    def add_new(self, orders: Sequence[Order]) -> set[str]:
        return repo.insert_orders(self.db, orders)

    def save_transition(self, before: Order, after: Order) -> bool:
        return repo.save_transition(self.db, before, after)

    def mark_paid(self, paid: Sequence[Order]) -> dict[str, Order]:
        if not paid:
            return {}
        conn = self.db.connection()
        conn.execute(_PAY, [{"order_id": o.id, "at": o.paid_at, "ref": o.payment_ref} for o in paid])
        refs = dict(conn.execute(_PAYMENT_REFS, {"order_ids": [o.id for o in paid]}).all())
        # An order this call paid is stored as `paid` holds it; only the others are read whole.
        settled = {o.id: o for o in paid if refs.get(o.id) == o.payment_ref}
        settled.update(self.get_many(o.id for o in paid if o.id not in settled))
        return settled

    def for_user(self, user_id: str, *, limit: int, offset: int) -> list[Order]:
        rows = self.db.connection().execute(
            select(_ORDERS)
            .where(_ORDERS.c.user_id == user_id)
            .order_by(_ORDERS.c.created_at.desc(), _ORDERS.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [repo.order_of(r) for r in rows]

    def unpaid_due(self, now: datetime, limit: int) -> list[Order]:
        rows = self.db.connection().execute(
            select(_ORDERS)
            .where(_ORDERS.c.status == OrderStatus.UNPAID.value, _ORDERS.c.expires_at <= now)
            .limit(limit)
        )
        return [repo.order_of(r) for r in rows]

    def stored_ids(self, order_ids: Iterable[str]) -> set[str]:
        ids = list(order_ids)
        if not ids:
            return set()
        return set(self.db.scalars(select(OrderRow.id).where(OrderRow.id.in_(ids))))
