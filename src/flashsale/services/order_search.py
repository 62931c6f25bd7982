"""Operators' reads of orders and of the payments journal: filtered, newest first, paginated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from flashsale.domain.orders import Order, OrderStatus
from flashsale.domain.payments import Payment
from flashsale.store import repositories as repo
from flashsale.store.tables import OrderRow, PaymentRow

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Every field narrows the search; None leaves it open. Times bound `created_at`, [since, until)."""

    status: OrderStatus | None = None
    user_id: str | None = None
    item_id: int | None = None
    order_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def _order_conditions(f: OrderFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.status is not None:
        conditions.append(OrderRow.status == f.status.value)
    if f.user_id is not None:
        conditions.append(OrderRow.user_id == f.user_id)
    if f.item_id is not None:
        conditions.append(OrderRow.item_id == f.item_id)
    if f.order_id is not None:
        conditions.append(OrderRow.id == f.order_id)
    return conditions


class OrderSearch:
    """Read-only: never changes an order, never asks the ledger."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def orders(self, f: OrderFilter, *, limit: int, offset: int) -> Page[Order]:
        """Orders matching `f`, newest first. An UNPAID order past its window is shown as stored."""
        conditions = _order_conditions(f)
        if f.since is not None:
            conditions.append(OrderRow.created_at >= f.since)
        if f.until is not None:
            conditions.append(OrderRow.created_at < f.until)
        query = select(OrderRow).where(*conditions)
        order_by = (OrderRow.created_at.desc(), OrderRow.id.desc())
        return self._page(query, order_by, repo.order_of, limit=limit, offset=offset)

    def payments(self, f: OrderFilter, *, kind: str | None = None, limit: int, offset: int) -> Page[Payment]:
        """Journal entries of the orders matching `f`, newest first; times bound the entry's own time."""
        conditions = _order_conditions(f)
        if kind is not None:
            conditions.append(PaymentRow.kind == kind)
        if f.since is not None:
            conditions.append(PaymentRow.created_at >= f.since)
        if f.until is not None:
            conditions.append(PaymentRow.created_at < f.until)
        query = select(PaymentRow).join(OrderRow, OrderRow.id == PaymentRow.order_id).where(*conditions)
        order_by = (PaymentRow.created_at.desc(), PaymentRow.id.desc())
        return self._page(query, order_by, repo.payment_of, limit=limit, offset=offset)

    def _page(
        self, query: Select[Any], order_by: tuple[Any, ...], convert: Any, *, limit: int, offset: int
    ) -> Page[Any]:
        with self.sessions() as db:
            total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = db.scalars(query.order_by(*order_by).limit(limit).offset(offset)).all()
            return Page([convert(r) for r in rows], int(total), limit, offset)
