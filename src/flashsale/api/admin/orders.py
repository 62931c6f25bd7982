"""Operator actions on orders and money: search orders and the payments journal, audit, refund."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from flashsale.api.deps import OrderId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import MAX_INT32, AuditOut, Moment, OrderOut, OrderPage, PaymentPage
from flashsale.domain.orders import OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.services.order_search import OrderFilter

router = APIRouter(tags=["admin: orders"])

MAX_PAGE = 200


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


@router.get("/orders")
def list_orders(
    platform: PlatformDep,
    status: Annotated[OrderStatus | None, Query(description="Only orders in this status")] = None,
    user_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    item_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    since: Annotated[Moment | None, Query(description="Created at or after (ISO 8601 with zone)")] = None,
    until: Annotated[Moment | None, Query(description="Created before (ISO 8601 with zone)")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> OrderPage:
    """Search orders, newest first; `total` counts every match, `items` is one page of them."""
    f = OrderFilter(status=status, user_id=user_id, item_id=item_id, since=since, until=until)
    page = platform.order_search.orders(f, limit=limit, offset=offset)
    return OrderPage.model_validate(page, from_attributes=True)


@router.get("/payments")
def list_payments(
    platform: PlatformDep,
    order_id: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    user_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    item_id: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
    status: Annotated[OrderStatus | None, Query(description="Only entries of orders in this status")] = None,
    kind: Annotated[Literal["charge", "refund", "rebate"] | None, Query()] = None,
    since: Annotated[Moment | None, Query(description="Recorded at or after (ISO 8601 with zone)")] = None,
    until: Annotated[Moment | None, Query(description="Recorded before (ISO 8601 with zone)")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PaymentPage:
    """Search the payments journal (charges and refunds), newest first."""
    f = OrderFilter(
        status=status, user_id=user_id, item_id=item_id, order_id=order_id, since=since, until=until
    )
    page = platform.order_search.payments(f, kind=kind, limit=limit, offset=offset)
    return PaymentPage.model_validate(page, from_attributes=True)


@router.get("/payments/audit")
def audit(platform: PlatformDep) -> AuditOut:
    """Check every order's charges − refunds − rebates equal what its status says.

    PAID: its total less the rebate it won as a free order; any other status: 0.
    """
    return AuditOut.model_validate(audit_payments(platform.order_search.sessions), from_attributes=True)


@router.post("/orders/{order_id}/refund", responses=error_responses(404, 409))
def refund_order(order_id: OrderId, platform: PlatformDep) -> OrderOut:
    """Refund a paid order: money back, and the unit and the shopper's quota back to the sale."""
    return OrderOut.model_validate(platform.orders.refund(order_id))


class RetentionOut(BaseModel):
    """What one retention pass did."""

    forgotten: int  # finished holds (and their request keys) the ledger forgot
    written: int  # orders written first because the order writer had not stored them yet
    sold: int  # sold holds (and their request keys) the ledger forgot


@router.post("/ledger/retention")
def forget_finished_holds(platform: PlatformDep) -> RetentionOut:
    """Forget finished holds older than FLASHSALE_LEDGER_RETENTION_HOURS now, and sold ones older than
    FLASHSALE_LEDGER_SOLD_RETENTION_HOURS (servers do it periodically).

    Their orders stay in the store and answer a replay of their Idempotency-Key (and a refund of a
    paid one); held holds stay.
    """
    done = platform.retention.forget_finished()
    return RetentionOut(forgotten=done.forgotten, written=done.written, sold=done.sold)
