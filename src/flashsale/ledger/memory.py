"""The in-process stock ledger: the embedded default. One lock, plain dicts, a heap of due times.

It lives in one process, so the system of record (the database) is the truth across restarts:
`restore` rebuilds it from the stored orders at start-up.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

from flashsale.clock import Clock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold, HoldState, is_due, transition_error
from flashsale.domain.sale import ItemTerms, check_hold_request
from flashsale.ledger.contract import (
    BookId,
    Decision,
    Pause,
    PurchaseStream,
    StockLevel,
    next_epoch,
    paused_error,
)
from flashsale.ledger.ids import HoldIdPool

# Refusals carry nothing but their code: one shared, immutable Decision per code.
_REFUSED = {code: Decision(None, code) for code in ErrorCode}


class _Book:
    """Mutable counters of one item; only touched under the ledger lock."""

    __slots__ = ("available", "held", "seq", "sold", "terms", "used")

    def __init__(self, terms: ItemTerms, seq: int = 0) -> None:
        self.terms = terms
        self.available = terms.quota
        self.held = 0
        self.sold = 0
        self.seq = seq
        self.used: dict[str, int] = {}

    def level(self) -> StockLevel:
        return StockLevel(self.terms.item_id, self.terms.quota, self.available, self.held, self.sold)


class MemoryLedger:
    """Thread-safe in-process implementation of `flashsale.ledger.contract.Ledger`."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._books: dict[int, _Book] = {}
        self._holds: dict[str, Hold] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._due: list[tuple[float, str]] = []
        self._expired_unreported: list[Hold] = []
        self._pauses: dict[int, Pause] = {}  # may name items the ledger does not know (yet)
        # Retention: finished holds -> when they finished, sold holds -> when they were sold (in
        # that order: the clock only goes forward), and the users some of whose keys were
        # forgotten -> when last.
        self._done: dict[str, float] = {}
        self._sold: dict[str, float] = {}
        self._retired: dict[str, float] = {}
        # Never above the sequences here while the process runs (nothing else writes this ledger),
        # but kept, so the contract's floors hold on every engine.
        self._floors: dict[int, int] = {}
        # Drawn under the lock, from a pool, so a lone `reserve` does not pay a system call per id.
        self._new_id = HoldIdPool()

    def purchase_stream(self) -> PurchaseStream | None:
        """None: the caller of `reserve` records the orders of this engine itself."""
        return None

    def close(self) -> None:
        """Nothing to release: the ledger holds no connection."""

    # -- pauses ----------------------------------------------------------------------------------
    def _live_pause(self, item_id: int, now: float) -> Pause | None:
        """The item's pause if its lease has not ended at `now` (under the lock)."""
        pause = self._pauses.get(item_id)
        return pause if pause is not None and now < pause.until else None

    def _check_not_paused(self, item_id: int, now: float) -> None:
        pause = self._live_pause(item_id, now)
        if pause is not None:
            raise paused_error(item_id, pause.until, now)

    def pause(self, item_ids: Iterable[int], *, until: float, token: str) -> None:
        with self._lock:
            now, item_ids = self._clock(), list(item_ids)
            for item_id in item_ids:  # all checked before any is written: all or nothing
                pause = self._live_pause(item_id, now)
                if pause is not None and pause.token != token:
                    raise paused_error(item_id, pause.until, now)
            for item_id in item_ids:
                self._pauses[item_id] = Pause(until, token)

    def resume(self, item_ids: Iterable[int], *, token: str | None) -> None:
        with self._lock:
            for item_id in item_ids:
                pause = self._pauses.get(item_id)
                if pause is not None and token in (None, pause.token):
                    del self._pauses[item_id]

    def pauses(self) -> dict[int, Pause]:
        with self._lock:
            now = self._clock()
            return {i: p for i, p in self._pauses.items() if now < p.until}

    # -- configuration -------------------------------------------------------------------------
    def configure(self, terms: ItemTerms) -> StockLevel:
        with self._lock:
            self._check_not_paused(terms.item_id, self._clock())
            book = self._books.get(terms.item_id)
            if book is None:
                book = self._books[terms.item_id] = _Book(terms)
                return book.level()
            self._sweep(self._clock())
            committed = book.held + book.sold
            if terms.quota < committed:
                raise FlashSaleError(
                    ErrorCode.QUOTA_BELOW_COMMITTED,
                    f"quota {terms.quota} is below the {committed} units already held or sold",
                )
            book.terms = terms
            book.available = terms.quota - committed
            return book.level()

    def restore(
        self,
        terms: Iterable[ItemTerms],
        holds: Iterable[Hold],
        *,
        token: str | None = None,
        marks: Mapping[BookId, int] | None = None,
    ) -> None:
        terms, marks = list(terms), marks or {}
        with self._lock:
            if token is None:
                self._pauses.clear()
            else:
                now = self._clock()
                live = {t.item_id: self._live_pause(t.item_id, now) for t in terms}
                lost = [i for i, pause in live.items() if pause is None or pause.token != token]
                if lost:
                    raise FlashSaleError(ErrorCode.CONFLICT, f"the pause lease of items {lost} is not held")
            old = {i: b.seq for i, b in self._books.items()}
            self._books = {
                t.item_id: _Book(
                    t,
                    next_epoch(
                        old.get(t.item_id, 0), self._floors.get(t.item_id, 0), marks.get((t.item_id, 0), 0)
                    ),
                )
                for t in terms
            }
            self._holds.clear()
            self._by_key.clear()
            self._due.clear()
            self._expired_unreported.clear()
            self._done.clear()
            self._sold.clear()
            self._retired.clear()  # every key it is given is known again
            now = self._clock()
            for hold in holds:
                book = self._books[hold.item_id]
                self._holds[hold.hold_id] = hold
                self._by_key[(hold.user_id, hold.request_id)] = hold.hold_id
                if hold.state is HoldState.HELD:
                    book.held += hold.qty
                    heapq.heappush(self._due, (hold.expires_at, hold.hold_id))
                elif hold.state is HoldState.SOLD:
                    book.sold += hold.qty
                    self._sold[hold.hold_id] = now  # retained from now, as the finished ones
                else:
                    self._done[hold.hold_id] = now  # the store knows it finished: retained from now
                    continue
                book.available -= hold.qty
                book.used[hold.user_id] = book.used.get(hold.user_id, 0) + hold.qty
            # A store that disagrees with its own quota must not be silently "fixed" here.
            broken = [b.terms.item_id for b in self._books.values() if b.available < 0]
            if broken:
                raise FlashSaleError(ErrorCode.CONFLICT, f"stored holds exceed quota for items {broken}")

    # -- the decision --------------------------------------------------------------------------
    def reserve(self, *, item_id: int, user_id: str, qty: int, request_id: str) -> Decision:
        with self._lock:
            return self._decide(self._clock(), item_id, user_id, qty, request_id)

    def reserve_many(
        self, requests: Sequence[tuple[int, str, int, str]], *, checked: bool = False
    ) -> list[Decision]:
        # One lock and one clock reading for the batch: the decisions are those of `reserve` calls
        # made one after another at the same instant.
        with self._lock:
            now, decide = self._clock(), self._decide
            return [
                decide(now, item_id, user_id, qty, request_id, checked)
                for item_id, user_id, qty, request_id in requests
            ]

    def _decide(
        self, now: float, item_id: int, user_id: str, qty: int, request_id: str, checked: bool = False
    ) -> Decision:
        """Decide one request under the lock (see `Ledger.reserve`)."""
        due = self._due
        if due and is_due(due[0][0], now):
            self._sweep(now)
        key = (user_id, request_id)
        known = self._by_key.get(key)
        if known is not None:
            hold = self._holds[known]
            if hold.item_id != item_id or hold.qty != qty:
                return _REFUSED[ErrorCode.IDEMPOTENCY_MISMATCH]
            return Decision(hold, None, True)
        if self._retired and not checked and user_id in self._retired:
            return _REFUSED[ErrorCode.REQUEST_FORGOTTEN]
        if self._pauses and self._live_pause(item_id, now) is not None:
            return _REFUSED[ErrorCode.SALE_PAUSED]
        book = self._books.get(item_id)
        if book is None:
            return _REFUSED[ErrorCode.UNKNOWN_ITEM]
        if self._floors and book.seq < self._floors.get(item_id, 0):
            return _REFUSED[ErrorCode.LEDGER_BEHIND]
        used = book.used.get(user_id, 0)
        code = check_hold_request(
            terms=book.terms, qty=qty, now=now, available=book.available, user_used=used
        )
        if code is not None:
            return _REFUSED[code]
        book.available -= qty
        book.held += qty
        book.used[user_id] = used + qty
        book.seq += 1
        hold_id = self._new_id()
        expires_at = now + book.terms.hold_ttl_s
        hold = Hold(hold_id, item_id, user_id, qty, request_id, now, expires_at, HoldState.HELD)
        self._holds[hold_id] = hold
        self._by_key[key] = hold_id
        heapq.heappush(due, (expires_at, hold_id))
        return Decision(hold)

    # -- settling a hold -----------------------------------------------------------------------
    def confirm(self, hold_id: str) -> Hold:
        return self._settle(hold_id, HoldState.SOLD)

    def release(self, hold_id: str) -> Hold:
        return self._settle(hold_id, HoldState.RELEASED)

    def refund(self, hold_id: str) -> Hold:
        return self._settle(hold_id, HoldState.REFUNDED)

    def refund_stored(self, hold: Hold) -> Hold:
        with self._lock:
            now = self._clock()
            if hold.hold_id in self._holds:
                return self._settle_locked(now, hold.hold_id, HoldState.REFUNDED)
            # Forgotten by `forget_sold`: its units are still counted as sold, and as the user's.
            self._sweep(now)
            self._check_not_paused(hold.item_id, now)
            book = self._books.get(hold.item_id)
            if book is None:
                raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {hold.item_id}")
            if book.sold < hold.qty or book.used.get(hold.user_id, 0) < hold.qty:
                raise FlashSaleError(
                    ErrorCode.CONFLICT, f"item {hold.item_id} holds no such sale as {hold.hold_id}"
                )
            # Kept as refunded and finished: a repeat finds it and moves nothing; retention forgets it.
            refunded = self._move(hold._replace(state=HoldState.SOLD), HoldState.REFUNDED)
            self._done[hold.hold_id] = now
            return refunded

    def _settle(self, hold_id: str, target: HoldState) -> Hold:
        with self._lock:
            return self._settle_locked(self._clock(), hold_id, target)

    def _settle_locked(self, now: float, hold_id: str, target: HoldState) -> Hold:
        """Move a known hold to `target` (see `confirm`, `release`, `refund`), under the lock."""
        self._sweep(now)
        hold = self._holds.get(hold_id)
        if hold is None:
            raise FlashSaleError(ErrorCode.UNKNOWN_HOLD, f"no hold {hold_id}")
        if hold.state is target:
            return hold
        error = transition_error(hold.state, target)
        if error is not None:
            raise FlashSaleError(error, f"hold {hold_id} is {hold.state}, cannot become {target}")
        self._check_not_paused(hold.item_id, now)
        moved = self._move(hold, target)
        if target is HoldState.SOLD:
            self._sold[hold_id] = now
        else:
            self._sold.pop(hold_id, None)  # a refund
            self._done[hold_id] = now
        return moved

    def _move(self, hold: Hold, target: HoldState) -> Hold:
        book = self._books[hold.item_id]
        if hold.state is HoldState.HELD:
            book.held -= hold.qty
        else:
            book.sold -= hold.qty
        if target is HoldState.SOLD:
            book.sold += hold.qty
        else:  # every other move gives the units and the user's quota back
            book.available += hold.qty
            left = book.used[hold.user_id] - hold.qty
            if left:
                book.used[hold.user_id] = left
            else:
                del book.used[hold.user_id]
        moved = Hold(
            hold.hold_id,
            hold.item_id,
            hold.user_id,
            hold.qty,
            hold.request_id,
            hold.created_at,
            hold.expires_at,
            target,
        )
        self._holds[hold.hold_id] = moved
        return moved

    # -- expiry --------------------------------------------------------------------------------
    def _sweep(self, now: float, limit: int | None = None) -> None:
        due = self._due
        while due and is_due(due[0][0], now) and (limit is None or limit > 0):
            _, hold_id = heapq.heappop(due)
            hold = self._holds.get(hold_id)  # None: abandoned
            # paid or cancelled holds leave stale heap entries
            if hold is not None and hold.state is HoldState.HELD:
                self._expired_unreported.append(self._move(hold, HoldState.EXPIRED))
                if limit is not None:
                    limit -= 1

    def shorten(self, hold_id: str, expires_at: float) -> Hold:
        with self._lock:
            hold = self._holds.get(hold_id)
            if hold is None:
                raise FlashSaleError(ErrorCode.UNKNOWN_HOLD, f"no hold {hold_id}")
            if hold.state is not HoldState.HELD or expires_at >= hold.expires_at:
                return hold
            hold = self._holds[hold_id] = hold._replace(expires_at=expires_at)
            heapq.heappush(self._due, (expires_at, hold_id))  # the later entry is skipped once expired
            return hold

    def expire_due(self, limit: int = 1000) -> list[Hold]:
        with self._lock:
            now = self._clock()
            self._sweep(now, limit)
            handed, self._expired_unreported = (
                self._expired_unreported[:limit],
                self._expired_unreported[limit:],
            )
            for hold in handed:
                self._done[hold.hold_id] = now  # handed out: the store follows, so it may be forgotten
            return handed

    # -- forgetting ----------------------------------------------------------------------------
    def abandon(self, hold_ids: Iterable[str]) -> int:
        with self._lock:
            self._sweep(self._clock())
            gone = 0
            for hold_id in hold_ids:
                hold = self._holds.get(hold_id)
                if hold is None or hold.state in (HoldState.SOLD, HoldState.REFUNDED):
                    continue
                if hold.state is HoldState.HELD:  # its stale heap entry is skipped by the sweep
                    hold = self._move(hold, HoldState.RELEASED)
                elif hold.state is HoldState.EXPIRED and hold_id not in self._done:  # not handed out yet
                    self._expired_unreported = [h for h in self._expired_unreported if h.hold_id != hold_id]
                self._drop(hold)
                gone += 1
            return gone

    def finished(self, before: float, limit: int = 1000) -> list[Hold]:
        return self._listed(self._done, before, limit)

    def sold_before(self, before: float, limit: int = 1000) -> list[Hold]:
        return self._listed(self._sold, before, limit)

    def _listed(self, index: dict[str, float], before: float, limit: int) -> list[Hold]:
        """Up to `limit` holds of a retention index (`_done`, `_sold`) indexed before `before`."""
        with self._lock:
            found: list[Hold] = []
            for hold_id, at in index.items():
                if at >= before or len(found) >= limit:
                    break
                found.append(self._holds[hold_id])
            return found

    def forget(self, hold_ids: Iterable[str]) -> int:
        return self._retire(self._done, hold_ids)

    def forget_sold(self, hold_ids: Iterable[str]) -> int:
        return self._retire(self._sold, hold_ids)

    def _retire(self, index: dict[str, float], hold_ids: Iterable[str]) -> int:
        """Forget the holds of a retention index among `hold_ids`, marking their users; how many went."""
        with self._lock:
            now, gone = self._clock(), 0
            for hold_id in hold_ids:
                if hold_id in index:
                    hold = self._holds[hold_id]
                    self._drop(hold)
                    self._retired[hold.user_id] = now
                    gone += 1
            return gone

    def index_finished(self, limit: int = 1000) -> bool:
        """True at once: this ledger indexed every hold as it finished or sold (`restore` too)."""
        return True

    def _drop(self, hold: Hold) -> None:
        """Forget a hold and its request key, leaving the counters as they are (under the lock)."""
        del self._holds[hold.hold_id]
        self._done.pop(hold.hold_id, None)
        self._sold.pop(hold.hold_id, None)
        key = (hold.user_id, hold.request_id)
        if self._by_key.get(key) == hold.hold_id:
            del self._by_key[key]

    def next_expiry(self) -> float | None:
        with self._lock:
            while self._due and self._state(self._due[0][1]) is not HoldState.HELD:
                heapq.heappop(self._due)
            return self._due[0][0] if self._due else None

    def _state(self, hold_id: str) -> HoldState | None:
        hold = self._holds.get(hold_id)
        return None if hold is None else hold.state

    # -- reads ---------------------------------------------------------------------------------
    def stock(self, item_id: int) -> StockLevel:
        with self._lock:
            self._sweep(self._clock())
            book = self._books.get(item_id)
            if book is None:
                raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {item_id}")
            return book.level()

    def sequences(self, item_id: int) -> list[int]:
        with self._lock:
            book = self._books.get(item_id)
            if book is None:
                raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {item_id}")
            return [book.seq]

    def expect(self, marks: Mapping[BookId, int]) -> None:
        with self._lock:
            for (item_id, bucket), seq in marks.items():
                if bucket == 0:  # an item's one book here
                    self._floors[item_id] = max(self._floors.get(item_id, 0), seq)

    def used_by(self, item_id: int, user_id: str) -> int:
        with self._lock:
            self._sweep(self._clock())
            book = self._books.get(item_id)
            return 0 if book is None else book.used.get(user_id, 0)

    def holds(self, item_id: int) -> list[Hold]:
        with self._lock:
            self._sweep(self._clock())
            return [h for h in self._holds.values() if h.item_id == item_id]

    def get_hold(self, hold_id: str) -> Hold | None:
        with self._lock:
            self._sweep(self._clock())
            return self._holds.get(hold_id)
