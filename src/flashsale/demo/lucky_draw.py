"""The demo's threshold draw (满额抽奖): a paid order of at least ¥1,500 earns one draw in a prize pool.

After the sale, the sweeper's pass over the order outbox (`PaidOrderGrants.run`) grants the draws;
then every shopper with a draw spends it, on the shop's thread pool through `DrawService`, as the
draw page would. Drawers are drawn from the same seed but their own generator, so the flash crowd and
the baskets stay as they were. Some double-click (one request id sent twice at once: one award, one
replay); some try once more than they have (NO_ENTITLEMENT). The audit reads the pool back from the
store and the draw ledger.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select

from flashsale.bootstrap import Platform
from flashsale.demo.campaign import DemoCampaign, DemoItem
from flashsale.demo.shop import PoolDoor
from flashsale.domain.draws import EntitlementRule, EntitlementSource, Game, PrizeKind
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.events import OrderPaid
from flashsale.domain.orders import OrderStatus
from flashsale.services.draw_grants import CURSOR
from flashsale.services.draws import DrawOutcome, DrawService
from flashsale.store.tables import (
    DrawAwardRow,
    DrawGrantRow,
    DrawPrizeRow,
    EventCursorRow,
    EventRow,
    ItemRow,
    OrderRow,
)

DRAW_THRESHOLD_CENTS = 150_000  # 满1500抽奖: a phone qualifies, two watches do, one watch (¥1,499) does not
DRAWS_PER_ORDER = 1
ORDER_GRANTS_PER_DAY = 5  # more than any demo shopper's qualifying orders: no grant is capped
GOODS_PRIZE_SKU = "BUDS-2"
CST_OFFSET_MIN = 8 * 60


@dataclass(frozen=True, slots=True)
class PrizeSpec:
    """A prize of the pool: weight out of PRIZE_WEIGHT_TOTAL, stock at full scale."""

    name: str
    kind: PrizeKind
    weight: int
    stock: int


# The goods and the coupons run out at the default scale (expected awards exceed their stock).
PRIZES: tuple[PrizeSpec, ...] = (
    PrizeSpec("Earbuds 2", PrizeKind.GOODS, 1, 3),
    PrizeSpec("¥50 coupon", PrizeKind.COUPON, 10, 50),
    PrizeSpec("100 points", PrizeKind.POINTS, 30, 10_000),
)
THANKS_WEIGHT = 59  # 谢谢参与
DOUBLE_CLICK_SHARE = 0.1
ONE_MORE_SHARE = 0.1  # drawers who try once more than they have

DRAW_DEFINITIONS = {
    "prize_stock": "per prize, the draws that won it in the store ≤ its stock, and the ledger's count agrees",
    "awards_once": (
        "one stored award per (shopper, request id), and awards == Σ draws granted − Σ draws left"
        " in the ledger (each draw spent is recorded once)"
    ),
    "grants": (
        "every draw granted names a PAID order of that shopper of at least the threshold, and every"
        " such order earned its draw once"
    ),
}


@dataclass(frozen=True, slots=True)
class DemoDraw:
    """The pool as created: its id, its prizes' ids by name, and the threshold."""

    pool_id: int
    prize_ids: dict[str, int]
    threshold_cents: int


@dataclass
class DrawTally:
    """What the drawers saw."""

    drawers: int = 0
    draw_calls: int = 0
    draws: int = 0  # draws answered, once each whatever the clicks
    replays: int = 0
    double_clicks: int = 0
    duplicate_awards: int = 0  # one request id answered with two awards: must stay 0
    refusals: Counter[ErrorCode] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # unexpected refusals: must stay empty


def create_draw(
    draws: DrawService, platform: Platform, campaign: DemoCampaign, *, quota_scale: float
) -> DemoDraw:
    """Create the campaign's threshold-draw pool and its prizes (stock scaled, at least one each)."""
    pool = draws.create_pool(
        name="满1500抽奖",
        game=Game.LOTTERY,
        thanks_weight=THANKS_WEIGHT,
        utc_offset_min=CST_OFFSET_MIN,  # its days are the shop's days
        rules=[
            EntitlementRule(
                EntitlementSource.PAID_ORDER,
                draws=DRAWS_PER_ORDER,
                daily_cap=ORDER_GRANTS_PER_DAY,
                min_order_cents=DRAW_THRESHOLD_CENTS,
            )
        ],
    )
    promos = campaign.promotions
    goods = _product_of(platform, next(i for i in campaign.items if i.spec.sku == GOODS_PRIZE_SKU))
    ids = {}
    for spec in PRIZES:
        prize = draws.add_prize(
            pool.id,
            name=spec.name,
            kind=spec.kind,
            weight=spec.weight,
            stock=max(1, round(spec.stock * quota_scale)),
            coupon_template_id=None
            if promos is None or spec.kind is not PrizeKind.COUPON
            else promos.coupon_template_id,
            product_id=goods if spec.kind is PrizeKind.GOODS else None,
            points=100 if spec.kind is PrizeKind.POINTS else None,
        )
        ids[spec.name] = prize.id
    return DemoDraw(pool.id, ids, DRAW_THRESHOLD_CENTS)


def _product_of(platform: Platform, item: DemoItem) -> int:
    with platform.deps.read() as r:
        product_id = r.db.scalar(select(ItemRow.product_id).where(ItemRow.id == item.id))
    assert product_id is not None
    return int(product_id)


def grant_paid_orders(platform: Platform) -> int:
    """Run the sweeper's paid-order grants until its cursor reached the last OrderPaid event."""
    granted = 0
    while True:
        granted += platform.draw_grants.run()
        with platform.deps.read() as r:
            newest = r.db.scalar(select(func.max(EventRow.id)).where(EventRow.kind == OrderPaid.__name__))
            cursor = r.db.get(EventCursorRow, CURSOR)
        if newest is None or (cursor is not None and cursor.last_id >= newest):
            return granted


@dataclass(frozen=True, slots=True)
class Drawer:
    user_id: str
    draws: int  # granted
    double_clicks: bool
    one_more: bool


def plan_drawers(platform: Platform, draw: DemoDraw, *, seed: int) -> list[Drawer]:
    """Every shopper granted draws, with how they click; the same seed, the same drawers."""
    with platform.deps.read() as r:
        granted = r.db.execute(
            select(DrawGrantRow.user_id, func.sum(DrawGrantRow.draws))
            .where(DrawGrantRow.pool_id == draw.pool_id)
            .group_by(DrawGrantRow.user_id)
            .order_by(DrawGrantRow.user_id)
        ).all()
    rng = random.Random(f"draws-{seed}")  # its own stream: the other crowds' draws stay as they were
    return [
        Drawer(user, int(n), rng.random() < DOUBLE_CLICK_SHARE, rng.random() < ONE_MORE_SHARE)
        for user, n in granted
    ]


class DrawDoor(PoolDoor):
    """The drawers' door to the draw service, in process on the shop's thread pool."""

    def __init__(self, draws: DrawService, pool: Executor, draw: DemoDraw) -> None:
        super().__init__(pool)
        self._draws = draws
        self._pool_id = draw.pool_id
        self.tally = DrawTally()

    async def draw(self, user_id: str, request_id: str, *, clicks: int = 1) -> DrawOutcome | ErrorCode:
        """Spend one draw with `clicks` identical requests at once; return the outcome or the refusal."""
        answers = await asyncio.gather(*(self._draw_once(user_id, request_id) for _ in range(clicks)))
        outcomes = [a for a in answers if isinstance(a, DrawOutcome)]
        if len({o.award.id for o in outcomes}) > 1:
            self.tally.duplicate_awards += 1
        if outcomes:
            self.tally.draws += 1
            self.tally.replays += len(outcomes) - 1
            return outcomes[0]
        code = next(a for a in answers if isinstance(a, ErrorCode))
        self.tally.refusals[code] += 1
        return code

    async def _draw_once(self, user_id: str, request_id: str) -> DrawOutcome | ErrorCode:
        self.tally.draw_calls += 1
        try:
            return await self._run(self._draws.draw, self._pool_id, user_id, request_id)
        except FlashSaleError as exc:
            return exc.code


async def play_drawer(door: DrawDoor, drawer: Drawer) -> None:
    """Spend every draw granted (double-clicked, maybe), then perhaps try once more than that."""
    door.tally.drawers += 1
    clicks = 2 if drawer.double_clicks else 1
    if drawer.double_clicks:
        door.tally.double_clicks += 1
    for n in range(drawer.draws):
        answer = await door.draw(drawer.user_id, f"{drawer.user_id}-draw-{n}", clicks=clicks)
        if isinstance(answer, ErrorCode):
            door.tally.failures[f"draw: {answer}"] += 1
    if drawer.one_more:
        answer = await door.draw(drawer.user_id, f"{drawer.user_id}-draw-{drawer.draws}")
        if answer is not ErrorCode.NO_ENTITLEMENT:
            door.tally.failures[f"one more draw: {answer}"] += 1


@dataclass(frozen=True, slots=True)
class PrizeCount:
    name: str
    stock: int
    awarded: int  # draws that won it, in the store
    ledger_awarded: int


@dataclass(frozen=True, slots=True)
class DrawAudit:
    """The threshold draw, counted from the store and the draw ledger, and the checks that must hold."""

    tally: DrawTally
    threshold_cents: int
    qualifying_orders: int  # PAID orders of at least the threshold
    grants: int
    draws_granted: int
    draws_left: int  # Σ balances in the ledger
    awards: int  # award rows
    distinct_requests: int
    thanks: int
    prizes: tuple[PrizeCount, ...]
    grants_without_order: int  # grants naming no qualifying PAID order of theirs: must stay 0
    orders_without_grant: int  # qualifying orders that earned nothing: must stay 0

    @property
    def within_stock(self) -> bool:
        return all(p.awarded == p.ledger_awarded <= p.stock for p in self.prizes)

    @property
    def awarded_once(self) -> bool:
        return self.awards == self.distinct_requests == self.draws_granted - self.draws_left

    @property
    def grants_ok(self) -> bool:
        return self.grants_without_order == 0 and self.orders_without_grant == 0

    @property
    def ok(self) -> bool:
        tally = self.tally
        return (
            self.within_stock
            and self.awarded_once
            and self.grants_ok
            and tally.duplicate_awards == 0
            and not tally.failures
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the audit as plain JSON-ready data."""
        tally = self.tally
        return {
            "drawers": {
                "drawers": tally.drawers,
                "draw_calls": tally.draw_calls,
                "draws": tally.draws,
                "replays": tally.replays,
                "double_clicks": tally.double_clicks,
                "duplicate_awards": tally.duplicate_awards,
                "refusals": {c.value: n for c, n in sorted(tally.refusals.items())},
                "failures": dict(sorted(tally.failures.items())),
            },
            "threshold_cents": self.threshold_cents,
            "qualifying_orders": self.qualifying_orders,
            "grants": self.grants,
            "draws_granted": self.draws_granted,
            "draws_left": self.draws_left,
            "awards": self.awards,
            "thanks": self.thanks,
            "prizes": [asdict(p) for p in self.prizes],
            "within_stock": self.within_stock,
            "awarded_once": self.awarded_once,
            "grants_ok": self.grants_ok,
            "ok": self.ok,
            "definitions": DRAW_DEFINITIONS,
        }


def audit_draw(platform: Platform, draw: DemoDraw, tally: DrawTally) -> DrawAudit:
    """Count and check the threshold draw from the store and the draw ledger."""
    pool_id = draw.pool_id
    with platform.deps.read() as r:
        db = r.db
        qualifying: set[tuple[str, str]] = set(
            db.execute(
                select(OrderRow.user_id, OrderRow.id).where(
                    OrderRow.status == OrderStatus.PAID.value,
                    OrderRow.total_cents >= draw.threshold_cents,
                    OrderRow.total_cents > 0,
                )
            )
        )
        grants = db.execute(
            select(DrawGrantRow.user_id, DrawGrantRow.grant_key, DrawGrantRow.draws).where(
                DrawGrantRow.pool_id == pool_id
            )
        ).all()
        awards = db.execute(
            select(DrawAwardRow.user_id, DrawAwardRow.request_id, DrawAwardRow.prize_id).where(
                DrawAwardRow.pool_id == pool_id
            )
        ).all()
        prizes = db.execute(
            select(DrawPrizeRow.id, DrawPrizeRow.name, DrawPrizeRow.stock)
            .where(DrawPrizeRow.pool_id == pool_id)
            .order_by(DrawPrizeRow.id)
        ).all()
    granted_orders = Counter((user, key.removeprefix("order:")) for user, key, _ in grants)
    won = Counter(prize_id for _, _, prize_id in awards)
    levels = {level.prize_id: level.awarded for level in platform.draws.pool_view(pool_id).levels}
    users = {user for user, _, _ in grants}
    return DrawAudit(
        tally=tally,
        threshold_cents=draw.threshold_cents,
        qualifying_orders=len(qualifying),
        grants=len(grants),
        draws_granted=sum(n for _, _, n in grants),
        draws_left=sum(platform.draws.balance(pool_id, user) for user in users),
        awards=len(awards),
        distinct_requests=len({(user, request) for user, request, _ in awards}),
        thanks=won[None],
        prizes=tuple(PrizeCount(name, stock, won[pid], levels.get(pid, 0)) for pid, name, stock in prizes),
        grants_without_order=sum(n for key, n in granted_orders.items() if key not in qualifying)
        + sum(n - 1 for n in granted_orders.values() if n > 1),
        orders_without_grant=len(qualifying - set(granted_orders)),
    )
