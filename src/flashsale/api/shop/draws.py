"""A shopper's draws: earn draws (check-in, share, free daily, a paid order), draw, see and redeem awards."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from flashsale.api.deps import CurrentShopper, IdempotencyKey, OrderId, PathId, PlatformDep
from flashsale.api.draw_schemas import (
    AwardOut,
    BalanceOut,
    DrawOut,
    GrantOut,
    PoolViewOut,
    PrizeLevelOut,
    PrizeOut,
    ShareIn,
    award_out,
    pool_out,
)
from flashsale.api.errors import error_responses
from flashsale.api.shop.purchases import REPLAYED_HEADER
from flashsale.services.draws import GrantOutcome

router = APIRouter(prefix="/draws", tags=["draws"], responses=error_responses(401, 404, 422))

AwardId = OrderId  # award ids are made as order ids are


def _grant(outcome: GrantOutcome) -> GrantOut:
    return GrantOut.model_validate(outcome)


@router.get("/pools/{pool_id}")
def show_pool(pool_id: PathId, shopper: CurrentShopper, platform: PlatformDep) -> PoolViewOut:
    """Show a prize pool: its prizes, and how many of each are left in total and today."""
    view = platform.draws.pool_view(pool_id)
    return PoolViewOut(
        pool=pool_out(view.pool),
        prizes=[PrizeOut.model_validate(p) for p in view.prizes],
        levels=[PrizeLevelOut.of(level) for level in view.levels],
        day=view.day,
    )


@router.get("/pools/{pool_id}/entitlements")
def my_entitlements(pool_id: PathId, shopper: CurrentShopper, platform: PlatformDep) -> BalanceOut:
    """How many draws the shopper has left in the pool."""
    return BalanceOut(pool_id=pool_id, balance=platform.draws.balance(pool_id, shopper))


@router.post("/pools/{pool_id}/draw", response_model=DrawOut, responses=error_responses(400, 409))
def draw(pool_id: PathId, shopper: CurrentShopper, key: IdempotencyKey, platform: PlatformDep) -> Response:
    """Spend one draw: a prize, or thanks for playing (`prize` null).

    Needs an `Idempotency-Key`: a retry with the same key answers the same outcome
    (`Idempotent-Replayed: true`) and spends nothing. 409 NO_ENTITLEMENT without a draw left; 409
    PRIZE_GONE when every prize is gone for today (the draw is kept).
    """
    outcome = platform.draws.draw(pool_id, shopper, key)
    body = DrawOut(
        award=award_out(outcome.award, outcome.prize), balance=outcome.balance, replayed=outcome.replayed
    )
    return Response(
        body.model_dump_json(),
        headers={REPLAYED_HEADER: "true"} if outcome.replayed else None,
        media_type="application/json",
    )


@router.post("/pools/{pool_id}/checkin", responses=error_responses(409))
def check_in(pool_id: PathId, shopper: CurrentShopper, platform: PlatformDep) -> GrantOut:
    """Check in for today (签到): draws, a bonus on streak days; 409 ALREADY_CHECKED_IN the second time."""
    return _grant(platform.draws.check_in(pool_id, shopper))


@router.post("/pools/{pool_id}/shares", responses=error_responses(409))
def share(pool_id: PathId, body: ShareIn, shopper: CurrentShopper, platform: PlatformDep) -> GrantOut:
    """Record a share (转发) for draws; the same share id again grants nothing (`replayed`).

    409 GRANT_LIMIT_REACHED past the day's share cap.
    """
    return _grant(platform.draws.share(pool_id, shopper, body.share_id))


@router.post("/pools/{pool_id}/daily", responses=error_responses(409))
def free_daily(pool_id: PathId, shopper: CurrentShopper, platform: PlatformDep) -> GrantOut:
    """Take today's free draw; asking again today grants nothing (`replayed`)."""
    return _grant(platform.draws.free_daily(pool_id, shopper))


@router.post("/pools/{pool_id}/orders/{order_id}", responses=error_responses(409))
def claim_order(
    pool_id: PathId, order_id: OrderId, shopper: CurrentShopper, platform: PlatformDep
) -> GrantOut:
    """Claim the draws a PAID order over the pool's threshold earns (购满抽奖), once per order."""
    return _grant(platform.draws.claim_order(pool_id, shopper, order_id))


@router.get("/awards")
def my_awards(
    shopper: CurrentShopper,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[AwardOut]:
    """The shopper's draws, newest first (thanks for playing included, `prize` null)."""
    return [award_out(a, p) for a, p in platform.draws.awards(shopper, limit=limit, offset=offset)]


@router.post("/awards/{award_id}/redeem", responses=error_responses(409))
def redeem(award_id: AwardId, shopper: CurrentShopper, platform: PlatformDep) -> AwardOut:
    """Redeem one of the shopper's prizes, once; 409 ALREADY_REDEEMED the second time.

    A goods prize comes as a zero-price order, already paid (`order_id`; listed in GET /orders). 409
    PRIZE_NOT_STOCKED while its product is not on sale (or the ledger's refusal, e.g. SOLD_OUT): the
    award stays redeemable.
    """
    award = platform.draws.redeem(award_id, shopper)
    return award_out(award, platform.draws.prize(award.prize_id))
