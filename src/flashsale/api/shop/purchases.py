"""Buying: the route only turns the request into a `Buy` command; the ledger decides."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import State

from flashsale.api.deps import CurrentShopper, IdempotencyKey
from flashsale.api.errors import error_responses
from flashsale.api.metrics import Metrics
from flashsale.api.schemas import OrderOut, PurchaseIn
from flashsale.domain.errors import FlashSaleError
from flashsale.logs import fields
from flashsale.services.admission_gate import AdmissionGate
from flashsale.services.checkout import Checkout
from flashsale.services.orders import Buy, Purchase

log = logging.getLogger(__name__)

router = APIRouter(prefix="/purchases", tags=["purchases"])

REPLAYED_HEADER = "Idempotent-Replayed"
DEVICE_HEADER = "Device-Id"  # the client's device fingerprint, for the campaign's per-device hold caps
MAX_DEVICE_ID_LENGTH = 200
_REPLAYED = {REPLAYED_HEADER: "true"}

_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "A fresh grant: the units are held for you until `expires_at`."},
    200: {
        "model": OrderOut,
        "description": "A replay of an earlier Idempotency-Key (header `Idempotent-Replayed: true`): "
        "that order as it is now, in whatever status it reached (UNPAID, PAID, REFUNDED, CANCELLED, "
        "EXPIRED). Nothing new is held.",
    },
    **error_responses(400, 401, 403, 409, 422, 429, 503),
}


@router.post("", status_code=201, response_model=OrderOut, responses=_RESPONSES)
async def purchase(
    shopper: CurrentShopper, key: IdempotencyKey, body: PurchaseIn, request: Request
) -> Response:
    """Hold units for the shopper and open an unpaid order that must be paid within the window.

    Only a fresh grant answers 201 Created. A retry with the same Idempotency-Key answers 200 OK
    with `Idempotent-Replayed: true` and the order as it is now (perhaps PAID, CANCELLED or
    EXPIRED), and never holds twice: a client that reads only the status code cannot mistake a
    replay, say of an order that has since expired, for a unit it holds now. The same key with
    another item or quantity is refused with 422.
    """
    cmd = Buy(user_id=shopper, item_id=body.item_id, qty=body.quantity, request_id=key)
    client = request.client.host if request.client else None
    device = device_id(request.headers.get(DEVICE_HEADER))
    answer = await decide(
        request.app.state, cmd, client, body.sale_token, device=device, rehearsal_pass=body.rehearsal_pass
    )
    return purchase_response(answer)


def device_id(value: str | None) -> str | None:
    """The `Device-Id` header's fingerprint, or None when absent or over the length a fingerprint has."""
    return value if value and len(value) <= MAX_DEVICE_ID_LENGTH else None


def purchase_response(result: Purchase) -> Response:
    """201 and the order for a fresh grant; for a replay 200, `Idempotent-Replayed: true`, the order now."""
    # Serialised here, once: returning the model would make FastAPI validate and encode it again.
    return Response(
        OrderOut.model_validate(result.order).model_dump_json(),
        status_code=200 if result.replayed else 201,
        headers=_REPLAYED if result.replayed else None,
        media_type="application/json",
    )


async def decide(
    state: State,
    cmd: Buy,
    client: str | None,
    sale_token: str | None = None,
    *,
    device: str | None = None,
    rehearsal_pass: str | None = None,
) -> Purchase:
    """Admit, then buy through the app's checkout; count the outcome and the wait, and log it if asked.

    `client` is the caller's address, for the per-client rate limits and live-hold caps; `device`
    the `Device-Id` fingerprint, for the per-device caps; `sale_token` the body's, for an item bought
    on the hidden path; `rehearsal_pass` the body's, for a rehearsal copy's item
    (services/admission_gate.py decides them all).
    """
    checkout: Checkout = state.checkout
    metrics: Metrics = state.metrics
    gate: AdmissionGate = state.gate
    started = time.perf_counter()
    outcome, order_id = "cancelled", None  # unless the decision arrives, or fails, below
    try:
        admitted = gate.admit_purchase(cmd, client, sale_token, device, rehearsal_pass)
        try:
            result = await checkout.buy(admitted.cmd)
        except BaseException:
            gate.decided(admitted, None)
            raise
        gate.decided(admitted, result)
    except FlashSaleError as exc:
        outcome = exc.code.value
        raise
    except Exception:
        outcome = "error"  # the store or the ledger failed; the error handlers answer it
        raise
    else:
        outcome, order_id = ("replayed" if result.replayed else "created"), result.order.id
        return result
    finally:
        seconds = time.perf_counter() - started
        metrics.record_purchase(outcome, seconds)
        if state.log_requests and log.isEnabledFor(logging.INFO):
            log.info(
                "purchase",
                extra=fields(
                    outcome=outcome,
                    item_id=cmd.item_id,
                    qty=cmd.qty,
                    order_id=order_id,
                    decision_ms=round(seconds * 1e3, 3),
                ),
            )
