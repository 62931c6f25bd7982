"""Request and response bodies. Fields are allow-listed both ways: unknown input fields are refused
(a client cannot send a price or a limit), and responses carry only what is declared here.

Bounds on numbers, strings and dates are the widths of the stored columns, so no input can reach
the database as an overflow; the business rules (a limit of at least 1, a session inside its
campaign, a valid quantity) stay in the domain and the services.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from flashsale.domain.campaign import DEFAULT_PAYMENT_WINDOW_S, DailySlot, Phase, PhaseKind, SessionState
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import OrderStatus
from flashsale.domain.sale import MAX_QUANTITY_PER_REQUEST
from flashsale.services.catalog import ItemView, SessionView

T = TypeVar("T")

MAX_INT32 = 2**31 - 1
MAX_CENTS = 10**12  # keeps price x the largest quantity inside a BIGINT
EARLIEST_YEAR, LATEST_YEAR = 1970, 2999


def _utc_in_range(moment: datetime) -> datetime:
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("date is out of range") from None
    if not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        raise ValueError(f"date must lie between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return utc


Id = Annotated[int, Field(ge=1, le=MAX_INT32)]
Count = Annotated[int, Field(ge=0, le=MAX_INT32)]
Cents = Annotated[int, Field(ge=0, le=MAX_CENTS)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Sku = Annotated[str, Field(min_length=1, max_length=100)]
Moment = Annotated[AwareDatetime, AfterValidator(_utc_in_range)]
# Responses always speak UTC, whatever zone a domain object was built in (daily slots keep theirs).
UtcTime = Annotated[datetime, AfterValidator(lambda moment: moment.astimezone(UTC))]


def domain_value(build: Callable[[], T]) -> T:
    """Build a domain object from request data; its ValueError becomes a 422 VALIDATION_ERROR."""
    try:
        return build()
    except ValueError as exc:
        raise FlashSaleError(ErrorCode.VALIDATION_ERROR, str(exc)) from exc


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatchIn(In):
    def changes(self) -> dict[str, Any]:
        """Return the fields the client set to a value (null means "leave as is")."""
        return {k: getattr(self, k) for k in self.model_fields_set if getattr(self, k) is not None}


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- shopper ------------------------------------------------------------------------------------
class PurchaseIn(In):
    item_id: Annotated[int, Field(strict=True, ge=1, le=MAX_INT32)]
    # Only the type is checked here: the ledger answers INVALID_QUANTITY for <= 0 or too many.
    quantity: Annotated[
        int, Field(strict=True, description=f"Units to buy: 1..{MAX_QUANTITY_PER_REQUEST}, within your limit")
    ]


class PayIn(In):
    provider: Annotated[str, Field(min_length=1, max_length=40)] = "sandbox"


class OrderOut(Out):
    id: str
    status: OrderStatus
    item_id: int
    qty: int
    unit_price_cents: int
    total_cents: int
    created_at: UtcTime
    expires_at: UtcTime
    paid_at: UtcTime | None
    closed_at: UtcTime | None


class PaymentAck(Out):
    order_id: str
    status: OrderStatus


class ShopItemOut(BaseModel):
    item_id: int
    product_id: int
    product_name: str
    list_price_cents: int
    flash_price_cents: int
    quota: int
    per_user_limit: int
    remaining: int
    coupons_allowed: bool

    @classmethod
    def of(cls, view: ItemView) -> ShopItemOut:
        """Describe one flash item with its live remaining stock."""
        return cls(
            item_id=view.item.id,
            product_id=view.product.id,
            product_name=view.product.name,
            list_price_cents=view.product.list_price_cents,
            flash_price_cents=view.item.flash_price_cents,
            quota=view.item.quota,
            per_user_limit=view.item.per_user_limit,
            remaining=view.stock.available,
            coupons_allowed=view.item.coupons_allowed,
        )


class ShopSessionOut(BaseModel):
    id: int
    campaign_id: int
    name: str
    state: SessionState
    starts_at: UtcTime
    ends_at: UtcTime
    items: list[ShopItemOut]

    @classmethod
    def of(cls, view: SessionView) -> ShopSessionOut:
        """Describe a session, its state now, and its items."""
        s = view.session
        return cls(
            id=s.id,
            campaign_id=s.campaign_id,
            name=s.name,
            state=view.state,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            items=[ShopItemOut.of(i) for i in view.items],
        )


# -- campaigns and sessions -----------------------------------------------------------------------
class PhaseIn(In):
    kind: PhaseKind
    starts_at: Moment
    ends_at: Moment

    def to_domain(self) -> Phase:
        """Return the domain phase (422 when it ends before it starts)."""
        return domain_value(lambda: Phase(self.kind, self.starts_at, self.ends_at))


def _one_phase_per_kind(phases: list[PhaseIn] | None) -> list[PhaseIn] | None:
    kinds = [p.kind for p in phases or ()]
    if len(kinds) != len(set(kinds)):
        raise ValueError("each phase kind may appear once")
    return phases


Phases = Annotated[list[PhaseIn], Field(max_length=len(PhaseKind)), AfterValidator(_one_phase_per_kind)]


class CampaignIn(In):
    name: Name
    theme: Annotated[str, Field(max_length=200)] = ""
    starts_at: Moment
    ends_at: Moment
    phases: Phases = Field(default_factory=list)
    payment_window_s: Annotated[int, Field(ge=0, le=MAX_INT32)] = DEFAULT_PAYMENT_WINDOW_S


class CampaignPatch(PatchIn):
    name: Name | None = None
    theme: Annotated[str, Field(max_length=200)] | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    phases: Phases | None = None
    payment_window_s: Annotated[int, Field(ge=0, le=MAX_INT32)] | None = None

    def changes(self) -> dict[str, Any]:
        changes = super().changes()
        if "phases" in changes:
            changes["phases"] = [p.to_domain() for p in changes["phases"]]
        return changes


class PhaseOut(Out):
    kind: PhaseKind
    starts_at: UtcTime
    ends_at: UtcTime


class CampaignOut(Out):
    id: int
    name: str
    theme: str
    starts_at: UtcTime
    ends_at: UtcTime
    payment_window_s: int
    phases: list[PhaseOut]


class SessionIn(In):
    name: Name
    starts_at: Moment
    ends_at: Moment


class SessionPatch(PatchIn):
    name: Name | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None


class SlotIn(In):
    start: time = Field(examples=["10:00"])
    end: time = Field(examples=["10:10"])
    tz: Annotated[str, Field(max_length=64, examples=["Asia/Shanghai"])] = "UTC"
    name: Annotated[str, Field(max_length=100)] = ""

    @field_validator("start", "end")
    @classmethod
    def _naive_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give the time zone in `tz`, not in the time")
        return value

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def to_domain(self) -> DailySlot:
        """Return the domain slot."""
        return DailySlot(self.start, self.end, self.tz, self.name)


class DailySessionsIn(In):
    slots: Annotated[list[SlotIn], Field(min_length=1, max_length=48)]


class SessionOut(Out):
    id: int
    campaign_id: int
    name: str
    starts_at: UtcTime
    ends_at: UtcTime


# -- products and items -------------------------------------------------------------------------
class ProductIn(In):
    sku: Sku
    name: Name
    list_price_cents: Cents
    stock: Count


class ProductPatch(PatchIn):
    sku: Sku | None = None
    name: Name | None = None
    list_price_cents: Cents | None = None
    stock: Count | None = None


class ProductOut(Out):
    id: int
    sku: str
    name: str
    list_price_cents: int
    stock: int


class ItemIn(In):
    session_id: Id
    product_id: Id
    flash_price_cents: Cents
    quota: Count
    per_user_limit: Count = 1
    coupons_allowed: bool = False


class ItemPatch(PatchIn):
    flash_price_cents: Cents | None = None
    quota: Count | None = None
    per_user_limit: Count | None = None
    coupons_allowed: bool | None = None


class ItemOut(Out):
    id: int
    session_id: int
    product_id: int
    flash_price_cents: int
    quota: int
    per_user_limit: int
    coupons_allowed: bool


class StockOut(Out):
    quota: int
    available: int
    held: int
    sold: int


class ItemStatsOut(Out):
    item: ItemOut
    stock: StockOut
    orders_by_status: dict[str, int]
    units_by_status: dict[str, int]
    buyers: int
    revenue_cents: int
