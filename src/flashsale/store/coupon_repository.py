"""Coupon rows <-> domain objects, and the queries the coupon service needs."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flashsale.domain.coupons import Coupon, CouponKind, CouponState, CouponTemplate, CouponWave, WaveTerms
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.promotions import Tier
from flashsale.store.repositories import changed_rows, from_epoch, insert_ignoring_duplicates
from flashsale.store.tables import CouponCodeRow, CouponRow, CouponTemplateRow, CouponWaveRow


def template_of(row: CouponTemplateRow) -> CouponTemplate:
    return CouponTemplate(
        id=row.id,
        name=row.name,
        kind=CouponKind(row.kind),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        off_cents=row.off_cents,
        percent=row.percent,
        tiers=tuple(Tier(threshold, off) for threshold, off in row.tiers),
        min_spend_cents=row.min_spend_cents,
        cap_cents=row.cap_cents,
        categories=frozenset(row.categories) if row.categories is not None else None,
        product_ids=frozenset(row.product_ids) if row.product_ids is not None else None,
        budget_cents=row.budget_cents,
        group=row.stack_group,
        auto_apply=row.auto_apply,
        campaign_id=row.campaign_id,
    )


def template_row(template: CouponTemplate) -> CouponTemplateRow:
    """A new row for `template` (its id is given by the database)."""
    return CouponTemplateRow(
        name=template.name,
        kind=template.kind.value,
        off_cents=template.off_cents,
        percent=template.percent,
        tiers=[[t.threshold_cents, t.off_cents] for t in template.tiers],
        min_spend_cents=template.min_spend_cents,
        cap_cents=template.cap_cents,
        categories=sorted(template.categories) if template.categories is not None else None,
        product_ids=sorted(template.product_ids) if template.product_ids is not None else None,
        valid_from=template.valid_from,
        valid_until=template.valid_until,
        budget_cents=template.budget_cents,
        stack_group=template.group,
        auto_apply=template.auto_apply,
        campaign_id=template.campaign_id,
    )


def wave_of(row: CouponWaveRow) -> CouponWave:
    return CouponWave(row.id, row.template_id, row.starts_at, row.total, row.per_user_limit, row.ends_at)


def coupon_of(row: CouponRow, template: CouponTemplateRow) -> Coupon:
    return Coupon(
        coupon_id=row.id,
        wave_id=row.wave_id,
        template_id=row.template_id,
        user_id=row.user_id,
        request_id=row.request_id,
        state=CouponState(row.state),
        claimed_at=row.claimed_at.timestamp(),
        valid_from=template.valid_from.timestamp(),
        valid_until=template.valid_until.timestamp(),
        order_id=row.order_id,
        discount_cents=row.discount_cents,
    )


def get_template(db: Session, template_id: int) -> CouponTemplateRow:
    row = db.get(CouponTemplateRow, template_id)
    if row is None:
        raise FlashSaleError(ErrorCode.NOT_FOUND, f"no coupon template {template_id}")
    return row


def get_wave(db: Session, wave_id: int) -> CouponWaveRow:
    row = db.get(CouponWaveRow, wave_id)
    if row is None:
        raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, f"no coupon wave {wave_id}")
    return row


def all_templates(db: Session) -> list[CouponTemplateRow]:
    return list(db.scalars(select(CouponTemplateRow).order_by(CouponTemplateRow.id)))


def all_wave_terms(db: Session) -> list[WaveTerms]:
    """Every wave's terms, for rebuilding the coupon ledger."""
    rows = db.execute(
        select(CouponWaveRow, CouponTemplateRow).join(
            CouponTemplateRow, CouponTemplateRow.id == CouponWaveRow.template_id
        )
    )
    return [wave_of(wave).terms(template_of(template)) for wave, template in rows]


def coupons_where(db: Session, *criteria: object) -> list[Coupon]:
    """Coupons matching the criteria (all when none), oldest claim first."""
    query = (
        select(CouponRow, CouponTemplateRow)
        .join(CouponTemplateRow, CouponTemplateRow.id == CouponRow.template_id)
        .where(*criteria)  # type: ignore[arg-type]
        .order_by(CouponRow.claimed_at, CouponRow.id)
    )
    return [coupon_of(row, template) for row, template in db.execute(query)]


def insert_coupon(db: Session, coupon: Coupon) -> None:
    """Store a claimed coupon; a replayed claim whose row is there already inserts nothing."""
    row = {
        "id": coupon.coupon_id,
        "wave_id": coupon.wave_id,
        "template_id": coupon.template_id,
        "user_id": coupon.user_id,
        "request_id": coupon.request_id,
        "state": coupon.state.value,
        "claimed_at": from_epoch(coupon.claimed_at),
        "order_id": coupon.order_id,
        "discount_cents": coupon.discount_cents,
    }
    db.connection().execute(insert_ignoring_duplicates(db, CouponRow), [row])


def save_coupon(db: Session, coupon: Coupon) -> None:
    """Write the ledger's decision about a coupon (redeemed, restored, lapsed)."""
    changed_rows(
        db,
        update(CouponRow)
        .where(CouponRow.id == coupon.coupon_id)
        .values(state=coupon.state.value, order_id=coupon.order_id, discount_cents=coupon.discount_cents),
    )


def add_codes(db: Session, wave_id: int, codes: Iterable[str]) -> None:
    db.connection().execute(
        insert_ignoring_duplicates(db, CouponCodeRow), [{"code": c, "wave_id": wave_id} for c in codes]
    )


def take_code(db: Session, code: str, user_id: str) -> bool:
    """Give the code to `user_id` if nobody has it yet (a compare-and-set): True when this call won it."""
    return bool(
        changed_rows(
            db,
            update(CouponCodeRow)
            .where(CouponCodeRow.code == code, CouponCodeRow.user_id.is_(None))
            .values(user_id=user_id),
        )
    )


def link_code(db: Session, code: str, coupon_id: str) -> None:
    """Note which coupon a claimed code became."""
    changed_rows(db, update(CouponCodeRow).where(CouponCodeRow.code == code).values(coupon_id=coupon_id))


def codes_of(db: Session, wave_id: int) -> list[CouponCodeRow]:
    return list(
        db.scalars(select(CouponCodeRow).where(CouponCodeRow.wave_id == wave_id).order_by(CouponCodeRow.code))
    )
