"""Draw rows <-> draw domain objects: pools, prizes, grants, awards and scheduled draws."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flashsale.domain.draw_schedule import ScheduledDraw, ScheduleStatus
from flashsale.domain.draws import (
    Award,
    AwardStatus,
    EntitlementRule,
    EntitlementSource,
    Game,
    Pool,
    Prize,
    PrizeKind,
)
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import OrderStatus
from flashsale.draws.contract import DrawRecord, GrantRecord
from flashsale.store.repositories import changed_rows, insert_ignoring_duplicates
from flashsale.store.tables import (
    CampaignRow,
    DrawAwardRow,
    DrawGrantRow,
    DrawPoolRow,
    DrawPrizeRow,
    ItemRow,
    OrderRow,
    ScheduledDrawRow,
    SessionRow,
)


# -- pools and prizes ------------------------------------------------------------------------------
def rules_to_json(rules: Mapping[EntitlementSource, EntitlementRule]) -> list[dict[str, Any]]:
    return [{**asdict(rule), "source": rule.source.value} for rule in rules.values()]


def pool_of(row: DrawPoolRow) -> Pool:
    rules = {}
    for raw in row.rules:
        rule = EntitlementRule(**{**raw, "source": EntitlementSource(raw["source"])})
        rules[rule.source] = rule
    return Pool(row.id, row.name, Game(row.game), row.thanks_weight, row.utc_offset_min, rules)


def prize_of(row: DrawPrizeRow) -> Prize:
    return Prize(
        row.id,
        row.pool_id,
        row.name,
        PrizeKind(row.kind),
        row.weight,
        row.stock,
        row.daily_cap,
        row.coupon_template_id,
        row.product_id,
        row.points,
    )


def load_pool(db: Session, pool_id: int) -> Pool:
    """The pool, or UNKNOWN_POOL."""
    row = db.get(DrawPoolRow, pool_id)
    if row is None:
        raise FlashSaleError(ErrorCode.UNKNOWN_POOL, f"no prize pool {pool_id}")
    return pool_of(row)


def all_pools(db: Session) -> list[Pool]:
    return [pool_of(row) for row in db.scalars(select(DrawPoolRow).order_by(DrawPoolRow.id))]


def prizes_of(db: Session, pool_id: int) -> list[Prize]:
    rows = db.scalars(select(DrawPrizeRow).where(DrawPrizeRow.pool_id == pool_id).order_by(DrawPrizeRow.id))
    return [prize_of(row) for row in rows]


def load_prize(db: Session, prize_id: int) -> Prize:
    row = db.get(DrawPrizeRow, prize_id)
    if row is None:
        raise FlashSaleError(ErrorCode.NOT_FOUND, f"no prize {prize_id}")
    return prize_of(row)


# -- grants ----------------------------------------------------------------------------------------
def grant_exists(db: Session, pool_id: int, user_id: str, grant_key: str) -> bool:
    found = db.scalar(
        select(DrawGrantRow.id).where(
            DrawGrantRow.pool_id == pool_id,
            DrawGrantRow.user_id == user_id,
            DrawGrantRow.grant_key == grant_key,
        )
    )
    return found is not None


def insert_grant(db: Session, *, record: GrantRecord, pool_id: int, streak: int | None, at: datetime) -> bool:
    """Store a grant; False when its (pool, user, key) is stored already (a concurrent twin won)."""
    values = {**record._asdict(), "pool_id": pool_id, "streak": streak, "created_at": at}
    statement = insert_ignoring_duplicates(db, DrawGrantRow).returning(DrawGrantRow.id)
    return db.connection().execute(statement, [values]).first() is not None


def last_checkin(db: Session, pool_id: int, user_id: str) -> tuple[str, int] | None:
    """The day and streak of the user's last check-in to the pool, if any."""
    row = db.execute(
        select(DrawGrantRow.day, DrawGrantRow.streak)
        .where(
            DrawGrantRow.pool_id == pool_id,
            DrawGrantRow.user_id == user_id,
            DrawGrantRow.source == EntitlementSource.CHECKIN.value,
        )
        .order_by(DrawGrantRow.day.desc())
        .limit(1)
    ).first()
    return None if row is None else (row.day, row.streak or 0)


def grant_records(db: Session, pool_id: int) -> list[GrantRecord]:
    rows = db.execute(
        select(
            DrawGrantRow.user_id,
            DrawGrantRow.source,
            DrawGrantRow.grant_key,
            DrawGrantRow.draws,
            DrawGrantRow.day,
        )
        .where(DrawGrantRow.pool_id == pool_id)
        .order_by(DrawGrantRow.id)
    )
    return [GrantRecord(*row) for row in rows]


# -- awards ----------------------------------------------------------------------------------------
def award_of(row: DrawAwardRow) -> Award:
    return Award(
        row.id,
        row.pool_id,
        row.user_id,
        row.request_id,
        row.prize_id,
        AwardStatus(row.status),
        row.day,
        row.created_at,
        row.redeemed_at,
        row.order_id,
    )


def find_award(db: Session, pool_id: int, user_id: str, request_id: str) -> Award | None:
    row = db.scalar(
        select(DrawAwardRow).where(
            DrawAwardRow.pool_id == pool_id,
            DrawAwardRow.user_id == user_id,
            DrawAwardRow.request_id == request_id,
        )
    )
    return None if row is None else award_of(row)


def insert_awards(db: Session, awards: Sequence[Award], *, scheduled_draw_id: int | None = None) -> int:
    """Store awards, skipping any whose (pool, user, request id) is stored; return how many were new."""
    if not awards:
        return 0
    values = [
        {
            "id": a.id,
            "pool_id": a.pool_id,
            "user_id": a.user_id,
            "request_id": a.request_id,
            "prize_id": a.prize_id,
            "status": a.status.value,
            "day": a.day,
            "scheduled_draw_id": scheduled_draw_id,
            "created_at": a.at,
            "redeemed_at": a.redeemed_at,
            "order_id": a.order_id,
        }
        for a in awards
    ]
    statement = insert_ignoring_duplicates(db, DrawAwardRow).returning(DrawAwardRow.id)
    return len(db.connection().execute(statement, values).all())


def get_award(db: Session, award_id: str) -> Award:
    row = db.get(DrawAwardRow, award_id, populate_existing=True)
    if row is None:
        raise FlashSaleError(ErrorCode.NOT_FOUND, "no such award")
    return award_of(row)


def awards_of_user(db: Session, user_id: str, *, limit: int, offset: int) -> list[Award]:
    rows = db.scalars(
        select(DrawAwardRow)
        .where(DrawAwardRow.user_id == user_id)
        .order_by(DrawAwardRow.created_at.desc(), DrawAwardRow.id)
        .limit(limit)
        .offset(offset)
    )
    return [award_of(row) for row in rows]


def save_award_transition(db: Session, before: Award, after: Award) -> bool:
    """Store an award's move if the stored award is still in `before`'s status (compare-and-set)."""
    statement = (
        update(DrawAwardRow)
        .where(DrawAwardRow.id == before.id, DrawAwardRow.status == before.status.value)
        .values(status=after.status.value, redeemed_at=after.redeemed_at, order_id=after.order_id)
    )
    return changed_rows(db, statement) > 0


def draw_records(db: Session, pool_id: int) -> list[DrawRecord]:
    """The pool's draws as the ledger made them (a scheduled draw's winners are not the ledger's)."""
    rows = db.execute(
        select(
            DrawAwardRow.user_id,
            DrawAwardRow.request_id,
            DrawAwardRow.id,
            DrawAwardRow.prize_id,
            DrawAwardRow.day,
        )
        .where(DrawAwardRow.pool_id == pool_id, DrawAwardRow.scheduled_draw_id.is_(None))
        .order_by(DrawAwardRow.created_at)
    )
    return [DrawRecord(*row) for row in rows]


# -- scheduled draws -------------------------------------------------------------------------------
def scheduled_of(row: ScheduledDrawRow) -> ScheduledDraw:
    return ScheduledDraw(
        row.id,
        row.pool_id,
        row.prize_id,
        row.name,
        row.run_at,
        row.winners,
        row.min_order_cents,
        ScheduleStatus(row.status),
        row.seed,
        None if row.entrants is None else tuple(row.entrants),
        None if row.winner_ids is None else tuple(row.winner_ids),
        row.ran_at,
    )


def load_scheduled(db: Session, draw_id: int) -> ScheduledDraw:
    row = db.get(ScheduledDrawRow, draw_id, populate_existing=True)
    if row is None:
        raise FlashSaleError(ErrorCode.NOT_FOUND, f"no scheduled draw {draw_id}")
    return scheduled_of(row)


def scheduled_draws(db: Session, *, due_by: datetime | None = None) -> list[ScheduledDraw]:
    """Every scheduled draw; with `due_by`, the pending ones whose time has come."""
    statement = select(ScheduledDrawRow).order_by(ScheduledDrawRow.run_at, ScheduledDrawRow.id)
    if due_by is not None:
        statement = statement.where(
            ScheduledDrawRow.status == ScheduleStatus.PENDING.value, ScheduledDrawRow.run_at <= due_by
        )
    return [scheduled_of(row) for row in db.scalars(statement)]


def save_scheduled_run(db: Session, before: ScheduledDraw, after: ScheduledDraw) -> bool:
    """Store a scheduled draw's run if it is still pending (compare-and-set: two runners, one run)."""
    statement = (
        update(ScheduledDrawRow)
        .where(ScheduledDrawRow.id == before.id, ScheduledDrawRow.status == before.status.value)
        .values(
            status=after.status.value,
            seed=after.seed,
            entrants=list(after.entrants or ()),
            winner_ids=list(after.winner_ids or ()),
            ran_at=after.ran_at,
        )
    )
    return changed_rows(db, statement) > 0


def qualifying_buyers(db: Session, *, since: datetime, until: datetime, min_order_cents: int) -> list[str]:
    """Shoppers with a PAID order of at least `min_order_cents` paid in [since, until), sorted."""
    rows = db.scalars(
        select(OrderRow.user_id)
        .where(
            OrderRow.status == OrderStatus.PAID.value,
            OrderRow.total_cents >= min_order_cents,
            OrderRow.paid_at >= since,
            OrderRow.paid_at < until,
        )
        .distinct()
        .order_by(OrderRow.user_id)
    )
    return list(rows)


def add_rows(db: Session, rows: Iterable[object]) -> None:
    """Add new rows and flush, so their generated ids are known."""
    db.add_all(rows)
    db.flush()


def regular_item_on_sale(db: Session, product_id: int, at: datetime) -> int | None:
    """The product's regular item in a session open at `at` (the one closing first), or None.

    A rehearsal's copy is not the shop's: its items never deliver a prize.
    """
    return db.scalar(
        select(ItemRow.id)
        .join(SessionRow, SessionRow.id == ItemRow.session_id)
        .join(CampaignRow, CampaignRow.id == SessionRow.campaign_id)
        .where(
            ItemRow.product_id == product_id,
            ItemRow.regular.is_(True),
            SessionRow.starts_at <= at,
            SessionRow.ends_at > at,
            CampaignRow.rehearsal.is_(False),
        )
        .order_by(SessionRow.ends_at, ItemRow.id)
        .limit(1)
    )
