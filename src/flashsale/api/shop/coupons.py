"""A shopper's coupons: claim one of a wave (idempotent), redeem a single-use code, list them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from flashsale.api.coupon_schemas import ClaimIn, CodeIn, CouponOut
from flashsale.api.deps import CurrentShopper, IdempotencyKey, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.shop.purchases import REPLAYED_HEADER
from flashsale.services.coupons import Claimed

router = APIRouter(prefix="/coupons", tags=["coupons"], responses=error_responses(401, 422))

_CLAIM_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "A fresh coupon."},
    200: {
        "model": CouponOut,
        "description": "A replay (header `Idempotent-Replayed: true`): that coupon now.",
    },
    **error_responses(400, 404, 409),
}


def _claimed(claimed: Claimed) -> Response:
    return Response(
        CouponOut.of(claimed).model_dump_json(),
        status_code=200 if claimed.replayed else 201,
        headers={REPLAYED_HEADER: "true"} if claimed.replayed else None,
        media_type="application/json",
    )


@router.post("/claims", status_code=201, response_model=CouponOut, responses=_CLAIM_RESPONSES)
def claim(body: ClaimIn, shopper: CurrentShopper, key: IdempotencyKey, platform: PlatformDep) -> Response:
    """Claim one coupon of a wave. A retry with the same Idempotency-Key answers the same coupon (200).

    Refusals (409): COUPON_NOT_STARTED, COUPON_CLAIM_CLOSED, COUPON_LIMIT, COUPON_ISSUE_EXHAUSTED;
    404 UNKNOWN_COUPON for a wave that does not exist or is claimed with codes.
    """
    return _claimed(platform.coupons.claim(user_id=shopper, wave_id=body.wave_id, request_id=key))


@router.post("/codes", status_code=201, response_model=CouponOut, responses=_CLAIM_RESPONSES)
def claim_code(body: CodeIn, shopper: CurrentShopper, platform: PlatformDep) -> Response:
    """Turn a single-use code into a coupon. The same shopper again answers the same coupon (200);
    another shopper hears 409 COUPON_USED, an unknown code 404 UNKNOWN_COUPON."""
    return _claimed(platform.coupons.claim_code(user_id=shopper, code=body.code))


@router.get("")
def my_coupons(shopper: CurrentShopper, platform: PlatformDep) -> list[CouponOut]:
    """List the shopper's coupons, oldest claim first, in every state."""
    return [CouponOut.of(owned) for owned in platform.coupons.my_coupons(shopper)]
