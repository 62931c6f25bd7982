"""Reads and writes of the messaging tables, on a Session the caller's transaction owns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flashsale.domain.coupons import CouponState
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.messaging.templates import BUILT_IN, Template
from flashsale.store.tables import (
    CouponRow,
    DeliveryRow,
    ItemRow,
    MemberContactRow,
    MessageRow,
    OptOutRow,
    OrderRow,
    ProductRow,
    TemplateRow,
    WaveRow,
)


class MessageStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"  # claimed under a lease; the far side may or may not have it
    SENT = "sent"
    SUPPRESSED = "suppressed"  # dropped by a rule (reason says which)
    CANCELLED = "cancelled"  # the order it reminds of closed before it was due
    FAILED = "failed"  # the channel refused it for good, or retries ran out


class Segment(StrEnum):
    """Who a wave goes to, as its members are when it is released."""

    ALL = "all"  # every member with a contact
    BUYERS = "buyers"  # members who have paid for any order
    ITEM_BUYERS = "item_buyers"  # members who have paid for the wave's item
    CATEGORY_BUYERS = "category_buyers"  # members who have paid for an item of the wave's product category
    COUPON_HOLDERS = "coupon_holders"  # members holding a coupon of the wave's template they have not used


# The one target each segment needs (item, category, coupon template); the others need none.
SEGMENT_TARGET = {
    Segment.ITEM_BUYERS: "item_id",
    Segment.CATEGORY_BUYERS: "category",
    Segment.COUPON_HOLDERS: "coupon_template_id",
}


@dataclass(frozen=True, slots=True)
class Target:
    """What a segment is about: the wave's item, product category or coupon template (at most one)."""

    item_id: int | None = None
    category: str | None = None
    coupon_template_id: int | None = None

    def check(self, kind: Segment) -> None:
        """Refuse a target the segment does not take, or a missing one it needs."""
        given = {name for name in SEGMENT_TARGET.values() if getattr(self, name) is not None}
        needed = {SEGMENT_TARGET[kind]} if kind in SEGMENT_TARGET else set()
        if given != needed:
            wanted = f"needs {', '.join(needed)}" if needed else "takes no item, category or coupon"
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, f"the {kind.value} segment {wanted}")


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def log(db: Session, message_id: int, attempt: int, when: float, outcome: str, detail: str = "") -> None:
    """Append a step to the message's delivery log."""
    db.add(
        DeliveryRow(message_id=message_id, attempt=attempt, at=at(when), outcome=outcome, detail=detail[:500])
    )


def member(db: Session, user_id: str, *, lock: bool = False) -> MemberContactRow | None:
    """Return the member's contact; with `lock`, hold its row so cap checks of one member take turns."""
    query = select(MemberContactRow).where(MemberContactRow.user_id == user_id)
    return db.scalars(query.with_for_update() if lock else query).first()


def opted_out(db: Session, user_id: str, channel: str) -> bool:
    query = select(OptOutRow.user_id).where(OptOutRow.user_id == user_id, OptOutRow.channel == channel)
    return db.scalar(query) is not None


def sent_since(db: Session, user_id: str, since: float) -> int:
    """Count messages sent, or being sent, to the member since `since`: what the frequency cap counts."""
    query = select(func.count(MessageRow.id)).where(
        MessageRow.user_id == user_id,
        MessageRow.status.in_((MessageStatus.SENDING, MessageStatus.SENT)),
        MessageRow.sent_at > at(since),
    )
    return int(db.scalar(query) or 0)


def order_status(db: Session, order_id: str) -> str | None:
    return db.scalar(select(OrderRow.status).where(OrderRow.id == order_id))


def item_name(db: Session, item_id: int) -> str:
    name = db.scalar(
        select(ProductRow.name)
        .join(ItemRow, ItemRow.product_id == ProductRow.id)
        .where(ItemRow.id == item_id)
    )
    return name or f"item {item_id}"


def templates(db: Session, name: str) -> dict[str, Template]:
    """Return the texts of template `name` by locale: the stored ones over the built-in defaults."""
    found = {t.locale: t for t in BUILT_IN if t.name == name}
    for row in db.scalars(select(TemplateRow).where(TemplateRow.name == name)):
        found[row.locale] = Template(row.name, row.locale, row.subject, row.body)
    return found


def all_templates(db: Session) -> list[Template]:
    """Return every template text, stored ones replacing the built-in ones of the same name and locale."""
    found = {(t.name, t.locale): t for t in BUILT_IN}
    for row in db.scalars(select(TemplateRow)):
        found[(row.name, row.locale)] = Template(row.name, row.locale, row.subject, row.body)
    return [found[k] for k in sorted(found)]


def target_of(wave: WaveRow) -> Target:
    """The wave's target: its item, product category or coupon template."""
    return Target(wave.item_id, wave.category, wave.coupon_template_id)


def segment(db: Session, kind: Segment, target: Target) -> list[MemberContactRow]:
    """Return the members of a segment, by user id."""
    target.check(kind)
    query = select(MemberContactRow).order_by(MemberContactRow.user_id)
    if kind is Segment.ALL:
        return list(db.scalars(query))
    if kind is Segment.COUPON_HOLDERS:
        holders = select(CouponRow.user_id).where(
            CouponRow.template_id == target.coupon_template_id, CouponRow.state == CouponState.AVAILABLE.value
        )
        return list(db.scalars(query.where(MemberContactRow.user_id.in_(holders))))
    buyers = select(OrderRow.user_id).where(OrderRow.paid_at.is_not(None))
    if kind is Segment.ITEM_BUYERS:
        buyers = buyers.where(OrderRow.item_id == target.item_id)
    elif kind is Segment.CATEGORY_BUYERS:
        of_category = (
            select(ItemRow.id)
            .join(ProductRow, ProductRow.id == ItemRow.product_id)
            .where(ProductRow.category == target.category)
        )
        buyers = buyers.where(OrderRow.item_id.in_(of_category))
    return list(db.scalars(query.where(MemberContactRow.user_id.in_(buyers))))
