"""Retention: the ledger forgets finished holds, later sold ones, and their request keys once old enough.

Without it a long campaign's ledger grows with every grant (in Redis: a hold record, a request key,
an index entry and on a Cluster a claim, per purchase). A hold that finished (released, refunded,
or expired and handed out) never changes again, so once its order is in the store the ledger may
drop it: counters do not move, the store answers for it (`services/recall.py`). Held holds stay: a
payment or an expiry still needs them.

Sold holds are the bulk of a successful campaign's ledger. They stay longer (`sold_keep_s`,
FLASHSALE_LEDGER_SOLD_RETENTION_HOURS, a week by default: the return window within which most
refunds come, when a refund by hold id costs one script call) and are then forgotten as well:
their units stay sold and count against the shopper's limit. A refund after that takes the hold
from the stored order (`Ledger.refund_stored`, services/settlement.py), which moves the units once
however often it is repeated.

The ledger forgets a hold only while the store says paid exactly when the ledger says sold:
- a finished hold whose order the store lacks gets it written first (insert-or-ignore, so the order
  writer's copy is harmless; a row refused because its key has another order is fine: that order
  is what the key answers);
- a finished hold whose order is stored as paid is kept: its refund moved the ledger but has not
  reached the store yet (a crash between the two), and the recovery that carries it out must find
  the hold refunded, or `refund_stored` would move its units a second time;
- a sold hold is forgotten only once its order is stored as paid (a payment the store has not
  recorded yet is confirmed again by recovery, which needs the hold).
Kept holds are looked at again by the next pass.

Holds an older deploy finished or sold are not in the ledger's indexes: each pass first goes on
indexing them (`Ledger.index_finished`, at most INDEX_PAGES pages a pass) until the ledger says
none is left (one cheap call a pass after that, until the Redis engine scans again a day later).

`forget_finished` is idempotent and safe to run from every process at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flashsale.domain.holds import Hold, HoldState
from flashsale.domain.orders import Order, OrderStatus
from flashsale.services.orders import OrderService, store_placed

HOUR_S = 3600.0
INDEX_PAGES = 100  # pages of the index backfill per pass: a pass over a big old ledger stays short


@dataclass(frozen=True, slots=True)
class RetentionPass:
    """What one pass did: finished holds forgotten, orders it had to write first (the writer
    lagged), and sold holds forgotten."""

    forgotten: int
    written: int
    sold: int = 0


def store_agrees(hold: Hold, stored: Order | None) -> bool:
    """True when the store says paid exactly when the ledger says sold (see the module doc)."""
    return (stored is not None and stored.status is OrderStatus.PAID) == (hold.state is HoldState.SOLD)


class Retention:
    """Forget finished holds older than `keep_s` (by when they finished) and sold ones older than
    `sold_keep_s` (by when they were sold), `batch` at a time."""

    def __init__(self, orders: OrderService, *, keep_s: float, sold_keep_s: float, batch: int = 1000) -> None:
        self.orders = orders
        self.keep_s = keep_s
        self.sold_keep_s = sold_keep_s
        self.batch = batch

    def forget_finished(self) -> RetentionPass:
        """Index what an older deploy left, then forget every finished hold that finished `keep_s`
        ago or earlier and every sold one sold `sold_keep_s` ago or earlier; return what was done."""
        ledger = self.orders.deps.ledger
        for _ in range(INDEX_PAGES):
            if ledger.index_finished(self.batch):
                break
        now = self.orders.deps.clock()
        forgotten, written = self._forget(ledger.finished, ledger.forget, now - self.keep_s)
        sold, _ = self._forget(ledger.sold_before, ledger.forget_sold, now - self.sold_keep_s)
        return RetentionPass(forgotten, written, sold)

    def _forget(
        self,
        listed: Callable[[float, int], list[Hold]],
        forget: Callable[[Iterable[str]], int],
        before: float,
    ) -> tuple[int, int]:
        """Forget what `listed` gives before `before` and the store answers for; (forgotten, written)."""
        deps = self.orders.deps
        forgotten = written = 0
        while holds := listed(before, self.batch):
            with deps.read() as r:
                stored = r.orders.get_many(h.hold_id for h in holds)
            missing = [h for h in holds if h.hold_id not in stored and h.state is not HoldState.SOLD]
            if missing:
                with deps.uow() as uow:
                    written += len(store_placed(uow, [self.orders.priced(h) for h in missing]))
                    deps.commit(uow)
            gone = forget(h.hold_id for h in holds if store_agrees(h, stored.get(h.hold_id)))
            forgotten += gone
            if gone == 0 or len(holds) < self.batch:  # 0: all kept, or another process forgot them
                break
        return forgotten, written
