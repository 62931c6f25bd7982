"""Bodies of the operator's plan for a campaign: traffic forecast, rehearsal copies, targets, channels."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from flashsale.api.schemas import AdminIn, Id, ItemOut, Moment, ProductOut, SessionOut, UtcTime, domain_value
from flashsale.domain.forecast import MAX_SHOPPERS, MAX_SPAN_S, SessionForecast
from flashsale.services.forecasts import ForecastView
from flashsale.services.rehearsal_copy import RehearsalCopy, SessionWindow

MAX_SESSIONS = 200


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
    sessions: list[CopiedSessionOut]

    @classmethod
    def of(cls, copy: RehearsalCopy) -> RehearsalCopyOut:
        """Describe the copy: its campaign, and each session and item beside the one it copies."""
        return cls(
            source_campaign_id=copy.source_campaign_id,
            campaign_id=copy.campaign.id,
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
