"""Reconciliation: compare the ledger with the system of record, report drift, and repair it.

The database is the truth for every order it holds; the ledger is the truth for holds whose order
never reached the database (the writer lagged or crashed), and for moves it decided whose write to
the database is still on its way (a payment the ledger confirmed a moment ago: the ledger decides
first, the order row follows). So the rebuild takes, per hold, the state that is further along:
a paid hold is never turned back into a held one.

Repair runs under a pause lease of every item (`services/fence.py`): every ledger write to them
is refused with SALE_PAUSED (shoppers hear 503 + Retry-After; the sale window stays as it is), so
nothing changes between the comparison and the rebuild, and the rebuild is a compare-and-set on
the lease. The lease is renewed step by step and always given back; if reconcile dies, it ends by
itself. An item whose paid orders alone exceed its quota is reported, not repaired (an operator
refunds); it is rebuilt selling nothing more, and every other item is repaired and resumed.
A dry run reads only: it neither drains the order stream nor pauses nor rebuilds.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import HOLD_TRANSITIONS, Hold, HoldState
from flashsale.domain.orders import OrderStatus
from flashsale.domain.sale import ItemTerms
from flashsale.ledger.contract import StockLevel
from flashsale.services.fence import DEFAULT_LEASE_S, Fence, fitting_terms
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
    # Holds the ledger moved further than the database recorded yet (a payment or cancellation whose
    # row is being written): not drift. The stored counts above count them as landed.
    in_flight: list[str] = field(default_factory=list)
    known_to_ledger: bool = True  # False: the ledger has no terms for the item (e.g. Redis came back empty)

    @property
    def clean(self) -> bool:
        return (
            self.known_to_ledger
            and self.ledger.conserved
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
    over_quota: dict[int, int] = field(default_factory=dict)  # item -> units its paid orders take
    paused_s: float = 0.0  # how long the items were paused for the repair

    @property
    def clean(self) -> bool:
        return all(d.clean for d in self.items)

    def kinds(self) -> Counter[str]:
        """Count drift by kind across items."""
        counts: Counter[str] = Counter()
        counts["unpaid orders cancelled to fit quota or limit"] = len(self.cancelled_to_fit)
        counts["items over quota (refund by hand)"] = len(self.over_quota)
        for d in self.items:
            counts["items missing in ledger"] += int(not d.known_to_ledger)
            counts["moves in flight (not drift)"] += len(d.in_flight)
            counts["orders missing in db"] += len(d.orders_missing_in_db)
            counts["holds missing in ledger"] += len(d.holds_missing_in_ledger)
            counts["state mismatches"] += len(d.state_mismatches)
            counts["counter drift"] += int(d.ledger.sold != d.stored_sold or d.ledger.held != d.stored_held)
        return counts


LIVE_STATUSES = (OrderStatus.PAID.value, OrderStatus.UNPAID.value)


class Reconciler:
    """`drain` (the order writer's) is called under the pause, so orders merely in flight are not drift."""

    def __init__(
        self,
        orders: OrderService,
        drain: Callable[[], int] | None = None,
        *,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self.orders = orders
        self.deps = orders.deps
        self.drain = drain
        self.lease_s = lease_s

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
        landed = [_further(h, in_ledger.get(h.hold_id)) for h in stored]
        in_db = {h.hold_id: h for h in landed}
        try:
            level, known = ledger.stock(terms.item_id), True
        except FlashSaleError as exc:
            if exc.code is not ErrorCode.UNKNOWN_ITEM:
                raise
            level, known = StockLevel(terms.item_id, 0, 0, 0, 0), False
        drift = ItemDrift(
            item_id=terms.item_id,
            ledger=level,
            stored_sold=sum(h.qty for h in landed if h.state is HoldState.SOLD),
            stored_held=sum(h.qty for h in landed if h.state is HoldState.HELD and not h.is_due(now)),
            known_to_ledger=known,
            in_flight=[a.hold_id for a, b in zip(landed, stored, strict=True) if a.state is not b.state],
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
        """Inspect; with `repair`, pause every item, make both sides agree and resume (see the module doc)."""
        if not repair:
            return ReconcileReport(self.inspect(), repaired=False)
        ledger = self.deps.ledger
        with self.deps.uow() as uow:
            item_ids = [t.item_id for t in repo.all_item_terms(uow.db)]
        fence = Fence(ledger, self.deps.clock, item_ids, lease_s=self.lease_s)
        with fence.hold():
            if self.drain is not None:
                self.drain()  # what was decided before the pause
            fence.renew()
            found = self.inspect()
            self._write_missing_orders(found)
            in_ledger = {h.hold_id: h for i in item_ids for h in ledger.holds(i)}
            paid_in_ledger = {i for i, h in in_ledger.items() if h.state is HoldState.SOLD}
            cancelled = self._cancel_overcommitted(paid_in_ledger)
            fence.renew()
            with self.deps.uow() as uow:
                terms, stored = repo.all_item_terms(uow.db), repo.all_holds(uow.db)
            holds = [_further(h, in_ledger.get(h.hold_id)) for h in stored]
            fitted, over = fitting_terms(terms, holds)
            ledger.restore(fitted, holds, token=fence.token)  # refused if the lease ran out meanwhile
            after = self.inspect()  # what the rebuild left, before the sale moves on
        # Payments the ledger confirmed while their order rows lagged: their charges are journaled.
        self.orders.payments.recover()
        self.orders.expire_due()
        return ReconcileReport(
            found,
            repaired=True,
            after=after,
            cancelled_to_fit=cancelled,
            over_quota=over,
            paused_s=fence.paused_s,
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

    def _cancel_overcommitted(self, paid_in_ledger: set[str]) -> list[str]:
        """Cancel the newest unpaid orders beyond a user's limit or the item's quota; return their ids.

        This only happens when the ledger lost acknowledged writes (e.g. Redis with fsync every
        second killed at the wrong moment) and sold those units again. Paid orders are never
        cancelled here, nor those the ledger already confirmed (their payment is being written);
        if paid ones alone exceed the quota the item is reported as over quota.
        """
        now = self.deps.clock()
        cancelled: list[str] = []
        with self.deps.uow() as uow:
            for t in repo.all_item_terms(uow.db):
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
                    if o.status is not OrderStatus.UNPAID or o.id in paid_in_ledger:
                        continue
                    if per_user[o.user_id] > t.per_user_limit or total > t.quota:
                        gone = o.cancelled(now)
                        if not repo.save_transition(uow.db, o, gone):
                            continue  # a late sweep may still land
                        uow.record(gone.event(now))
                        per_user[o.user_id] -= o.qty
                        total -= o.qty
                        cancelled.append(o.id)
            self.deps.commit(uow)
        return cancelled


def _further(stored: Hold, in_ledger: Hold | None) -> Hold:
    """The stored hold, in the ledger's state if the ledger moved it further (its write is on the way).

    The ledger decides a move before the database records it, so a state reachable from the stored
    one is newer; one that is not (a ledger that lost writes) is older, and the store wins.
    """
    if in_ledger is None:
        return stored
    nxt = HOLD_TRANSITIONS[stored.state]
    if in_ledger.state in nxt or any(in_ledger.state in HOLD_TRANSITIONS[s] for s in nxt):
        return stored._replace(state=in_ledger.state)
    return stored
