"""Buying: the route only turns the request into a `Buy` command; the ledger decides."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from flashsale.api.deps import CurrentShopper, IdempotencyKey
from flashsale.api.errors import error_responses
from flashsale.api.schemas import OrderOut, PurchaseIn
from flashsale.api.shop.checkout import Checkout
from flashsale.services.orders import Buy

router = APIRouter(prefix="/purchases", tags=["purchases"])

REPLAYED_HEADER = "Idempotent-Replayed"


@router.post("", status_code=201, response_model=OrderOut, responses=error_responses(400, 401, 409, 422))
async def purchase(
    shopper: CurrentShopper, key: IdempotencyKey, body: PurchaseIn, request: Request
) -> Response:
    """Hold units for the shopper and open an unpaid order that must be paid within the window.

    A retry with the same Idempotency-Key returns the same order (with `Idempotent-Replayed: true`)
    and never holds twice; the same key with another item or quantity is refused with 422.
    """
    checkout: Checkout = request.app.state.checkout
    result = await checkout.buy(Buy(user_id=shopper, item_id=body.item_id, qty=body.quantity, request_id=key))
    # Serialised here, once: returning the model would make FastAPI validate and encode it again.
    return Response(
        OrderOut.model_validate(result.order).model_dump_json(),
        status_code=201,
        headers={REPLAYED_HEADER: "true"} if result.replayed else None,
        media_type="application/json",
    )
