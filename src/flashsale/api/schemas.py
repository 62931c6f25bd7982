"""Request and response bodies. Fields are allow-listed both ways: unknown input fields are refused
(a client cannot send a price or a limit), and responses carry only what is declared here.

Bounds on numbers, strings and dates are the widths of the stored columns, so no input can reach
the database as an overflow; the business rules (a session inside its campaign, a valid quantity)
stay in the domain and the services. Where a business rule is a plain range (payment window,
per-user limit), the schema states it too, so the OpenAPI document shows it; the bound itself is
the domain's constant.

Operator bodies (`AdminIn`) are strict: no `false` for 0, no `"7"` for 7, no number for a date.
FastAPI validates a body as Python data (the parsed JSON), where strict pydantic refuses every
string for a date or time, so those fields parse ISO 8601 text themselves and stay strict after.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from flashsale.domain.campaign import (
    DEFAULT_PAYMENT_WINDOW_S,
    MAX_PAYMENT_WINDOW_S,
    MIN_PAYMENT_WINDOW_S,
    DailySlot,
    Phase,
    PhaseKind,
    SessionState,
    distinct_slots,
    is_iana_zone,
)
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import OrderStatus
from flashsale.domain.sale import MAX_QUANTITY_PER_REQUEST
from flashsale.services.catalog_views import ItemView, SessionView

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


def _from_iso(kind: type[datetime] | type[time], example: str) -> BeforeValidator:
    """Parse ISO 8601 text into `kind` before strict validation, which then takes only a `kind`."""

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # a number is not a date: strict validation refuses it
        try:
            return kind.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected an ISO 8601 {kind.__name__} such as {example!r}") from None

    return BeforeValidator(parse)


Id = Annotated[int, Field(ge=1, le=MAX_INT32)]
Count = Annotated[int, Field(ge=0, le=MAX_INT32)]
Cents = Annotated[int, Field(ge=0, le=MAX_CENTS)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Sku = Annotated[str, Field(min_length=1, max_length=100)]
# A member tier ("gold"), as member prices and shoppers name it.
TierName = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
# A product's category, as message waves name it: lower-case words, digits and dashes.
Category = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
Moment = Annotated[
    AwareDatetime, _from_iso(datetime, "2026-11-11T10:00:00+08:00"), AfterValidator(_utc_in_range)
]
ClockTime = Annotated[time, _from_iso(time, "10:00")]
ZoneName = Annotated[str, Field(max_length=64, examples=["Asia/Shanghai"], description="An IANA zone name")]
PaymentWindow = Annotated[
    int,
    Field(
        ge=MIN_PAYMENT_WINDOW_S,
        le=MAX_PAYMENT_WINDOW_S,
        description="Seconds a shopper has to pay for a hold before it goes back on sale",
    ),
]
PerUserLimit = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_QUANTITY_PER_REQUEST,
        description="Units one shopper may hold and buy in total (paid and unpaid orders)",
    ),
]
AboveListOverride = Annotated[
    bool,
    Field(description="Accept a flash price above the product's list price (refused otherwise)"),
]
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


class AdminIn(In):
    """An operator's body: every field strictly typed (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class PatchIn(AdminIn):
    def changes(self) -> dict[str, Any]:
        """Return the fields the client set to a value (null means "leave as is")."""
        return {k: getattr(self, k) for k in self.model_fields_set if getattr(self, k) is not None}


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- shopper ------------------------------------------------------------------------------------
UNKNOWN_FIELDS_ONE_BY_ONE = 20  # beyond this many unknown fields, one error stands for them all


class PurchaseIn(In):
    item_id: Annotated[int, Field(strict=True, ge=1, le=MAX_INT32)]
    # The bounds are documented, not validated here: the ledger answers 422 INVALID_QUANTITY for
    # <= 0 or too many (before the window or the stock), which a pydantic bound would turn into a
    # generic VALIDATION_ERROR.
    quantity: Annotated[
        int,
        Field(
            strict=True,
            json_schema_extra={"minimum": 1, "maximum": MAX_QUANTITY_PER_REQUEST},
            description=f"Units to buy: 1..{MAX_QUANTITY_PER_REQUEST}, within your limit; "
            "outside that range: 422 INVALID_QUANTITY",
        ),
    ]
    sale_token: Annotated[
        str | None,
        Field(
            max_length=200,
            description="For an item bought on the hidden path: the token of POST /items/{id}/sale-token; "
            "without one 403 SALE_TOKEN_REQUIRED, a bad or spent one 403 SALE_TOKEN_INVALID",
        ),
    ] = None
    rehearsal_pass: Annotated[
        str | None,
        Field(
            max_length=100,
            description="For a load rehearsal's copy only: the pass the operator got with the copy "
            "(POST /admin/campaigns/{id}/rehearsals); without it the copy's items are 422 UNKNOWN_ITEM",
        ),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _many_unknown_fields_refused_at_once(cls, data: Any) -> Any:
        """Refuse a body with many unknown fields with one error instead of one error per field.

        `extra="forbid"` builds an error per unknown key: a 64 KiB body of 8,000 keys costs about
        0.2 s of CPU on the hottest route, where counting the keys costs well under a millisecond.
        """
        if isinstance(data, dict) and len(data) > len(cls.model_fields) + UNKNOWN_FIELDS_ONE_BY_ONE:
            unknown = [key for key in data if key not in cls.model_fields]
            examples = ", ".join(repr(str(key)[:20]) for key in unknown[:3])
            raise PydanticCustomError(
                "extra_forbidden",
                "{count} unknown fields are not permitted, e.g. {examples}",
                {"count": len(unknown), "examples": examples},
            )
        return data


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
class PhaseIn(AdminIn):
    # Strict enum validation of Python data would want a PhaseKind object; lax takes only its values.
    kind: Annotated[PhaseKind, Field(strict=False)]
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


class CampaignIn(AdminIn):
    name: Name
    theme: Annotated[str, Field(max_length=200)] = ""
    starts_at: Moment
    ends_at: Moment
    phases: Phases = Field(default_factory=list)
    payment_window_s: PaymentWindow = DEFAULT_PAYMENT_WINDOW_S


class CampaignPatch(PatchIn):
    name: Name | None = None
    theme: Annotated[str, Field(max_length=200)] | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    phases: Phases | None = None
    payment_window_s: PaymentWindow | None = None

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
    rehearsal: bool = Field(
        default=False, description="A load rehearsal's copy: hidden from the shop, sold only with its pass"
    )


class SessionIn(AdminIn):
    name: Name
    starts_at: Moment
    ends_at: Moment


class SessionPatch(PatchIn):
    name: Name | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None


class SlotIn(AdminIn):
    start: ClockTime = Field(examples=["10:00"])
    end: ClockTime = Field(examples=["10:10"], description="After `start`; an earlier time crosses midnight")
    tz: ZoneName = "UTC"
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
        if not is_iana_zone(value):
            raise ValueError(f"unknown time zone {value!r}: give an IANA name such as 'Asia/Shanghai'")
        return value

    def to_domain(self) -> DailySlot:
        """Return the domain slot (422 when it is empty)."""
        return domain_value(lambda: DailySlot(self.start, self.end, self.tz, self.name))


class DailySessionsIn(AdminIn):
    slots: Annotated[list[SlotIn], Field(min_length=1, max_length=48)]

    def to_domain(self) -> list[DailySlot]:
        """Return the domain slots (422 when one is empty or given twice)."""
        slots = [s.to_domain() for s in self.slots]
        return domain_value(lambda: distinct_slots(slots))


class SessionOut(Out):
    id: int
    campaign_id: int
    name: str
    starts_at: UtcTime
    ends_at: UtcTime


# -- products and items -------------------------------------------------------------------------
class ProductIn(AdminIn):
    sku: Sku
    name: Name
    list_price_cents: Cents
    stock: Count
    category: Category | None = None


class ProductPatch(PatchIn):
    sku: Sku | None = None
    name: Name | None = None
    list_price_cents: Cents | None = None
    stock: Count | None = None
    category: Category | None = None
    allow_above_list_price: AboveListOverride = False


class ProductOut(Out):
    id: int
    sku: str
    name: str
    list_price_cents: int
    stock: int
    category: str | None


class ItemIn(AdminIn):
    session_id: Id
    product_id: Id
    flash_price_cents: Cents
    quota: Count
    per_user_limit: PerUserLimit = 1
    coupons_allowed: bool = False
    allow_above_list_price: AboveListOverride = False
    regular: Annotated[
        bool,
        Field(
            description="Sell the product at its shop price (`flash_price_cents`) rather than as a flash"
            " deal: a list-price line in carts, coupons and 满减 apply."
        ),
    ] = False
    member_prices: Annotated[
        dict[TierName, Cents] | None,
        Field(
            description="A regular item's unit price per member tier ({\"gold\": 8800}): a shopper of that"
            " tier (PUT /admin/shoppers/{user_id}/tier) pays the lower of it and the shop price.",
            max_length=20,
        ),
    ] = None


class ItemPatch(PatchIn):
    flash_price_cents: Cents | None = None
    quota: Count | None = None
    per_user_limit: PerUserLimit | None = None
    coupons_allowed: bool | None = None
    allow_above_list_price: AboveListOverride = False


class ItemOut(Out):
    id: int
    session_id: int
    product_id: int
    flash_price_cents: int
    quota: int
    per_user_limit: int
    coupons_allowed: bool
    regular: bool
    member_prices: dict[str, int]

    @field_validator("member_prices", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        """The domain keeps (tier, cents) pairs; the API shows them by tier."""
        return dict(value) if isinstance(value, tuple) else value


class ShopperTierIn(AdminIn):
    tier: Annotated[TierName | None, Field(description="The member tier; null: no longer a member.")]


class ShopperTierOut(Out):
    user_id: str
    tier: str | None


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


# -- money: operators' views of orders and the payments journal -----------------------------------
class AdminOrderOut(OrderOut):
    """An order as the operator sees it: whose it is, and which charge paid it."""

    user_id: str
    request_id: str
    payment_ref: str | None


class PaymentOut(Out):
    id: int
    order_id: str
    provider: str
    provider_ref: str = Field(description="The charge's provider reference (a refund names its charge)")
    amount_cents: int
    kind: Annotated[str, Field(description="charge | refund")]
    status: Annotated[str, Field(description="done | pending (a refund decided, not yet sent)")]
    refund_ref: str | None
    created_at: UtcTime


class OrderPage(BaseModel):
    items: list[AdminOrderOut]
    total: int
    limit: int
    offset: int


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    total: int
    limit: int
    offset: int


class OrderMoneyOut(Out):
    order_id: str
    status: OrderStatus
    total_cents: int
    charged_cents: int
    refunded_cents: int
    pending_refund_cents: int
    rebated_cents: int = 0
    pending_rebate_cents: int = 0
    won_rebate_cents: int = 0
    net_cents: int
    expected_cents: int


class AuditOut(BaseModel):
    clean: bool
    orders_checked: int
    charged_cents: int
    refunded_cents: int
    rebated_cents: int = 0
    net_cents: int
    expected_cents: int
    discrepancies: list[OrderMoneyOut]
