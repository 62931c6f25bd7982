"""Prize pools, their prizes and scheduled draws (operators)."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.draw_schemas import (
    PoolIn,
    PoolOut,
    PoolViewOut,
    PrizeIn,
    PrizeLevelOut,
    PrizeOut,
    PrizePatch,
    ScheduledDrawIn,
    ScheduledDrawOut,
    pool_out,
    schedule_out,
)
from flashsale.api.errors import error_responses
from flashsale.api.schemas import domain_value
from flashsale.domain.draws import EntitlementRule

router = APIRouter(prefix="/draws", tags=["admin: draws"])


@router.post("/pools", status_code=201)
def create_pool(body: PoolIn, platform: PlatformDep) -> PoolOut:
    """Create a prize pool (lottery, scratch card, golden egg) with its entitlement rules, one per source."""
    rules = [domain_value(partial(EntitlementRule, **r.model_dump())) for r in body.rules]
    pool = platform.draws.create_pool(
        name=body.name,
        game=body.game,
        thanks_weight=body.thanks_weight,
        utc_offset_min=body.utc_offset_min,
        rules=rules,
    )
    return pool_out(pool)


@router.get("/pools")
def list_pools(platform: PlatformDep) -> list[PoolOut]:
    """List every prize pool."""
    return [pool_out(pool) for pool in platform.draws.list_pools()]


@router.get("/pools/{pool_id}", responses=error_responses(404))
def show_pool(pool_id: PathId, platform: PlatformDep) -> PoolViewOut:
    """Show a pool with its prizes and how much of each was awarded, in total and today."""
    view = platform.draws.pool_view(pool_id)
    return PoolViewOut(
        pool=pool_out(view.pool),
        prizes=[PrizeOut.model_validate(p) for p in view.prizes],
        levels=[PrizeLevelOut.of(level) for level in view.levels],
        day=view.day,
    )


@router.post("/pools/{pool_id}/prizes", status_code=201, responses=error_responses(404))
def add_prize(pool_id: PathId, body: PrizeIn, platform: PlatformDep) -> PrizeOut:
    """Add a prize: a coupon (its template id), goods (a product id) or points; drawable at once."""
    return PrizeOut.model_validate(platform.draws.add_prize(pool_id, **body.model_dump()))


@router.patch("/prizes/{prize_id}", responses=error_responses(404, 409))
def update_prize(prize_id: PathId, body: PrizePatch, platform: PlatformDep) -> PrizeOut:
    """Change a prize's weight, stock or daily cap; 409 QUOTA_BELOW_COMMITTED for a stock below its awards."""
    changes = body.changes()
    cap = changes.pop("daily_cap", -1)
    return PrizeOut.model_validate(platform.draws.update_prize(prize_id, daily_cap=cap, **changes))


@router.post("/scheduled", status_code=201, responses=error_responses(404))
def schedule(body: ScheduledDrawIn, platform: PlatformDep) -> ScheduledDrawOut:
    """Plan a draw: at `run_at`, `winners` winners of the prize among buyers of the day over the threshold."""
    return schedule_out(platform.draw_schedule.schedule(**body.model_dump()))


@router.get("/scheduled")
def list_scheduled(platform: PlatformDep) -> list[ScheduledDrawOut]:
    """List scheduled draws, with the record (seed, entrants, winners) of those that ran."""
    return [schedule_out(d) for d in platform.draw_schedule.all()]


@router.get("/scheduled/{draw_id}", responses=error_responses(404))
def show_scheduled(draw_id: PathId, platform: PlatformDep) -> ScheduledDrawOut:
    """Show a scheduled draw; `verified`: the recorded winners follow from the recorded seed and entrants."""
    return schedule_out(platform.draw_schedule.get(draw_id))


@router.post("/scheduled/{draw_id}/run", responses=error_responses(404, 409))
def run_scheduled(draw_id: PathId, platform: PlatformDep) -> ScheduledDrawOut:
    """Run a due scheduled draw now; 409 CONFLICT before its time or when it ran already."""
    return schedule_out(platform.draw_schedule.run(draw_id))
