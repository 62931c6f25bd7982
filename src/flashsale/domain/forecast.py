"""The traffic a campaign expects, per session: how many shoppers arrive, over how many seconds.

The operator enters it (admin API, `flashsale plan forecast`), or it is read off a previous
campaign: session by session in start order, its participants (shoppers with any order) arriving
over the time from the session's open to the first order of its last participant. A rehearsal
replays it at a multiple (`flashsale rehearse --load 2x`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flashsale.domain.campaign import FlashSession
from flashsale.domain.orders import Order

MAX_SHOPPERS = 10_000_000
MAX_SPAN_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class SessionForecast:
    """`shoppers` arrive at session `session_id` over its first `span_s` seconds."""

    session_id: int
    shoppers: int
    span_s: int

    def __post_init__(self) -> None:
        if not 0 <= self.shoppers <= MAX_SHOPPERS:
            raise ValueError(f"shoppers must be 0..{MAX_SHOPPERS}")
        if not 1 <= self.span_s <= MAX_SPAN_S:
            raise ValueError(f"span_s must be 1..{MAX_SPAN_S} seconds")


def forecast_from_campaign(
    sessions: Sequence[FlashSession], previous: Sequence[tuple[FlashSession, Sequence[Order]]]
) -> list[SessionForecast]:
    """Forecast `sessions` from a previous campaign's sessions and their orders, matched by start order.

    Sessions beyond the previous campaign's count get no forecast.
    """
    ordered = sorted(sessions, key=lambda s: s.starts_at)
    before = sorted(previous, key=lambda pair: pair[0].starts_at)
    forecasts = []
    for session, (old, orders) in zip(ordered, before, strict=False):
        first_order: dict[str, float] = {}
        for order in orders:
            at = order.created_at.timestamp()
            first_order[order.user_id] = min(at, first_order.get(order.user_id, at))
        last_arrival = max(first_order.values(), default=old.starts_at.timestamp())
        span = round(last_arrival - old.starts_at.timestamp())
        forecasts.append(SessionForecast(session.id, len(first_order), min(MAX_SPAN_S, max(1, span))))
    return forecasts
