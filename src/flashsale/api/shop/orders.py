"""A shopper's own orders: list, show, pay, cancel. Another shopper's order does not exist (404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from flashsale.api.deps import CurrentShopper, OptionalIdempotencyKey, OrderId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import OrderOut, Out, PayIn
from flashsale.api.shop.purchases import REPLAYED_HEADER
from flashsale.bootstrap import Platform
from flashsale.domain.free_orders import WinStatus
from flashsale.domain.orders import Order
from flashsale.services.checkout import Cancels, Till
from flashsale.services.orders import Cancel
from flashsale.services.settlement import PayRequest

router = APIRouter(prefix="/orders", tags=["orders"], responses=error_responses(401, 422))


class FreeOrderOut(Out):
    """The order was free (免单): it was paid `slot`-th under a free-order rule."""

    slot: int
    rebate_cents: int
    status: WinStatus  # pending: the rebate is on its way; rebated: the provider has it


class ShopOrderOut(OrderOut):
    free_order: FreeOrderOut | None = None


def shop_orders(platform: Platform, orders: list[Order]) -> list[ShopOrderOut]:
    """The orders as their shopper sees them, each with its free-order win if it had one."""
    wins = platform.free_orders.wins_of(o.id for o in orders)
    out = []
    for order in orders:
        win = wins.get(order.id)
        free = (
            None
            if win is None
            else FreeOrderOut(slot=win.slot, rebate_cents=win.rebate_cents, status=win.status)
        )
        out.append(ShopOrderOut.model_validate(order).model_copy(update={"free_order": free}))
    return out


@router.get("")
def list_orders(
    shopper: CurrentShopper,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[ShopOrderOut]:
    """List the shopper's orders, newest first (a free order says so in `free_order`)."""
    return shop_orders(platform, platform.orders.list_for_user(shopper, limit=limit, offset=offset))


@router.get("/{order_id}", responses=error_responses(404))
def get_order(order_id: OrderId, shopper: CurrentShopper, platform: PlatformDep) -> ShopOrderOut:
    """Show one of the shopper's orders; `free_order` tells whether its payment won a free order."""
    return shop_orders(platform, [platform.orders.get(order_id, shopper)])[0]


@router.post("/{order_id}/pay", response_model=ShopOrderOut, responses=error_responses(404, 409, 503))
async def pay_order(
    request: Request,
    order_id: OrderId,
    shopper: CurrentShopper,
    platform: PlatformDep,
    key: OptionalIdempotencyKey = None,
    body: Annotated[PayIn | None, Body()] = None,
) -> Response:
    """Pay an unpaid order; the sandbox confirms through the same signed callback a provider sends.

    The order is charged at most once, however many pay requests arrive together: a second one
    waits for the first and answers the paid order, or 409 PAYMENT_IN_PROGRESS (with Retry-After)
    if the first is still running. Paying a paid order answers it unchanged. A payment that won a
    free order says so in `free_order`, its rebate sent (or on its way). Pays that arrive together
    are settled in one batch (services/checkout.py `Till`).
    """
    provider = (body or PayIn()).provider
    till: Till = request.app.state.till
    paid = await till.pay(PayRequest(order_id, shopper, provider, key))
    (out,) = await run_in_threadpool(shop_orders, platform, [paid.order])  # a read: off the event loop
    return Response(
        out.model_dump_json(),
        headers={REPLAYED_HEADER: "true"} if paid.replayed else None,
        media_type="application/json",
    )


@router.post("/{order_id}/cancel", responses=error_responses(404, 409, 503))
async def cancel_order(request: Request, order_id: OrderId, shopper: CurrentShopper) -> OrderOut:
    """Cancel an unpaid order: its units and the shopper's quota go back on sale at once. Cancels
    that arrive together are stored in one batch (services/checkout.py `Cancels`)."""
    cancels: Cancels = request.app.state.cancels
    return OrderOut.model_validate(await cancels.cancel(Cancel(order_id, shopper)))
