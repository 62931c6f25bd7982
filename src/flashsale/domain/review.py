"""The post-campaign review: what a campaign's orders say, as figures a report can show.

Pure: it takes the campaign, its sessions, its items (with their products) and every order of those
items, and returns the KPIs, per-session and per-item figures, sales per hour and each item's
sell-out curve. Definitions (money in integer cents):

- **GMV**: the totals of PAID orders (a refunded order is not a sale; its money is `refunded_cents`).
- **orders paid, units sold**: PAID orders and their units. **AOV**: GMV / orders paid (floored).
- **participants**: shoppers with any order; **buyers**: shoppers with a PAID order.
- **conversion**: orders paid (or refunded) / orders placed: how much of the rush turned into money.
- **expired share, cancelled share**: those orders / orders placed.
- **sell-out curve**: units taken (held or sold) over time: +qty when an order is placed, -qty
  when it is cancelled, expires or is refunded (at `closed_at`, else at `expires_at` for an
  expiry). **sold out at**: the first moment it reached the quota.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from flashsale.domain.campaign import Campaign, FlashSession
from flashsale.domain.catalog import Product
from flashsale.domain.orders import Order, OrderStatus
from flashsale.domain.sale import FlashItem

RELEASED = (OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REFUNDED)


@dataclass(frozen=True, slots=True)
class Kpis:
    gmv_cents: int
    orders_placed: int
    orders_paid: int
    units_sold: int
    aov_cents: int
    participants: int
    buyers: int
    conversion: float
    expired_share: float
    cancelled_share: float
    refunded_cents: int


@dataclass(frozen=True, slots=True)
class ItemReview:
    item: FlashItem
    name: str
    kpis: Kpis
    sold_out_at: datetime | None
    curve: tuple[tuple[datetime, int], ...]  # (moment, units taken from then on)


@dataclass(frozen=True, slots=True)
class SessionReview:
    session: FlashSession
    kpis: Kpis
    items: tuple[ItemReview, ...]


@dataclass(frozen=True, slots=True)
class CampaignReview:
    campaign: Campaign
    kpis: Kpis
    sessions: tuple[SessionReview, ...]
    sales_by_hour: tuple[tuple[datetime, int], ...]  # (hour, GMV of orders paid in that hour)
    orders_by_status: dict[str, int]


def kpis_of(orders: Sequence[Order]) -> Kpis:
    """The KPIs of a set of orders (see the module doc for each definition)."""
    paid = [o for o in orders if o.status is OrderStatus.PAID]
    statuses = Counter(o.status for o in orders)
    placed = len(orders)
    gmv = sum(o.total_cents for o in paid)
    converted = statuses[OrderStatus.PAID] + statuses[OrderStatus.REFUNDED]
    return Kpis(
        gmv_cents=gmv,
        orders_placed=placed,
        orders_paid=len(paid),
        units_sold=sum(o.qty for o in paid),
        aov_cents=gmv // len(paid) if paid else 0,
        participants=len({o.user_id for o in orders}),
        buyers=len({o.user_id for o in paid}),
        conversion=_share(converted, placed),
        expired_share=_share(statuses[OrderStatus.EXPIRED], placed),
        cancelled_share=_share(statuses[OrderStatus.CANCELLED], placed),
        refunded_cents=sum(o.total_cents for o in orders if o.status is OrderStatus.REFUNDED),
    )


def sell_out_curve(orders: Iterable[Order]) -> tuple[tuple[datetime, int], ...]:
    """Units taken over time: each order adds its units when placed and gives them back when released."""
    steps: dict[datetime, int] = defaultdict(int)
    for order in orders:
        steps[order.created_at] += order.qty
        if order.status in RELEASED:
            released_at = order.closed_at or order.expires_at
            steps[released_at] -= order.qty
    curve, taken = [], 0
    for moment in sorted(steps):
        taken += steps[moment]
        curve.append((moment, taken))
    return tuple(curve)


def review_campaign(
    campaign: Campaign,
    sessions: Sequence[FlashSession],
    items: Sequence[tuple[FlashItem, Product]],
    orders: Sequence[Order],
) -> CampaignReview:
    """Review a campaign from its sessions, items and every order of those items."""
    by_item: dict[int, list[Order]] = defaultdict(list)
    for order in orders:
        by_item[order.item_id].append(order)
    session_reviews = []
    for session in sorted(sessions, key=lambda s: s.starts_at):
        mine = [(i, p) for i, p in items if i.session_id == session.id]
        item_reviews = tuple(_item_review(item, product, by_item[item.id]) for item, product in mine)
        session_orders = [o for item, _ in mine for o in by_item[item.id]]
        session_reviews.append(SessionReview(session, kpis_of(session_orders), item_reviews))
    hours: Counter[datetime] = Counter()
    for order in orders:
        if order.status is OrderStatus.PAID and order.paid_at is not None:
            hours[order.paid_at.replace(minute=0, second=0, microsecond=0)] += order.total_cents
    return CampaignReview(
        campaign=campaign,
        kpis=kpis_of(orders),
        sessions=tuple(session_reviews),
        sales_by_hour=tuple(sorted(hours.items())),
        orders_by_status={s.value: n for s, n in sorted(Counter(o.status for o in orders).items())},
    )


def _item_review(item: FlashItem, product: Product, orders: Sequence[Order]) -> ItemReview:
    curve = sell_out_curve(orders)
    sold_out_at = next((moment for moment, taken in curve if taken >= item.quota), None)
    return ItemReview(item, product.name, kpis_of(orders), sold_out_at, curve)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0
