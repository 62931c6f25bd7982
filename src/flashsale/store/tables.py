"""Rows as stored. Portable SQL only: the same tables run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware UTC datetimes; SQLite forgets the zone, so put it back on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class CampaignRow(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    theme: Mapped[str] = mapped_column(String(200), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payment_window_s: Mapped[int] = mapped_column(Integer)


class PhaseRow(Base):
    __tablename__ = "campaign_phases"
    __table_args__ = (UniqueConstraint("campaign_id", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionRow(Base):
    __tablename__ = "flash_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProductRow(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    list_price_cents: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(Integer)


class ItemRow(Base):
    __tablename__ = "flash_items"
    __table_args__ = (UniqueConstraint("session_id", "product_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("flash_sessions.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    flash_price_cents: Mapped[int] = mapped_column(BigInteger)
    quota: Mapped[int] = mapped_column(Integer)
    per_user_limit: Mapped[int] = mapped_column(Integer)
    coupons_allowed: Mapped[bool] = mapped_column(Boolean, default=False)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        # The last guard of idempotency: one order per shopper per request id, whatever the ledger says.
        UniqueConstraint("user_id", "request_id", name="uq_orders_user_request"),
        Index("ix_orders_item_status", "item_id", "status"),
        Index("ix_orders_status_expires", "status", "expires_at"),
        Index("ix_orders_created_at", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("flash_items.id"))
    qty: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    payment_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)


class PaymentRow(Base):
    """The money journal: a charge or refund is written here before the order changes state."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("provider", "provider_ref", "kind", name="uq_payments_provider_ref_kind"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    provider: Mapped[str] = mapped_column(String(40))
    provider_ref: Mapped[str] = mapped_column(String(100))  # the charge's reference, for refunds too
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # charge | refund
    status: Mapped[str] = mapped_column(String(16))  # pending (refund not yet sent) | done
    refund_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentAttemptRow(Base):
    """One shopper's request to pay an order: the single-flight guard and the pay Idempotency-Key.

    `open_order_id` is the order id while the attempt is pending and NULL once it ends; being
    UNIQUE (NULLs never clash), it lets at most one attempt per order charge at a time, on SQLite
    and PostgreSQL alike, without a partial index.
    """

    __tablename__ = "payment_attempts"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key", name="uq_payment_attempts_user_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))  # pending | done | failed | abandoned
    open_order_id: Mapped[str | None] = mapped_column(String(40), unique=True, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EventRow(Base):
    """Outbox: one row per order state change, written in the same transaction as the change."""

    __tablename__ = "order_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerMarkRow(Base):
    """Per item, the highest ledger sequence whose grant the order writer stored (a high-water mark),
    and the order (hold id) granted at it.

    Kept apart from flash_items so the writer's commit touches one small row per item, not the
    catalogue. A ledger whose sequence is below it lost acknowledged writes (see
    flashsale.ledger.contract); another order at the same sequence means a ledger that lost writes
    granted again. No foreign key: a mark may outlive a deleted item.
    """

    __tablename__ = "ledger_marks"
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[str] = mapped_column(String(40))


class CartLineRow(Base):
    """A line of a shopper's cart: kept until checkout or removal, so a cart survives restarts."""

    __tablename__ = "cart_lines"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("flash_items.id"), primary_key=True)
    qty: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)  # the cart shows lines in the order first added
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CheckoutRow(Base):
    """A cart checkout: its price, and how it ended (placed, or refused with a code), for replays."""

    __tablename__ = "checkouts"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key", name="uq_checkouts_user_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    subtotal_cents: Mapped[int] = mapped_column(BigInteger)
    discount_cents: Mapped[int] = mapped_column(BigInteger)
    shipping_cents: Mapped[int] = mapped_column(BigInteger)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CheckoutLineRow(Base):
    """A checkout's line as priced: the order it becomes is placed under `request_id`.

    Written before the line is reserved, so whoever stores the line's order (the checkout itself,
    the order writer behind Redis, a recovery) prices it from here and not from the flash price.
    """

    __tablename__ = "checkout_lines"
    __table_args__ = (UniqueConstraint("user_id", "request_id", name="uq_checkout_lines_request"),)
    checkout_id: Mapped[str] = mapped_column(ForeignKey("checkouts.id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(255))
    item_id: Mapped[int] = mapped_column(ForeignKey("flash_items.id"))
    qty: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # set once placed


class GroupDealRow(Base):
    """An operator's group-buy offer on a flash item (see domain/group_buy.py)."""

    __tablename__ = "group_deals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("flash_items.id"), index=True)
    size: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    fill_window_s: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GroupRow(Base):
    """A group opened on a deal. `members` counts its taken seats; a join takes a seat only by raising
    it with a conditional UPDATE (status OPEN, before the deadline, below the size), so the row is the
    point where joins of one group take turns, in one process or many."""

    __tablename__ = "groups"
    __table_args__ = (Index("ix_groups_status_deadline", "status", "deadline"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("group_deals.id"), index=True)
    leader_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    members: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class GroupSeatRow(Base):
    """A taken seat, numbered 1..size: the primary key (group, seat) is what makes a seat taken once,
    and (group, user) one seat per member. Deleted when its order ends unpaid while the group is open."""

    __tablename__ = "group_seats"
    __table_args__ = (UniqueConstraint("group_id", "user_id", name="uq_group_seats_member"),)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), primary_key=True)
    seat: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user_id: Mapped[str] = mapped_column(String(64))
    claim: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # set once placed
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InviteCodeRow(Base):
    """A shopper's invite code (one per shopper)."""

    __tablename__ = "invite_codes"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReferralBindingRow(Base):
    """An invitee bound to an inviter's code: one per invitee (the key), one per pair either way (`pair`)."""

    __tablename__ = "referral_bindings"
    invitee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    inviter_id: Mapped[str] = mapped_column(String(64), index=True)
    pair: Mapped[str] = mapped_column(String(140), unique=True)
    code: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the first paid order
    qualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RewardEntryRow(Base):
    """The points ledger: one row per reward given (or points spent, as a negative entry).

    `source` names what the entry is for and is UNIQUE: the guard that a reward is given once.
    A coupon reward is a reference to a coupon template, issued by whoever owns coupons.
    """

    __tablename__ = "reward_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(160), unique=True)
    points: Mapped[int] = mapped_column(BigInteger)
    coupon_template: Mapped[str | None] = mapped_column(String(64), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
