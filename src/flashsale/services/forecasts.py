"""The operator's traffic forecast per session: entered, or read off a previous campaign's orders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from flashsale.domain.campaign import FlashSession
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.forecast import SessionForecast, forecast_from_campaign
from flashsale.domain.orders import Order
from flashsale.services.deps import Deps
from flashsale.store import repositories as repo
from flashsale.store.tables import ItemRow, OrderRow, SessionForecastRow, SessionRow


@dataclass(frozen=True, slots=True)
class ForecastView:
    """A session of the campaign beside its forecast (None: nothing entered or derived for it)."""

    session: FlashSession
    forecast: SessionForecast | None


class Forecasts:
    """Enter and read the traffic forecast of a campaign's sessions."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def set(self, campaign_id: int, forecasts: Sequence[SessionForecast]) -> list[ForecastView]:
        """Replace the forecast of the sessions named; each must be a session of the campaign."""
        with self.deps.uow() as uow:
            repo.load_campaign(uow.db, campaign_id)
            mine = {s.id for s in _sessions(uow.db, campaign_id)}
            strangers = sorted({f.session_id for f in forecasts} - mine)
            if strangers:
                raise FlashSaleError(
                    ErrorCode.VALIDATION_ERROR,
                    f"sessions {strangers} are not sessions of campaign {campaign_id}",
                )
            if len({f.session_id for f in forecasts}) != len(forecasts):
                raise FlashSaleError(ErrorCode.VALIDATION_ERROR, "a session is forecast twice")
            named = [f.session_id for f in forecasts]
            uow.db.execute(delete(SessionForecastRow).where(SessionForecastRow.session_id.in_(named)))
            uow.db.add_all(
                SessionForecastRow(session_id=f.session_id, shoppers=f.shoppers, span_s=f.span_s)
                for f in forecasts
            )
            uow.commit()
        return self.get(campaign_id)

    def get(self, campaign_id: int, *, from_campaign: int | None = None) -> list[ForecastView]:
        """The campaign's sessions with the forecast entered, or the one read off `from_campaign`."""
        with self.deps.read() as r:
            repo.load_campaign(r.db, campaign_id)
            sessions = _sessions(r.db, campaign_id)
            if from_campaign is None:
                rows = r.db.scalars(
                    select(SessionForecastRow).where(
                        SessionForecastRow.session_id.in_([s.id for s in sessions])
                    )
                )
                found = {
                    row.session_id: SessionForecast(row.session_id, row.shoppers, row.span_s) for row in rows
                }
            else:
                repo.load_campaign(r.db, from_campaign)
                previous = [(s, _orders_of_session(r.db, s.id)) for s in _sessions(r.db, from_campaign)]
                found = {f.session_id: f for f in forecast_from_campaign(sessions, previous)}
        return [ForecastView(s, found.get(s.id)) for s in sessions]


def _sessions(db: Session, campaign_id: int) -> list[FlashSession]:
    rows = db.scalars(
        select(SessionRow).where(SessionRow.campaign_id == campaign_id).order_by(SessionRow.starts_at)
    )
    return [repo.session_of(row) for row in rows]


def _orders_of_session(db: Session, session_id: int) -> list[Order]:
    rows = db.scalars(
        select(OrderRow).join(ItemRow, OrderRow.item_id == ItemRow.id).where(ItemRow.session_id == session_id)
    )
    return [repo.order_of(row) for row in rows]
