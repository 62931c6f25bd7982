"""A shopper's own orders: list, show, pay, cancel. Another shopper's order does not exist (404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response

from flashsale.api.deps import CurrentShopper, OptionalIdempotencyKey, OrderId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import OrderOut, PayIn
from flashsale.api.shop.purchases import REPLAYED_HEADER
from flashsale.services.checkout import Till
from flashsale.services.settlement import PayRequest

router = APIRouter(prefix="/orders", tags=["orders"], responses=error_responses(401, 422))


@router.get("")
def list_orders(
    shopper: CurrentShopper,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[OrderOut]:
    """List the shopper's orders, newest first."""
    orders = platform.orders.list_for_user(shopper, limit=limit, offset=offset)
    return [OrderOut.model_validate(o) for o in orders]


@router.get("/{order_id}", responses=error_responses(404))
def get_order(order_id: OrderId, shopper: CurrentShopper, platform: PlatformDep) -> OrderOut:
    """Show one of the shopper's orders."""
    return OrderOut.model_validate(platform.orders.get(order_id, shopper))


@router.post("/{order_id}/pay", response_model=OrderOut, responses=error_responses(404, 409, 503))
async def pay_order(
    request: Request,
    order_id: OrderId,
    shopper: CurrentShopper,
    key: OptionalIdempotencyKey = None,
    body: Annotated[PayIn | None, Body()] = None,
) -> Response:
    """Pay an unpaid order; the sandbox confirms through the same signed callback a provider sends.

    The order is charged at most once, however many pay requests arrive together: a second one
    waits for the first and answers the paid order, or 409 PAYMENT_IN_PROGRESS (with Retry-After)
    if the first is still running. Paying a paid order answers it unchanged. Pays that arrive
    together are settled in one batch (services/checkout.py `Till`).
    """
    provider = (body or PayIn()).provider
    till: Till = request.app.state.till
    paid = await till.pay(PayRequest(order_id, shopper, provider, key))
    return Response(
        OrderOut.model_validate(paid.order).model_dump_json(),
        headers={REPLAYED_HEADER: "true"} if paid.replayed else None,
        media_type="application/json",
    )


@router.post("/{order_id}/cancel", responses=error_responses(404, 409, 503))
def cancel_order(order_id: OrderId, shopper: CurrentShopper, platform: PlatformDep) -> OrderOut:
    """Cancel an unpaid order: its units and the shopper's quota go back on sale at once."""
    return OrderOut.model_validate(platform.orders.cancel(order_id, shopper))
