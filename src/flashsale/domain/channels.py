"""Marketing channels of a campaign: budget against actual spend, and the return on that spend.

The operator enters, per channel, its budget, what was actually spent, and the paid orders and
GMV attributed to it (by the analytics that tag traffic; the purchase path does not tag orders).
ROI is (attributed GMV − spend) / spend. Attributions are checked against the campaign: more
attributed than was sold is flagged, the rest is shown as unattributed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flashsale.domain.review import Kpis

MAX_NAME = 100


@dataclass(frozen=True, slots=True)
class Channel:
    """One channel's money (integer cents) and what the operator attributes to it."""

    name: str
    budget_cents: int
    spend_cents: int
    attributed_orders: int
    attributed_gmv_cents: int

    def __post_init__(self) -> None:
        if not 1 <= len(self.name) <= MAX_NAME:
            raise ValueError(f"a channel's name is 1..{MAX_NAME} characters")
        if min(self.budget_cents, self.spend_cents, self.attributed_orders, self.attributed_gmv_cents) < 0:
            raise ValueError(f"channel {self.name!r}: money and orders cannot be negative")


@dataclass(frozen=True, slots=True)
class ChannelResult:
    channel: Channel
    over_budget_cents: int  # spend beyond the budget (0 within it)
    roi: float | None  # (attributed GMV − spend) / spend; None when nothing was spent
    cost_per_order_cents: int | None  # spend / attributed orders (floored); None without orders
    gmv_share: float  # attributed GMV / the campaign's GMV


@dataclass(frozen=True, slots=True)
class ChannelsReview:
    channels: tuple[ChannelResult, ...]
    budget_cents: int
    spend_cents: int
    attributed_orders: int
    attributed_gmv_cents: int
    roi: float | None  # over every channel
    unattributed_orders: int  # the campaign's paid orders no channel claims (0 when over-attributed)
    unattributed_gmv_cents: int
    over_attributed: bool  # the channels claim more orders or GMV than the campaign made


def review_channels(kpis: Kpis, channels: Sequence[Channel]) -> ChannelsReview:
    """Budget against spend and ROI per channel and in total, against the campaign's paid orders."""
    results = tuple(
        ChannelResult(
            channel=c,
            over_budget_cents=max(0, c.spend_cents - c.budget_cents),
            roi=_roi(c.attributed_gmv_cents, c.spend_cents),
            cost_per_order_cents=c.spend_cents // c.attributed_orders if c.attributed_orders else None,
            gmv_share=round(c.attributed_gmv_cents / kpis.gmv_cents, 4) if kpis.gmv_cents else 0.0,
        )
        for c in channels
    )
    spend = sum(c.spend_cents for c in channels)
    orders = sum(c.attributed_orders for c in channels)
    gmv = sum(c.attributed_gmv_cents for c in channels)
    return ChannelsReview(
        channels=results,
        budget_cents=sum(c.budget_cents for c in channels),
        spend_cents=spend,
        attributed_orders=orders,
        attributed_gmv_cents=gmv,
        roi=_roi(gmv, spend),
        unattributed_orders=max(0, kpis.orders_paid - orders),
        unattributed_gmv_cents=max(0, kpis.gmv_cents - gmv),
        over_attributed=orders > kpis.orders_paid or gmv > kpis.gmv_cents,
    )


def _roi(gmv_cents: int, spend_cents: int) -> float | None:
    return round((gmv_cents - spend_cents) / spend_cents, 4) if spend_cents else None
