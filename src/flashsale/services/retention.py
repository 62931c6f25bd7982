"""Retention: the ledger forgets finished holds and their request keys once they are old enough.

Without it a long campaign's ledger grows with every grant (in Redis: a hold record, a request key,
an index entry and on a Cluster a claim, per purchase). A hold that finished (released, refunded,
or expired and handed out) never changes again, so once its order is in the store the ledger may
drop it: counters do not move, the store answers for it (`services/recall.py`). Held and sold holds
stay: a payment, an expiry or a refund still needs them.

`forget_finished` is idempotent and safe to run from every process at once: it only ever forgets
holds the ledger lists as finished, each after making sure its order is stored (a row the order
writer has not written yet is written here; insert-or-ignore, so the writer's copy is harmless).
"""

from __future__ import annotations

from dataclasses import dataclass

from flashsale.services.orders import OrderService, store_placed

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class RetentionPass:
    """What one pass did: holds forgotten, and orders it had to write first (the writer lagged)."""

    forgotten: int
    written: int


class Retention:
    """Forget finished holds older than `keep_s` (by when they finished), `batch` at a time."""

    def __init__(self, orders: OrderService, *, keep_s: float, batch: int = 1000) -> None:
        self.orders = orders
        self.keep_s = keep_s
        self.batch = batch

    def forget_finished(self) -> RetentionPass:
        """Forget every finished hold that finished `keep_s` ago or earlier; return what was done."""
        deps = self.orders.deps
        before = deps.clock() - self.keep_s
        forgotten = written = 0
        while holds := deps.ledger.finished(before, self.batch):
            ids = [h.hold_id for h in holds]
            with deps.read() as r:
                stored = r.orders.stored_ids(ids)
            missing = [h for h in holds if h.hold_id not in stored]
            if missing:
                # The store must answer for a hold before the ledger forgets it. A row refused because
                # its key has another order is fine: that order is what the key answers.
                with deps.uow() as uow:
                    written += len(store_placed(uow, [self.orders.priced(h) for h in missing]))
                    deps.commit(uow)
            gone = deps.ledger.forget(ids)
            forgotten += gone
            if gone == 0 or len(holds) < self.batch:  # 0: another process forgot them meanwhile
                break
        return RetentionPass(forgotten, written)
