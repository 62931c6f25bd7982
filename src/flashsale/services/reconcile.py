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

Every acknowledged order a repair touched is listed in the report (`affected`, written as JSON or
CSV by `write_report`): stored orders whose hold the ledger had lost (given back to the ledger,
the shopper keeps them), unpaid orders cancelled to fit the quota or a limit, and grants the
ledger answered whose Idempotency-Key already had another stored order (the stored one wins: the
order id the shopper was told does not exist). The last two took something acknowledged away.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

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

log = logging.getLogger(__name__)

# What a repair did to an acknowledged order (AffectedOrder.what).
RESTORED = "restored"  # stored, but the ledger had lost its hold: given back, the shopper keeps it
CANCELLED = "cancelled"  # unpaid, cancelled to fit the quota or the user's limit
DROPPED = "dropped"  # granted and answered, but its Idempotency-Key had another stored order
TAKEN_AWAY = (CANCELLED, DROPPED)

ReportFormat = Literal["json", "csv"]


@dataclass(frozen=True)
class AffectedOrder:
    """An acknowledged order a repair found touched by drift; `detail` says more (e.g. the kept order)."""

    order_id: str
    user_id: str
    item_id: int
    request_id: str
    what: str
    detail: str = ""


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
    affected: list[AffectedOrder] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return all(d.clean for d in self.items)

    @property
    def taken_away(self) -> list[AffectedOrder]:
        """Acknowledged orders the repair cancelled or found never stored: shoppers to tell."""
        return [a for a in self.affected if a.what in TAKEN_AWAY]

    def kinds(self) -> Counter[str]:
        """Count drift by kind across items."""
        counts: Counter[str] = Counter()
        counts["unpaid orders cancelled to fit quota or limit"] = len(self.cancelled_to_fit)
        dropped = sum(a.what == DROPPED for a in self.affected)
        counts["granted orders dropped (key had another order)"] = dropped
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
        # Retention forgets sold holds but keeps their units in `sold`: while the ledger counts every
        # stored paid unit, a paid order without its hold is one retention forgot, not one lost.
        sold_counted = level.sold == drift.stored_sold
        for hold_id, db_hold in in_db.items():
            led = in_ledger.get(hold_id)
            if led is None:
                if db_hold.is_live(now) and not (sold_counted and db_hold.state is HoldState.SOLD):
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
            dropped = self._write_missing_orders(found)
            in_ledger = {h.hold_id: h for i in item_ids for h in ledger.holds(i)}
            paid_in_ledger = {i for i, h in in_ledger.items() if h.state is HoldState.SOLD}
            cancelled = self._cancel_overcommitted(paid_in_ledger)
            fence.renew()
            with self.deps.uow() as uow:
                terms, stored = repo.all_item_terms(uow.db), repo.all_holds(uow.db)
                marks = repo.ledger_marks(uow.db)
            holds = [_further(h, in_ledger.get(h.hold_id)) for h in stored]
            fitted, over = fitting_terms(terms, holds)
            # Refused if the lease ran out meanwhile; starts a new epoch of every item's sequence.
            ledger.restore(fitted, holds, token=fence.token, marks=marks)
            after = self.inspect()  # what the rebuild left, before the sale moves on
        # Payments the ledger confirmed while their order rows lagged: their charges are journaled.
        self.orders.payments.recover()
        self.orders.expire_due()
        by_id = {h.hold_id: h for h in stored}
        affected = [
            _affected(by_id[i], RESTORED) for d in found for i in d.holds_missing_in_ledger if i in by_id
        ]
        affected += [_affected(by_id[i], CANCELLED) for i in cancelled if i in by_id]
        affected += dropped
        return ReconcileReport(
            found,
            repaired=True,
            after=after,
            cancelled_to_fit=cancelled,
            over_quota=over,
            paused_s=fence.paused_s,
            affected=affected,
        )

    def _write_missing_orders(self, drifts: list[ItemDrift]) -> list[AffectedOrder]:
        """Write an order for every hold that only the ledger knows, in the ledger's state.

        Return the holds that could not be written because their (user, request id) already has
        another stored order: the ledger granted that key twice (it had lost the first grant), the
        stored order wins, and the shopper was told an order id that does not exist.
        """
        ledger = self.deps.ledger
        missing = [h for d in drifts for i in d.orders_missing_in_db if (h := ledger.get_hold(i))]
        orders = [self.orders.priced(h) for h in missing]  # priced before the transaction opens
        if not orders:
            return []
        with self.deps.uow() as uow:
            written = repo.insert_orders(uow.db, orders)
            uow.commit()
        dropped = []
        for hold in missing:
            if hold.hold_id in written:
                continue
            with self.deps.read() as r:
                kept = r.orders.by_key(hold.user_id, hold.request_id)
            if kept is not None and kept.id != hold.hold_id:
                dropped.append(_affected(hold, DROPPED, f"the key's stored order is {kept.id}"))
        return dropped

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


def _affected(hold: Hold, what: str, detail: str = "") -> AffectedOrder:
    return AffectedOrder(hold.hold_id, hold.user_id, hold.item_id, hold.request_id, what, detail)


def render_report(report: ReconcileReport, fmt: ReportFormat) -> str:
    """The affected orders as CSV (one row each), or the whole outcome as JSON."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[f for f in AffectedOrder.__dataclass_fields__])
        writer.writeheader()
        writer.writerows(asdict(a) for a in report.affected)
        return out.getvalue()
    return json.dumps(
        {
            "repaired": report.repaired,
            "clean_after": all(d.clean for d in (report.after if report.repaired else report.items)),
            "paused_s": round(report.paused_s, 3),
            "taken_away": len(report.taken_away),
            "over_quota": {str(i): units for i, units in report.over_quota.items()},
            "affected": [asdict(a) for a in report.affected],
        },
        indent=2,
    )


def repair_lost_writes(
    orders: OrderService, drain: Callable[[], int] | None, report_dir: Path
) -> ReconcileReport | None:
    """Repair a ledger that lost acknowledged writes, and write the report as JSON and CSV in `report_dir`.

    Run by a process that saw LEDGER_BEHIND (`Refusals`); None if another process holds the pause
    lease (it is repairing). The files are `lost-writes-<UTC time>.json` and `.csv`.
    """
    try:
        report = Reconciler(orders, drain).run(repair=True)
    except FlashSaleError as exc:
        if exc.code is not ErrorCode.SALE_PAUSED:
            raise
        log.warning("the ledger lost writes; another process holds the pause lease and repairs it")
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    report_dir.mkdir(parents=True, exist_ok=True)
    for fmt in ("json", "csv"):
        (report_dir / f"lost-writes-{stamp}.{fmt}").write_text(render_report(report, fmt))
    log.error(
        "ledger repaired after lost writes: paused %.3f s, %d acknowledged orders affected (%d taken "
        "away: %s); report %s",
        report.paused_s,
        len(report.affected),
        len(report.taken_away),
        ", ".join(a.order_id for a in report.taken_away) or "none",
        report_dir / f"lost-writes-{stamp}.json",
    )
    return report


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
