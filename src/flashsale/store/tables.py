"""Rows as stored. Portable SQL only: the same tables run on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
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
    """Store aware UTC datetimes; SQLite forgets the zone, so put it back on the way out.

    On SQLite the text is written and read by `datetime`'s own C code: the same text SQLAlchemy's
    SQLite DATETIME writes (`YYYY-MM-DD HH:MM:SS.ffffff`, so stored rows and comparisons in SQL are
    unchanged), at a fraction of the cost of its format string and regular expression, which were
    a tenth of recording an order.
    """

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

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        to_utc = self.process_bind_param

        def process(value: datetime | None) -> str | None:
            utc = to_utc(value, dialect)
            return None if utc is None else utc.replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        to_utc = self.process_result_value

        def process(value: str | None) -> datetime | None:
            return None if value is None else to_utc(datetime.fromisoformat(value), dialect)

        return process


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
    # A load rehearsal's throwaway copy: hidden from the shop window, sold only to the rehearsal's crowd.
    rehearsal: Mapped[bool] = mapped_column(Boolean, default=False)


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
    # What one unit costs the shop, for the margin check (flashsale.domain.margin); 0 until set.
    cost_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    shipping_cost_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    platform_fee_bp: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 1/100 of a %
    category: Mapped[str | None] = mapped_column(String(64), nullable=True)  # e.g. "phones"; message segments


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
    regular: Mapped[bool] = mapped_column(Boolean, default=False)
    # A regular item's price per member tier ({"gold": 8800}); NULL: none (flash items never have one).
    member_prices: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)


class MemberTierRow(Base):
    """A shopper's member tier ("gold"), which prices regular items at their member price."""

    __tablename__ = "member_tiers"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tier: Mapped[str] = mapped_column(String(32))


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
    """Per ledger book (an item, or a bucket of a spread item), the highest ledger sequence whose grant
    the order writer stored (a high-water mark), and the order (hold id) granted at it.

    Kept apart from flash_items so the writer's commit touches one small row per item, not the
    catalogue. A ledger whose sequence is below it lost acknowledged writes (see
    flashsale.ledger.contract); another order at the same sequence means a ledger that lost writes
    granted again. No foreign key: a mark may outlive a deleted item.
    """

    __tablename__ = "ledger_marks"
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # The ledger's book (see flashsale.ledger.contract.BookId): 0, or a bucket of a spread item.
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, default=0)
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


class CheckoutCouponRow(Base):
    """A coupon a checkout uses, and its discount: written with the checkout, before it is redeemed.

    `state`: JOURNALED (to redeem), REDEEMED (written with the placed orders), RESTORED (given back).
    """

    __tablename__ = "checkout_coupons"
    checkout_id: Mapped[str] = mapped_column(ForeignKey("checkouts.id"), primary_key=True)
    coupon_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("coupon_templates.id"))
    discount_cents: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), index=True)


# -- Draws (lottery, scratch card, golden egg): see flashsale.domain.draws and flashsale.draws --------
class DrawPoolRow(Base):
    """A prize pool; `rules` holds its entitlement rules, one per source (EntitlementRule fields)."""

    __tablename__ = "draw_pools"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    game: Mapped[str] = mapped_column(String(20))  # lottery | scratch_card | golden_egg: how it is shown
    thanks_weight: Mapped[int] = mapped_column(BigInteger)
    utc_offset_min: Mapped[int] = mapped_column(Integer)  # the pool's day (daily caps) starts at its midnight
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DrawPrizeRow(Base):
    """A prize of a pool. A coupon is a plain reference to a coupon template (no foreign key: coupons
    live in their own area); goods name a product; points a number of points."""

    __tablename__ = "draw_prizes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("draw_pools.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # coupon | goods | points
    weight: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(Integer)
    daily_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    coupon_template_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), nullable=True)
    points: Mapped[int | None] = mapped_column(Integer, nullable=True)


class DrawGrantRow(Base):
    """An entitlement grant, once per (pool, user, grant key): `share:<id>`, `checkin:<day>`, `order:<id>`."""

    __tablename__ = "draw_grants"
    __table_args__ = (UniqueConstraint("pool_id", "user_id", "grant_key", name="uq_draw_grants_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("draw_pools.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20))
    grant_key: Mapped[str] = mapped_column(String(255))
    draws: Mapped[int] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(10))
    streak: Mapped[int | None] = mapped_column(Integer, nullable=True)  # a check-in's day in a row
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DrawAwardRow(Base):
    """Every draw's outcome, recorded once per (pool, user, request id): a prize, or thanks for playing
    (`prize_id` NULL, status none). A scheduled draw's winners have `scheduled_draw_id` set."""

    __tablename__ = "draw_awards"
    __table_args__ = (
        UniqueConstraint("pool_id", "user_id", "request_id", name="uq_draw_awards_request"),
        Index("ix_draw_awards_user", "user_id", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("draw_pools.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(255))
    prize_id: Mapped[int | None] = mapped_column(ForeignKey("draw_prizes.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # none | awarded | redeemed
    day: Mapped[str] = mapped_column(String(10))
    scheduled_draw_id: Mapped[int | None] = mapped_column(ForeignKey("scheduled_draws.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A redeemed goods prize: its zero-price order (no foreign key: behind Redis the order row is
    # written by the order writer and may land after the award is marked).
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class ScheduledDrawRow(Base):
    """ "At `run_at`, draw `winners` among the day's buyers of a PAID order of at least `min_order_cents`".

    Once run, `seed`, `entrants` (sorted user ids) and `winner_ids` are the audit record: anyone
    recomputes the winners from the first two (flashsale.domain.draws.winners).
    """

    __tablename__ = "scheduled_draws"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("draw_pools.id"), index=True)
    prize_id: Mapped[int] = mapped_column(ForeignKey("draw_prizes.id"))
    name: Mapped[str] = mapped_column(String(200))
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    winners: Mapped[int] = mapped_column(Integer)
    min_order_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # pending | done
    seed: Mapped[str | None] = mapped_column(String(64), nullable=True)
    entrants: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    winner_ids: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    ran_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CouponTemplateRow(Base):
    """A coupon template (flashsale.domain.coupons.CouponTemplate); never changed once created."""

    __tablename__ = "coupon_templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    off_cents: Mapped[int] = mapped_column(BigInteger)
    percent: Mapped[int] = mapped_column(Integer)
    tiers: Mapped[list[list[int]]] = mapped_column(JSON)  # [[threshold, off], ...]
    min_spend_cents: Mapped[int] = mapped_column(BigInteger)
    cap_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    categories: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    product_ids: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    budget_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stack_group: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A shop promotion (满减 for everyone): applies by itself at checkout, no claim needed.
    auto_apply: Mapped[bool] = mapped_column(Boolean, default=False)
    campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class CouponWaveRow(Base):
    """One hand-out of a template; `codes` marks a run of single-use codes (one coupon per code)."""

    __tablename__ = "coupon_waves"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("coupon_templates.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    total: Mapped[int] = mapped_column(Integer)
    per_user_limit: Mapped[int] = mapped_column(Integer)
    codes: Mapped[bool] = mapped_column(Boolean, default=False)


class CouponRow(Base):
    """A claimed coupon as the coupon ledger decided it (the record the ledger is rebuilt from)."""

    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("user_id", "request_id", name="uq_coupons_user_request"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("coupon_waves.id"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("coupon_templates.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    request_id: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    discount_cents: Mapped[int] = mapped_column(BigInteger, default=0)


class CouponCodeRow(Base):
    """A single-use code of a code wave; `user_id` is set once, by the one claim that wins it."""

    __tablename__ = "coupon_codes"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("coupon_waves.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    coupon_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class SessionForecastRow(Base):
    """The operator's forecast of one session's traffic: how many shoppers, arriving over how long."""

    __tablename__ = "session_forecasts"
    session_id: Mapped[int] = mapped_column(
        ForeignKey("flash_sessions.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    shoppers: Mapped[int] = mapped_column(Integer)
    span_s: Mapped[int] = mapped_column(Integer)


class CampaignTargetRow(Base):
    """A KPI target the operator set for a campaign (value in the KPI's unit; shares in basis points)."""

    __tablename__ = "campaign_targets"
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    kpi: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class CampaignChannelRow(Base):
    """A marketing channel of a campaign: budget, actual spend, and what the operator attributes to it."""

    __tablename__ = "campaign_channels"
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    budget_cents: Mapped[int] = mapped_column(BigInteger)
    spend_cents: Mapped[int] = mapped_column(BigInteger)
    attributed_orders: Mapped[int] = mapped_column(Integer)
    attributed_gmv_cents: Mapped[int] = mapped_column(BigInteger)


# -- messaging (flashsale.messaging): contacts, opt-outs, templates, waves, the queue and its log ----
class MemberContactRow(Base):
    """How to reach a member and when: name, addresses, locale and time zone (quiet hours are local)."""

    __tablename__ = "message_members"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    locale: Mapped[str] = mapped_column(String(16))
    tz: Mapped[str] = mapped_column(String(64))


class OptOutRow(Base):
    """A member said no to a channel; checked at every send, so it holds from the next message on."""

    __tablename__ = "message_optouts"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class TemplateRow(Base):
    __tablename__ = "message_templates"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    locale: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(4000))


class WaveRow(Base):
    """A campaign wave: one template to one segment on one channel, released at `send_at`."""

    __tablename__ = "message_waves"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    segment: Mapped[str] = mapped_column(String(20))
    item_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    category: Mapped[str | None] = mapped_column(String(64), nullable=True)  # category_buyers' category
    coupon_template_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # coupon_holders' coupon
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # not sent by then (quiet hours): dropped
    status: Mapped[str] = mapped_column(String(16))  # scheduled | released | cancelled


class MessageRow(Base):
    """One message to one member on one channel: the persisted queue the dispatcher claims from.

    `key` is unique (de-duplication: a reminder step or a wave reaches a member once) and is sent
    with the message. status: scheduled -> sending -> sent | scheduled (retry) | failed;
    scheduled -> suppressed | cancelled. `sent_at` is set when sending starts (the cap counts it).
    """

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_status_due", "status", "due_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    wave_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DeliveryRow(Base):
    """The delivery log: every step of every message (started, sent, retry, unknown, suppressed …)."""

    __tablename__ = "message_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(500))


class EventCursorRow(Base):
    """How far a consumer of the order_events outbox has read."""

    __tablename__ = "event_cursors"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)


class CampaignAdmissionRow(Base):
    """A campaign's admission terms (services/admission_policy.py); no row: the settings' defaults."""

    __tablename__ = "campaign_admission"
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    purchase_per_shopper: Mapped[str | None] = mapped_column(String(200), nullable=True)
    purchase_per_client: Mapped[str | None] = mapped_column(String(200), nullable=True)
    hoarder_throttle_after: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hoarder_throttled_limit: Mapped[int] = mapped_column(Integer, default=1)
    hoarder_block_after: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hoarder_cancel_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hoarder_payment_window_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    holds_per_client: Mapped[int | None] = mapped_column(Integer, nullable=True)
    holds_per_device: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ItemAdmissionRow(Base):
    """An item's admission terms: the sale token (hidden path) and the waiting room; no row: neither."""

    __tablename__ = "item_admission"
    item_id: Mapped[int] = mapped_column(
        ForeignKey("flash_items.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    requires_sale_token: Mapped[bool] = mapped_column(Boolean, default=False)
    waiting_room_k: Mapped[int | None] = mapped_column(Integer, nullable=True)
    buy_window_s: Mapped[int] = mapped_column(Integer, default=120)
    # [{"question": str, "choices": [str, ...], "answer": int}, ...]; NULL: no quiz
    quiz: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    quiz_penalty_s: Mapped[int] = mapped_column(Integer, default=10)


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


class FreeOrderRuleRow(Base):
    """A countdown free-order rule (domain/free_orders.py); `paid_count` is the last rank handed out.

    The pay transaction raises `paid_count` by a conditional UPDATE … RETURNING, so the row lock
    orders concurrent payments and each gets its own rank.
    """

    __tablename__ = "free_order_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    session_id: Mapped[int] = mapped_column(ForeignKey("flash_sessions.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("flash_items.id"), nullable=True)
    ranks: Mapped[list[int]] = mapped_column(JSON)
    first_n: Mapped[int] = mapped_column(Integer)
    cap_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    paid_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FreeOrderEntryRow(Base):
    """One paid order counted by one rule, once: the key keeps a replayed payment from taking two ranks."""

    __tablename__ = "free_order_entries"
    rule_id: Mapped[int] = mapped_column(ForeignKey("free_order_rules.id"), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)


class FreeOrderWinRow(Base):
    """The winner of one slot: the key (rule, slot) admits exactly one order per winning rank."""

    __tablename__ = "free_order_wins"
    rule_id: Mapped[int] = mapped_column(ForeignKey("free_order_rules.id"), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int] = mapped_column(Integer)
    qty: Mapped[int] = mapped_column(Integer)
    rebate_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))  # pending | rebated
    won_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rebated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
