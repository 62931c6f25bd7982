"""Referral for shoppers: your invite code, binding someone's code, your referral and points."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import Field

from flashsale.api.deps import CurrentShopper, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import In, Out
from flashsale.domain.referral import CODE_LENGTH, BindingStatus

router = APIRouter(tags=["referral"], responses=error_responses(401, 422))


class InviteCodeOut(Out):
    code: str


class BindIn(In):
    code: Annotated[
        str,
        Field(min_length=CODE_LENGTH, max_length=CODE_LENGTH + 8, description="An invite code (any case)"),
    ]


class ReferralOut(Out):
    inviter_code: str
    status: BindingStatus


class RewardOut(Out):
    points: int
    coupon_template: str | None
    order_id: str | None


class ReferralStateOut(Out):
    code: str
    referral: ReferralOut | None
    points: int
    rewards: list[RewardOut]


@router.get("/referral/code")
def my_invite_code(shopper: CurrentShopper, platform: PlatformDep) -> InviteCodeOut:
    """The shopper's invite code (made on first ask, the same ever after)."""
    return InviteCodeOut(code=platform.referrals.code_for(shopper))


@router.post("/referral/bind", responses=error_responses(404, 409))
def bind_invite_code(body: BindIn, shopper: CurrentShopper, platform: PlatformDep) -> ReferralOut:
    """Bind an invite code, once, before the first order (a repeat of the same code answers it again).

    When the shopper's first paid order has stayed paid through the refund window, both the shopper
    and the code's owner get the referral reward, once; refunded within it, neither does. Refused:
    409 ALREADY_BOUND, NOT_FIRST_ORDER; 422 SELF_REFERRAL, REFERRAL_LOOP; 404 for an unknown code.
    """
    bound = platform.referrals.bind(shopper, body.code)
    return ReferralOut(inviter_code=bound.code, status=bound.status)


@router.get("/referral")
def my_referral(shopper: CurrentShopper, platform: PlatformDep) -> ReferralStateOut:
    """The shopper's code, the code they bound and how it stands, their points and reward entries."""
    service = platform.referrals
    bound = service.referral_of(shopper)
    return ReferralStateOut(
        code=service.code_for(shopper),
        referral=None if bound is None else ReferralOut(inviter_code=bound.code, status=bound.status),
        points=service.points(shopper),
        rewards=[RewardOut.model_validate(r) for r in service.rewards(shopper)],
    )
