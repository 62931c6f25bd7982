"""Operator actions on orders."""

from __future__ import annotations

from fastapi import APIRouter

from flashsale.api.deps import OrderId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import OrderOut

router = APIRouter(prefix="/orders", tags=["admin: orders"])


@router.post("/{order_id}/refund", responses=error_responses(404, 409))
def refund_order(order_id: OrderId, platform: PlatformDep) -> OrderOut:
    """Refund a paid order: money back, and the unit and the shopper's quota back to the sale."""
    return OrderOut.model_validate(platform.orders.refund(order_id))
