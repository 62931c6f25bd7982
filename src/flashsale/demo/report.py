"""The demo's audit: ledger counters checked against the stored orders, and the numbers it reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flashsale.demo.campaign import DemoCampaign
from flashsale.demo.shop import Tally
from flashsale.domain.orders import OrderStatus
from flashsale.domain.stock_audit import oversold, undersold
from flashsale.services.deps import Deps
from flashsale.store.tables import ItemRow, OrderRow

if TYPE_CHECKING:
    from flashsale.demo.group_deal import GroupAudit
    from flashsale.demo.lucky_draw import DrawAudit
    from flashsale.demo.promotions import PromotionAudit

DEFINITIONS = {
    "oversell": (
        "Σ items max(0, sold + held − quota), counted in both the ledger and the database (units of"
        " PAID + UNPAID orders), the larger of the two; plus Σ (user, item) max(0, PAID + UNPAID"
        " units in the database − per-user limit)"
    ),
    "undersell": (
        "Σ items of the units the ledger lost, max(0, quota − available − held − sold), plus"
        " min(units still available at the end, shoppers told SOLD_OUT or INSUFFICIENT_STOCK who"
        " never got a unit of that item)"
    ),
    "agreement": (
        "per item, the ledger's sold equals the units of PAID orders in the database and its held"
        " equals the units of UNPAID orders"
    ),
    "money": (
        "per order, charges − refunds − free-order rebates in the payments journal equal the total"
        " of a PAID order (less the rebate it won) and 0 for any other, flash orders and checkout"
        " lines alike (`flashsale payments audit`)"
    ),
}
_COUNTED = (OrderStatus.PAID.value, OrderStatus.UNPAID.value)


@dataclass(frozen=True, slots=True)
class ItemAudit:
    """One item at the end of the sale: the ledger's counters beside the database's orders."""

    item_id: int
    sku: str
    name: str
    quota: int
    per_user_limit: int
    sold: int
    held: int
    available: int
    cancelled: int  # units of cancelled orders
    expired: int  # units of orders whose payment window ran out
    paid_orders: int
    revenue_cents: int
    db_sold: int
    db_held: int
    oversell: int
    undersell: int

    @property
    def released(self) -> int:
        return self.cancelled + self.expired

    @property
    def agrees(self) -> bool:
        return self.sold == self.db_sold and self.held == self.db_held


@dataclass(frozen=True, slots=True)
class _Stored:
    """The orders of one item in one status: how many, their units, their money."""

    orders: int = 0
    units: int = 0
    cents: int = 0


def _stored_orders(db: Session) -> dict[tuple[int, str], _Stored]:
    grouped = db.execute(
        select(
            OrderRow.item_id,
            OrderRow.status,
            func.count(),
            func.sum(OrderRow.qty),
            func.sum(OrderRow.total_cents),
        ).group_by(OrderRow.item_id, OrderRow.status)
    ).all()
    return {
        (item, status): _Stored(n, int(units or 0), int(cents or 0))
        for item, status, n, units, cents in grouped
    }


def _units_over_limit(db: Session) -> Counter[int]:
    """Sum, per item, the units each user holds or bought beyond the per-user limit."""
    units = func.sum(OrderRow.qty)
    rows = db.execute(
        select(OrderRow.item_id, units - ItemRow.per_user_limit)
        .join(ItemRow, ItemRow.id == OrderRow.item_id)
        .where(OrderRow.status.in_(_COUNTED))
        .group_by(OrderRow.item_id, OrderRow.user_id, ItemRow.per_user_limit)
        .having(units > ItemRow.per_user_limit)
    ).all()
    over: Counter[int] = Counter()
    for item_id, excess in rows:
        over[item_id] += int(excess)
    return over


def audit_items(deps: Deps, campaign: DemoCampaign, tally: Tally) -> tuple[ItemAudit, ...]:
    """Check every item of the campaign from the ledger and from the database orders."""
    with deps.uow() as uow:
        stored = _stored_orders(uow.db)
        over_limit = _units_over_limit(uow.db)
    audits = []
    for item in campaign.items:
        stock = deps.ledger.stock(item.id)
        paid, unpaid, cancelled, expired = (
            stored.get((item.id, status.value), _Stored())
            for status in (OrderStatus.PAID, OrderStatus.UNPAID, OrderStatus.CANCELLED, OrderStatus.EXPIRED)
        )
        audits.append(
            ItemAudit(
                item_id=item.id,
                sku=item.spec.sku,
                name=item.spec.name,
                quota=stock.quota,
                per_user_limit=item.spec.per_user_limit,
                sold=stock.sold,
                held=stock.held,
                available=stock.available,
                cancelled=cancelled.units,
                expired=expired.units,
                paid_orders=paid.orders,
                revenue_cents=paid.cents,
                db_sold=paid.units,
                db_held=unpaid.units,
                oversell=oversold(
                    quota=stock.quota,
                    sold=stock.sold,
                    held=stock.held,
                    db_sold=paid.units,
                    db_held=unpaid.units,
                    over_limit=over_limit[item.id],
                ),
                undersell=undersold(
                    quota=stock.quota,
                    available=stock.available,
                    held=stock.held,
                    sold=stock.sold,
                    unserved=tally.unserved(item.id),
                ),
            )
        )
    return tuple(audits)


@dataclass(frozen=True, slots=True)
class DemoReport:
    """Everything `flashsale demo` prints: per item, totals, what the crowd saw, and the pace."""

    seed: int
    shoppers: int
    concurrency: int
    items: tuple[ItemAudit, ...]
    tally: Tally
    crowd_seconds: float  # wall time of the crowd's clicks (its decision phases), from first to last answer
    crowd_cpu_seconds: float  # the process's CPU time (every thread) inside crowd_seconds
    decisions: int  # reserve calls answered inside crowd_seconds
    decision_orders: int  # new orders made inside crowd_seconds
    checkout_seconds: float  # wall time of the crowd's pays, cancels and expiry sweeps, after its clicks
    money_nets: bool  # the payments audit found nothing
    review_path: Path | None = None  # the campaign review written after the sale (review.html)
    messages: dict[str, int] = field(default_factory=dict)  # 催付 by outcome: sent, suppressed:<reason> …
    messages_seconds: float = 0.0  # wall time the message sender took, outside crowd_seconds
    promotions: PromotionAudit | None = None  # coupons, 满减, basket checkouts and free orders
    basket_seconds: float = 0.0  # wall time of the basket shoppers, outside crowd_seconds
    groups: GroupAudit | None = None  # the group deal: groups filled and failed, refunds
    group_seconds: float = 0.0  # wall time of the groups, outside crowd_seconds
    draw: DrawAudit | None = None  # the threshold draw: draws granted and spent, prizes
    draw_seconds: float = 0.0  # wall time of the grants and the drawers, after the sale

    def total(self, name: str) -> int:
        """Sum one field of `ItemAudit` over the items."""
        return sum(getattr(item, name) for item in self.items)

    def campaign_total(self, name: str) -> int:
        """Sum `sold`, `paid_orders` or `revenue_cents` over the flash items and the regular ones: the
        campaign's figures, as its review counts them."""
        regular = () if self.promotions is None else self.promotions.regular
        return self.total(name) + sum(int(getattr(item, name)) for item in regular)

    @property
    def oversell(self) -> int:
        return self.total("oversell")

    @property
    def undersell(self) -> int:
        return self.total("undersell")

    @property
    def ledger_agrees_with_db(self) -> bool:
        return all(item.agrees for item in self.items)

    @property
    def ok(self) -> bool:
        """True when nothing was oversold or undersold, the books and the money agree, every
        request was kept, and the checks of the promotions, the group deal and the draw hold."""
        return (
            self.oversell == 0
            and self.undersell == 0
            and self.ledger_agrees_with_db
            and self.money_nets
            and self.tally.duplicate_orders == 0
            and not self.tally.failures
            and (self.promotions is None or self.promotions.ok)
            and (self.groups is None or self.groups.ok)
            and (self.draw is None or self.draw.ok)
        )

    @property
    def decisions_per_s(self) -> float:
        """The flash pace: purchase decisions per second of the crowd's clicks."""
        return self.decisions / self.crowd_seconds

    @property
    def orders_per_s(self) -> float:
        return self.decision_orders / self.crowd_seconds

    @property
    def checkouts_per_s(self) -> float:
        """Pays and cancels per second of the crowd's checkout phases (expiry sweeps included)."""
        return (self.tally.payments + self.tally.cancellations) / self.checkout_seconds

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        tally = self.tally
        items = [{**asdict(i), "released": i.released, "ledger_agrees_with_db": i.agrees} for i in self.items]
        totals = ("quota", "sold", "held", "available", "released", "paid_orders", "revenue_cents")
        return {
            "seed": self.seed,
            "shoppers": self.shoppers,
            "concurrency": self.concurrency,
            "items": items,
            "totals": {name: self.total(name) for name in totals},
            "rejections": {code.value: n for code, n in sorted(tally.refusals.items())},
            "failures": dict(sorted(tally.failures.items())),
            "replays": tally.replays,
            "double_clicks": tally.double_clicks,
            "duplicate_orders": tally.duplicate_orders,
            "payments": tally.payments,
            "cancellations": tally.cancellations,
            "expired_holds": tally.expired,
            "oversell": self.oversell,
            "undersell": self.undersell,
            "ledger_agrees_with_db": self.ledger_agrees_with_db,
            "money_nets": self.money_nets,
            "review": None if self.review_path is None else str(self.review_path),
            "messages": self.messages,
            "messages_seconds": round(self.messages_seconds, 3),
            "promotions": None if self.promotions is None else self.promotions.as_dict(),
            "basket_seconds": round(self.basket_seconds, 3),
            "groups": None if self.groups is None else self.groups.as_dict(),
            "group_seconds": round(self.group_seconds, 3),
            "draw": None if self.draw is None else self.draw.as_dict(),
            "draw_seconds": round(self.draw_seconds, 3),
            "ok": self.ok,
            "reserve_calls": tally.reserve_calls,
            "orders": tally.new_orders,
            "crowd_seconds": round(self.crowd_seconds, 3),
            "crowd_cpu_seconds": round(self.crowd_cpu_seconds, 3),
            "decisions": self.decisions,
            "decisions_per_s": round(self.decisions_per_s, 1),
            "orders_per_s": round(self.orders_per_s, 1),
            "checkout_seconds": round(self.checkout_seconds, 3),
            "checkouts_per_s": round(self.checkouts_per_s, 1),
            "definitions": DEFINITIONS,
        }
