"""Reconciliation: compare the ledger with the system of record, report drift, and repair it.

The database is the truth for every order it holds; the ledger is the truth for holds whose order
never reached the database (the writer lagged or crashed). Repair runs with the items paused (their
window closed in the ledger) so no reservation slips between the comparison and the rebuild; the
original terms come back with the rebuild.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sqlalchemy import select

from flashsale.domain.errors import FlashSaleError
from flashsale.domain.holds import Hold, HoldState
from flashsale.domain.orders import OrderStatus
from flashsale.domain.sale import ItemTerms
from flashsale.ledger.contract import StockLevel
from flashsale.services.orders import OrderService
from flashsale.store import repositories as repo
from flashsale.store.tables import OrderRow


@dataclass
class ItemDrift:
    item_id: int
    ledger: StockLevel
    stored_sold: int
    stored_held: int
    orders_missing_in_db: list[str] = field(default_factory=list)
    holds_missing_in_ledger: list[str] = field(default_factory=list)
    state_mismatches: list[tuple[str, str, str]] = field(default_factory=list)  # (id, db, ledger)

    @property
    def clean(self) -> bool:
        return (
            self.ledger.conserved
            and self.ledger.sold == self.stored_sold
            and self.ledger.held == self.stored_held
            and not (self.orders_missing_in_db or self.holds_missing_in_ledger or self.state_mismatches)
        )


@dataclass
class ReconcileReport:
    items: list[ItemDrift]
    repaired: bool
    after: list[ItemDrift] = field(default_factory=list)
    cancelled_to_fit: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return all(d.clean for d in self.items)

    def kinds(self) -> Counter[str]:
        """Count drift by kind across items."""
        counts: Counter[str] = Counter()
        counts["unpaid orders cancelled to fit quota or limit"] = len(self.cancelled_to_fit)
        for d in self.items:
            counts["orders missing in db"] += len(d.orders_missing_in_db)
            counts["holds missing in ledger"] += len(d.holds_missing_in_ledger)
            counts["state mismatches"] += len(d.state_mismatches)
            counts["counter drift"] += int(d.ledger.sold != d.stored_sold or d.ledger.held != d.stored_held)
        return counts


LIVE_STATUSES = (OrderStatus.PAID.value, OrderStatus.UNPAID.value)


class Reconciler:
    """`drain` (the order writer's) is called first, so orders merely in flight are not drift."""

    def __init__(self, orders: OrderService, drain: Callable[[], int] | None = None) -> None:
        self.orders = orders
        self.deps = orders.deps
        self.drain = drain

    def inspect(self) -> list[ItemDrift]:
        """Compare every item's ledger holds and counters with the stored orders."""
        with self.deps.uow() as uow:
            terms = repo.all_item_terms(uow.db)
            by_item: defaultdict[int, list[Hold]] = defaultdict(list)
            for hold in repo.all_holds(uow.db):
                by_item[hold.item_id].append(hold)
        return [self._compare(t, by_item[t.item_id]) for t in terms]

    def _compare(self, terms: ItemTerms, stored: list[Hold]) -> ItemDrift:
        now = self.deps.clock()
        ledger = self.deps.ledger
        in_ledger = {h.hold_id: h for h in ledger.holds(terms.item_id)}
        in_db = {h.hold_id: h for h in stored}
        drift = ItemDrift(
            item_id=terms.item_id,
            ledger=ledger.stock(terms.item_id),
            stored_sold=sum(h.qty for h in stored if h.state is HoldState.SOLD),
            stored_held=sum(h.qty for h in stored if h.state is HoldState.HELD and not h.is_due(now)),
        )
        drift.orders_missing_in_db = sorted(set(in_ledger) - set(in_db))
        for hold_id, db_hold in in_db.items():
            led = in_ledger.get(hold_id)
            if led is None:
                if db_hold.is_live(now):
                    drift.holds_missing_in_ledger.append(hold_id)
            elif led.is_live(now) != db_hold.is_live(now) or (led.state is HoldState.SOLD) != (
                db_hold.state is HoldState.SOLD
            ):
                drift.state_mismatches.append((hold_id, db_hold.state.value, led.state.value))
        return drift

    def run(self, *, repair: bool) -> ReconcileReport:
        """Inspect, and with `repair` pause the sale, make both sides agree, and resume it."""
        if not repair:
            if self.drain is not None:
                self.drain()
            return ReconcileReport(self.inspect(), repaired=False)
        ledger = self.deps.ledger
        with self.deps.uow() as uow:
            terms = repo.all_item_terms(uow.db)
        self._pause(terms)
        try:
            if self.drain is not None:
                self.drain()  # what was decided before the pause
            found = self.inspect()
            self._write_missing_orders(found)
            cancelled = self._cancel_overcommitted(terms)
        finally:
            # Rebuild from the store, the truth now that every ledger-only hold is written down;
            # the stored terms bring the real sale windows back.
            with self.deps.uow() as uow:
                ledger.restore(repo.all_item_terms(uow.db), repo.all_holds(uow.db))
        self.orders.expire_due()
        return ReconcileReport(found, repaired=True, after=self.inspect(), cancelled_to_fit=cancelled)

    def _pause(self, terms: list[ItemTerms]) -> None:
        """Close every item's window in the ledger so no reservation slips in while we compare."""
        ledger = self.deps.ledger
        now = self.deps.clock()
        for t in terms:
            try:
                level = ledger.stock(t.item_id)
                quota = max(t.quota, level.held + level.sold)  # a drifted ledger may hold more than the quota
            except FlashSaleError:
                quota = t.quota  # unknown to the ledger: the rebuild adds it
            ledger.configure(
                replace(t, quota=quota, opens_at=min(t.opens_at, now), closes_at=min(t.closes_at, now))
            )

    def _write_missing_orders(self, drifts: list[ItemDrift]) -> None:
        """Write an order for every hold that only the ledger knows, in the ledger's state."""
        ledger = self.deps.ledger
        missing = [h for d in drifts for i in d.orders_missing_in_db if (h := ledger.get_hold(i))]
        orders = [self.orders.priced(h) for h in missing]  # priced before the transaction opens
        if orders:
            with self.deps.uow() as uow:
                repo.insert_orders(uow.db, orders)
                uow.commit()

    def _cancel_overcommitted(self, terms: list[ItemTerms]) -> list[str]:
        """Cancel the newest unpaid orders beyond a user's limit or the item's quota; return their ids.

        This only happens when the ledger lost acknowledged writes (e.g. Redis with fsync every
        second killed at the wrong moment) and sold those units again. Paid orders are never
        cancelled here; if they alone exceed the quota the rebuild refuses and says so.
        """
        now = self.deps.clock()
        cancelled: list[str] = []
        with self.deps.uow() as uow:
            for t in terms:
                rows = uow.db.scalars(
                    select(OrderRow)
                    .where(OrderRow.item_id == t.item_id, OrderRow.status.in_(LIVE_STATUSES))
                    .order_by(OrderRow.created_at.desc(), OrderRow.id.desc())
                ).all()
                live = [repo.order_of(r) for r in rows if repo.hold_of(r).is_live(now)]
                per_user: Counter[str] = Counter()
                for o in live:
                    per_user[o.user_id] += o.qty
                total = sum(per_user.values())
                for o in live:  # newest first
                    if o.status is not OrderStatus.UNPAID:
                        continue
                    if per_user[o.user_id] > t.per_user_limit or total > t.quota:
                        gone = o.cancelled(now)
                        if not repo.save_transition(uow.db, o, gone):
                            continue  # the sale is paused, but a late payment or sweep may still land
                        uow.record(gone.event(now))
                        per_user[o.user_id] -= o.qty
                        total -= o.qty
                        cancelled.append(o.id)
            self.deps.commit(uow)
        return cancelled
