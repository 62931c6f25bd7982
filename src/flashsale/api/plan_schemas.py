"""Bodies of the operator's plan for a campaign: traffic forecast, rehearsal copies, targets, channels."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from flashsale.api.schemas import (
    MAX_CENTS,
    AdminIn,
    Cents,
    Count,
    Id,
    ItemOut,
    Moment,
    ProductOut,
    SessionOut,
    UtcTime,
    domain_value,
)
from flashsale.domain.channels import MAX_NAME, Channel
from flashsale.domain.forecast import MAX_SHOPPERS, MAX_SPAN_S, SessionForecast
from flashsale.domain.targets import BASIS_POINTS, TARGETABLE, Target, Unit
from flashsale.services.forecasts import ForecastView
from flashsale.services.rehearsal_copy import RehearsalCopy, SessionWindow

MAX_SESSIONS = 200
MAX_CHANNELS = 100


class SessionForecastIn(AdminIn):
    session_id: Id
    shoppers: Annotated[int, Field(ge=0, le=MAX_SHOPPERS, description="Shoppers expected in the session")]
    span_s: Annotated[
        int, Field(ge=1, le=MAX_SPAN_S, description="Seconds from the open over which they arrive")
    ]

    def to_domain(self) -> SessionForecast:
        return domain_value(lambda: SessionForecast(self.session_id, self.shoppers, self.span_s))


class ForecastIn(AdminIn):
    sessions: Annotated[list[SessionForecastIn], Field(min_length=1, max_length=MAX_SESSIONS)]


class SessionForecastOut(BaseModel):
    session_id: int
    name: str
    starts_at: UtcTime
    ends_at: UtcTime
    shoppers: int | None = Field(description="null: no forecast for this session")
    span_s: int | None

    @classmethod
    def of(cls, view: ForecastView) -> SessionForecastOut:
        """Describe a session and its forecast."""
        s, f = view.session, view.forecast
        return cls(
            session_id=s.id,
            name=s.name,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            shoppers=None if f is None else f.shoppers,
            span_s=None if f is None else f.span_s,
        )


class WindowIn(AdminIn):
    session_id: Id = Field(description="A session of the campaign being copied")
    starts_at: Moment
    ends_at: Moment

    def to_domain(self) -> SessionWindow:
        return SessionWindow(self.session_id, self.starts_at, self.ends_at)


class RehearsalCopyIn(AdminIn):
    sessions: Annotated[list[WindowIn], Field(min_length=1, max_length=MAX_SESSIONS)]


class CopiedItemOut(BaseModel):
    source_item_id: int
    item: ItemOut
    product: ProductOut


class CopiedSessionOut(BaseModel):
    source_session_id: int
    session: SessionOut
    items: list[CopiedItemOut]


class RehearsalCopyOut(BaseModel):
    source_campaign_id: int
    campaign_id: int
    name: str
    payment_window_s: int
    rehearsal_pass: str = Field(
        description="The copy is hidden from the shop: a purchase of its items must carry this as "
        "`rehearsal_pass` (anyone else is told 422 UNKNOWN_ITEM)"
    )
    sessions: list[CopiedSessionOut]

    @classmethod
    def of(cls, copy: RehearsalCopy, rehearsal_pass: str) -> RehearsalCopyOut:
        """Describe the copy: its campaign, its pass, and each session and item beside the one it copies."""
        return cls(
            source_campaign_id=copy.source_campaign_id,
            campaign_id=copy.campaign.id,
            rehearsal_pass=rehearsal_pass,
            name=copy.campaign.name,
            payment_window_s=copy.campaign.payment_window_s,
            sessions=[
                CopiedSessionOut(
                    source_session_id=s.source_session_id,
                    session=SessionOut.model_validate(s.session),
                    items=[
                        CopiedItemOut(
                            source_item_id=i.source_item_id,
                            item=ItemOut.model_validate(i.item),
                            product=ProductOut.model_validate(i.product),
                        )
                        for i in s.items
                    ],
                )
                for s in copy.sessions
            ],
        )


# -- targets and channels -----------------------------------------------------------------------
Share = Annotated[float, Field(ge=0, le=1, description="A share, 0..1 (stored to the basis point)")]
Whole = Annotated[int, Field(ge=0, le=MAX_CENTS)]


class TargetsIn(AdminIn):
    """The campaign's KPI targets; a KPI left out has none. Money in cents, shares as 0..1."""

    gmv_cents: Whole | None = None
    orders_paid: Whole | None = None
    units_sold: Whole | None = None
    aov_cents: Whole | None = None
    participants: Whole | None = None
    buyers: Whole | None = None
    orders_placed: Whole | None = None
    conversion: Share | None = None
    expired_share: Share | None = None
    cancelled_share: Share | None = None
    refunded_cents: Whole | None = None

    def to_domain(self) -> list[Target]:
        """The targets given, shares in basis points."""
        targets = []
        for kpi, value in self.model_dump(exclude_none=True).items():
            whole = round(value * BASIS_POINTS) if TARGETABLE[kpi][0] is Unit.SHARE else value
            targets.append(domain_value(partial(Target, kpi, whole)))
        return targets


class TargetsOut(BaseModel):
    """The campaign's targets as entered (money in cents, shares as 0..1); absent KPIs have none."""

    targets: dict[str, float | int]

    @classmethod
    def of(cls, targets: list[Target]) -> TargetsOut:
        """Show targets in the units they are entered in."""
        return cls(
            targets={t.kpi: t.value / BASIS_POINTS if t.unit is Unit.SHARE else t.value for t in targets}
        )


class ChannelIn(AdminIn):
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
    budget_cents: Cents
    spend_cents: Cents = Field(description="What the channel actually cost")
    attributed_orders: Count = Field(description="Paid orders the channel brought, by your attribution")
    attributed_gmv_cents: Cents = Field(description="GMV of those orders")

    def to_domain(self) -> Channel:
        return domain_value(
            lambda: Channel(
                self.name,
                self.budget_cents,
                self.spend_cents,
                self.attributed_orders,
                self.attributed_gmv_cents,
            )
        )


class ChannelsIn(AdminIn):
    channels: Annotated[list[ChannelIn], Field(max_length=MAX_CHANNELS)]


class ChannelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    budget_cents: int
    spend_cents: int
    attributed_orders: int
    attributed_gmv_cents: int
