"""Buying: the route only turns the request into a `Buy` command; the ledger decides."""

from __future__ import annotations

from fastapi import APIRouter, Response

from flashsale.api.deps import CurrentShopper, IdempotencyKey, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import OrderOut, PurchaseIn
from flashsale.services.orders import Buy

router = APIRouter(prefix="/purchases", tags=["purchases"])

REPLAYED_HEADER = "Idempotent-Replayed"


@router.post("", status_code=201, responses=error_responses(400, 401, 409, 422))
def purchase(
    shopper: CurrentShopper, key: IdempotencyKey, body: PurchaseIn, platform: PlatformDep, response: Response
) -> OrderOut:
    """Hold units for the shopper and open an unpaid order that must be paid within the window.

    A retry with the same Idempotency-Key returns the same order (with `Idempotent-Replayed: true`)
    and never holds twice; the same key with another item or quantity is refused with 422.
    """
    result = platform.orders.buy(
        Buy(user_id=shopper, item_id=body.item_id, qty=body.quantity, request_id=key)
    )
    if result.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return OrderOut.model_validate(result.order)
