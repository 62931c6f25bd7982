"""The endpoint a payment provider calls; the body is verified byte for byte against its HMAC."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from starlette.concurrency import run_in_threadpool

from flashsale.api.deps import PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import PaymentAck

router = APIRouter(prefix="/payments", tags=["payments"])


@router.post("/{provider}/callback", responses=error_responses(400, 404, 409, 422))
async def payment_callback(
    provider: Annotated[str, Path(min_length=1, max_length=40)],
    request: Request,
    platform: PlatformDep,
    signature: Annotated[str, Header(alias="X-Signature", max_length=512)] = "",
) -> PaymentAck:
    """Settle an order from a signed provider notification; a repeated notification changes nothing."""
    body = await request.body()  # the raw bytes: re-encoding JSON would break the signature
    order = await run_in_threadpool(platform.orders.handle_payment_callback, provider, body, signature)
    return PaymentAck(order_id=order.id, status=order.status)
