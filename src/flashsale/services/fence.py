"""Pausing items while the ledger is repaired, and rebuilding a shared ledger that lost its data.

A repair (reconcile, the rebuild of an emptied Redis) holds a pause lease on the items it works
on (`Ledger.pause`): every ledger write to them is refused with SALE_PAUSED, which shoppers hear
as 503 with Retry-After, and the rebuild itself is a compare-and-set on that lease (`restore` with
the token), so a repair that outlived its lease changes nothing. The lease ends by itself, so a
repair killed halfway never leaves the sale closed for longer than the lease. The lease is also
the lock: only one process holds it, so of many workers that find Redis empty only one rebuilds.

A ledger that lost acknowledged writes but not everything (Redis restarted on a stale AOF, a
failover to a lagging replica) refuses purchases with LEDGER_BEHIND (see the ledger contract's
sequences); `Refusals` answers those as SALE_PAUSED and starts the repair hook the platform gave
it (reconcile under the lease, in a thread of this process; another process holding the lease is
already at it).
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from flashsale.clock import Clock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold, HoldState
from flashsale.domain.sale import ItemTerms
from flashsale.ledger.contract import Ledger, Pause
from flashsale.services.deps import Deps
from flashsale.store import repositories as repo

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0  # a repair renews it as it goes; a dead one frees the sale after at most this
PAUSE_READ_TTL_S = 0.25  # refusals during a pause share one read of the leases per this long
HEAL_EVERY_S = 0.5  # a process looks for a lost ledger at most this often (a rebuild may be under way)


class Fence:
    """One pause lease over some items: `hold` takes it, `renew` extends it, leaving the block resumes."""

    def __init__(
        self, ledger: Ledger, clock: Clock, item_ids: Iterable[int], *, lease_s: float = DEFAULT_LEASE_S
    ) -> None:
        self.ledger = ledger
        self.clock = clock  # the ledger's: the lease's deadline is on the clock the ledger decides with
        self.item_ids = sorted(set(item_ids))
        self.lease_s = lease_s
        self.token = secrets.token_hex(12)
        self.paused_s = 0.0  # how long the items stood still, for the report

    def renew(self) -> None:
        """Take the lease, or extend it for another `lease_s`; SALE_PAUSED if someone else holds it."""
        self.ledger.pause(self.item_ids, until=self.clock() + self.lease_s, token=self.token)

    @contextmanager
    def hold(self) -> Iterator[Fence]:
        """Pause the items for the block, and resume them however the block ends."""
        self.renew()
        paused_at = time.monotonic()
        try:
            yield self
        finally:
            self.ledger.resume(self.item_ids, token=self.token)
            self.paused_s = time.monotonic() - paused_at


def committed_units(holds: Iterable[Hold]) -> Counter[int]:
    """Units that take stock, per item: what a rebuild counts as held or sold."""
    units: Counter[int] = Counter()
    for h in holds:
        if h.state in (HoldState.HELD, HoldState.SOLD):
            units[h.item_id] += h.qty
    return units


def fitting_terms(
    terms: Iterable[ItemTerms], holds: Iterable[Hold]
) -> tuple[list[ItemTerms], dict[int, int]]:
    """Terms a rebuild accepts, and the items whose stored holds exceed their quota (item -> units).

    An item over its quota (only paid orders are left there once reconcile cancelled what it may)
    is rebuilt with its quota raised to what it holds, so nothing more is sold of it and every
    other item can be rebuilt and resumed; the caller reports it for an operator to refund.
    """
    units = committed_units(holds)
    fitted, over = [], {}
    for t in terms:
        if units[t.item_id] > t.quota:
            over[t.item_id] = units[t.item_id]
            t = replace(t, quota=units[t.item_id])
        fitted.append(t)
    return fitted, over


def knows(ledger: Ledger, item_id: int) -> bool:
    """True when the ledger has the item's terms."""
    try:
        ledger.stock(item_id)
    except FlashSaleError as exc:
        if exc.code is ErrorCode.UNKNOWN_ITEM:
            return False
        raise
    return True


def sync_shared_ledger(deps: Deps, *, lease_s: float = DEFAULT_LEASE_S) -> None:
    """Teach a shared (Redis) ledger the items it does not know yet, without touching live counters.

    Other processes may be selling right now, so the counters are never replaced here. Only an
    empty ledger (new, or a Redis that lost its data) is rebuilt from the store, under a pause
    lease (see `rebuild_lost_ledger`); any other drift is for `flashsale reconcile`.
    """
    ledger = deps.ledger
    with deps.uow() as uow:
        terms = repo.all_item_terms(uow.db)
        # What the order writers stored is the floor from the start: a process that never saw the
        # grants a stale Redis lost refuses to sell them again too.
        ledger.expect(repo.ledger_marks(uow.db))
    unknown = [t for t in terms if not knows(ledger, t.item_id)]
    if terms and len(unknown) == len(terms):
        rebuild_lost_ledger(deps, lease_s=lease_s)
        return
    for t in unknown:
        try:
            ledger.configure(t)
        except FlashSaleError as exc:
            if exc.code is not ErrorCode.SALE_PAUSED:
                raise  # paused: a repair is under way, and its rebuild brings the item's terms


def rebuild_lost_ledger(deps: Deps, *, lease_s: float = DEFAULT_LEASE_S) -> bool:
    """Rebuild a ledger that knows none of the stored items from the store; True if this call did.

    The rebuild runs under a pause lease of every item, so purchases hear SALE_PAUSED (not
    UNKNOWN_ITEM) until it is done, and of several processes that find the ledger empty at once
    only the one that took the lease rebuilds; the others return False at once.
    """
    ledger = deps.ledger
    with deps.uow() as uow:
        item_ids = [t.item_id for t in repo.all_item_terms(uow.db)]
    fence = Fence(ledger, deps.clock, item_ids, lease_s=lease_s)
    try:
        with fence.hold():
            if any(knows(ledger, i) for i in item_ids):
                return False  # another process rebuilt it between our look and our lease
            with deps.uow() as uow:
                terms, holds = repo.all_item_terms(uow.db), repo.all_holds(uow.db)
                marks = repo.ledger_marks(uow.db)
            fitted, over = fitting_terms(terms, holds)
            if over:
                log.error("rebuilding the ledger: stored orders exceed the quota of items %s", over)
            ledger.restore(fitted, holds, token=fence.token, marks=marks)
    except FlashSaleError as exc:
        if exc.code is ErrorCode.SALE_PAUSED:
            return False  # another process holds the lease: it is rebuilding
        raise
    log.warning("the ledger had lost its data: rebuilt %d items from the store", len(item_ids))
    return True


class Refusals:
    """Turns a ledger's refusal of a purchase into what the shopper is told.

    SALE_PAUSED carries how long the lease may still run (the edge caps what it tells). UNKNOWN_ITEM
    for an item the store knows means a shared ledger lost it (Redis came back empty): the ledger
    is healed (rebuilt under a lease, or taught the item) and the shopper hears SALE_PAUSED, to
    retry in a second, instead of a false UNKNOWN_ITEM. LEDGER_BEHIND (the ledger lost acknowledged
    writes) is answered as SALE_PAUSED too, and starts `repair` in a thread, one at a time.
    """

    def __init__(self, deps: Deps, *, shared: bool) -> None:
        self.deps = deps
        self.shared = shared
        # Set by the platform (bootstrap) where the ledger can lose writes: reconcile under the lease.
        self.repair: Callable[[], object] | None = None
        self._repairing = threading.Lock()  # held by the repair thread while it runs
        self._lost_at = -math.inf
        self._pauses: tuple[float, dict[int, Pause]] = (-math.inf, {})
        # A burst of refusals heals once: one at a time in this process, and not again right after.
        self._healing = threading.Lock()
        self._healed_at = -math.inf

    def refusal(self, item_id: int, code: ErrorCode) -> FlashSaleError:
        """The error to raise for a purchase of `item_id` the ledger refused with `code`."""
        if code is ErrorCode.SALE_PAUSED:
            return self._paused(item_id)
        if code is ErrorCode.LEDGER_BEHIND:
            self.lost_writes(item_id)
            return FlashSaleError(
                ErrorCode.SALE_PAUSED,
                f"item {item_id} is paused: its stock ledger lost writes, being repaired; retry shortly",
                retry_after_s=1.0,
            )
        if code is ErrorCode.UNKNOWN_ITEM and self.shared and self._stored(item_id):
            self._heal()
            return FlashSaleError(
                ErrorCode.SALE_PAUSED, "the stock ledger is being rebuilt; retry shortly", retry_after_s=1.0
            )
        return FlashSaleError(code)

    def lost_writes(self, item_id: int) -> None:
        """The ledger lost acknowledged writes of `item_id`: log it, and start the repair hook in a thread.

        Shoppers must not wait for the repair. At most one runs in this process, and one starts at
        most every HEAL_EVERY_S (another process may hold the lease meanwhile), so a burst of
        refusals neither floods the log nor spawns threads. Without a hook (a CLI command) only
        the log says it: reconcile repairs.
        """
        if not self._repairing.acquire(blocking=False):
            return  # a repair of this process is under way
        if time.monotonic() - self._lost_at < HEAL_EVERY_S:
            self._repairing.release()
            return
        self._lost_at = time.monotonic()
        log.error(
            "LEDGER LOST ACKNOWLEDGED WRITES: item %s's sequence went back below what was acknowledged "
            "(Redis restarted on a stale AOF or failed over to a lagging replica)%s",
            item_id,
            "; pausing and repairing" if self.repair is not None else "; run `flashsale reconcile`",
        )
        if self.repair is None:
            self._repairing.release()
            return
        threading.Thread(target=self._run_repair, name="flashsale-lost-writes", daemon=True).start()

    def _run_repair(self) -> None:
        try:
            assert self.repair is not None
            self.repair()
        except Exception:
            log.exception("repairing the ledger after lost writes failed; the next refusal tries again")
        finally:
            self._repairing.release()

    def _heal(self) -> None:
        if not self._healing.acquire(blocking=False):
            return  # another thread of this process is at it
        try:
            if time.monotonic() - self._healed_at >= HEAL_EVERY_S:
                sync_shared_ledger(self.deps)
                self._healed_at = time.monotonic()
        finally:
            self._healing.release()

    def _paused(self, item_id: int) -> FlashSaleError:
        read_at, pauses = self._pauses
        if time.monotonic() - read_at > PAUSE_READ_TTL_S:
            pauses = self.deps.ledger.pauses()
            self._pauses = (time.monotonic(), pauses)
        pause = pauses.get(item_id)
        wait = 1.0 if pause is None else pause.until - self.deps.clock()
        return FlashSaleError(
            ErrorCode.SALE_PAUSED,
            f"item {item_id} is paused for a moment (stock reconciliation); retry shortly",
            retry_after_s=max(wait, 0.0),
        )

    def _stored(self, item_id: int) -> bool:
        try:
            self.deps.prices.get(item_id)
        except FlashSaleError as exc:
            if exc.code is ErrorCode.UNKNOWN_ITEM:
                return False
            raise
        return True
