"""Request and response bodies of the draw routes (shopper and operator); see api/schemas.py for the rules."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from pydantic import Field

from flashsale.api.schemas import AdminIn, Cents, Id, In, Moment, Name, Out, PatchIn, UtcTime
from flashsale.domain.draw_schedule import ScheduledDraw, ScheduleStatus
from flashsale.domain.draws import (
    MAX_DRAWS_PER_GRANT,
    MAX_STOCK,
    MAX_WEIGHT,
    Award,
    AwardStatus,
    EntitlementSource,
    Game,
    Pool,
    Prize,
    PrizeKind,
)
from flashsale.draws.contract import PrizeLevel

Weight = Annotated[int, Field(ge=0, le=MAX_WEIGHT, description="Odds weight: chance = weight / total weight")]
Stock = Annotated[int, Field(ge=0, le=MAX_STOCK)]
Draws = Annotated[int, Field(ge=1, le=MAX_DRAWS_PER_GRANT)]
ShareId = Annotated[
    str, Field(min_length=1, max_length=200, description="The share's id; a replay grants nothing")
]


# -- operator ----------------------------------------------------------------------------------------
class RuleIn(AdminIn):
    source: Annotated[EntitlementSource, Field(strict=False)]  # a JSON string names the member
    draws: Draws = 1
    daily_cap: Annotated[
        int, Field(ge=1, le=10_000, description="Grants from this source per shopper a day")
    ] = 1
    min_order_cents: Annotated[
        Cents, Field(description="paid_order: the least order total that earns draws")
    ] = 0
    streak_bonus_every: Annotated[int, Field(ge=0, le=365, description="checkin: a bonus every n-th day")] = 0
    streak_bonus_draws: Annotated[int, Field(ge=0, le=MAX_DRAWS_PER_GRANT)] = 0


class PoolIn(AdminIn):
    name: Name
    game: Annotated[Game, Field(strict=False)] = Game.LOTTERY
    thanks_weight: Annotated[Weight, Field(description="Odds weight of thanks for playing")] = 0
    utc_offset_min: Annotated[
        int, Field(ge=-840, le=840, description="The pool's time zone: daily caps reset at its midnight")
    ] = 480
    rules: Annotated[list[RuleIn], Field(default_factory=list, max_length=len(EntitlementSource))]


class RuleOut(Out):
    source: EntitlementSource
    draws: int
    daily_cap: int
    min_order_cents: int
    streak_bonus_every: int
    streak_bonus_draws: int


class PoolOut(Out):
    id: int
    name: str
    game: Game
    thanks_weight: int
    utc_offset_min: int
    rules: list[RuleOut]


class PrizeIn(AdminIn):
    name: Name
    kind: Annotated[PrizeKind, Field(strict=False)]
    weight: Weight
    stock: Stock
    daily_cap: Stock | None = None
    coupon_template_id: Annotated[Id | None, Field(description="coupon: the coupon template it issues")] = (
        None
    )
    product_id: Annotated[Id | None, Field(description="goods: the product it gives")] = None
    points: Annotated[Id | None, Field(description="points: how many")] = None


class PrizePatch(PatchIn):
    weight: Weight | None = None
    stock: Stock | None = None
    daily_cap: Stock | None = None


class PrizeOut(Out):
    id: int
    pool_id: int
    name: str
    kind: PrizeKind
    weight: int
    stock: int
    daily_cap: int | None
    coupon_template_id: int | None
    product_id: int | None
    points: int | None


class PrizeLevelOut(Out):
    prize_id: int
    stock: int
    awarded: int
    awarded_today: int
    daily_cap: int | None

    @classmethod
    def of(cls, level: PrizeLevel) -> PrizeLevelOut:
        return cls.model_validate(level)


class PoolViewOut(Out):
    pool: PoolOut
    prizes: list[PrizeOut]
    levels: list[PrizeLevelOut]
    day: str


class ScheduledDrawIn(AdminIn):
    pool_id: Id
    prize_id: Id
    name: Name
    run_at: Annotated[
        Moment, Field(description="When to draw; entrants paid from the pool's midnight until then")
    ]
    winners: Annotated[int, Field(ge=1, le=100_000)]
    min_order_cents: Cents = 0


class ScheduledDrawOut(Out):
    id: int
    pool_id: int
    prize_id: int
    name: str
    run_at: UtcTime
    winners: int
    min_order_cents: int
    status: ScheduleStatus
    seed: str | None = Field(description="Recorded at the run: with `entrants`, recomputes the winners")
    entrants: list[str] | None
    winner_ids: list[str] | None
    ran_at: UtcTime | None
    verified: bool = Field(description="The recorded winners are what the seed and entrants give")


# -- shopper -----------------------------------------------------------------------------------------
class ShareIn(In):
    share_id: ShareId


class GrantOut(Out):
    granted: int = Field(description="Draws granted by this call (0 when replayed)")
    balance: int = Field(description="Draws left in the pool")
    replayed: bool
    streak: int | None = Field(None, description="check-in: days in a row")


class BalanceOut(Out):
    pool_id: int
    balance: int


class AwardOut(Out):
    id: str
    pool_id: int | None
    prize: PrizeOut | None = Field(description="null: thanks for playing")
    status: AwardStatus
    day: str
    at: UtcTime
    redeemed_at: UtcTime | None
    order_id: str | None = Field(None, description="a redeemed goods prize: its zero-price order")


class DrawOut(Out):
    award: AwardOut
    balance: int
    replayed: bool


def pool_out(pool: Pool) -> PoolOut:
    return PoolOut(
        id=pool.id,
        name=pool.name,
        game=pool.game,
        thanks_weight=pool.thanks_weight,
        utc_offset_min=pool.utc_offset_min,
        rules=[RuleOut.model_validate(rule) for rule in pool.rules.values()],
    )


def award_out(award: Award, prize: Prize | None) -> AwardOut:
    return AwardOut(
        id=award.id,
        pool_id=award.pool_id,
        prize=None if prize is None else PrizeOut.model_validate(prize),
        status=award.status,
        day=award.day,
        at=award.at,
        redeemed_at=award.redeemed_at,
        order_id=award.order_id,
    )


def schedule_out(draw: ScheduledDraw) -> ScheduledDrawOut:
    """The scheduled draw as answered, with whether its record verifies."""
    return ScheduledDrawOut.model_validate({**asdict(draw), "verified": draw.verified()})
