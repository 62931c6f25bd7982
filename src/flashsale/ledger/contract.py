"""The stock ledger contract: every engine (in-process, Redis) gives exactly these guarantees.

Guarantees shared by all engines:
- `reserve` is one atomic decision: window, stock, the user's held+sold against the limit, and the
  idempotency key are checked and the counters changed together, or nothing changes.
- A known `(user_id, request_id)` is answered first (replay or IDEMPOTENCY_MISMATCH), then
  UNKNOWN_ITEM; otherwise the first broken rule, in the order of
  `flashsale.domain.sale.check_hold_request`: INVALID_QUANTITY, SESSION_NOT_OPEN, LIMIT_EXCEEDED
  (held+sold+qty > per_user_limit, whatever the stock), then SOLD_OUT (nothing left) and
  INSUFFICIENT_STOCK (less than qty left). LIMIT_EXCEEDED speaks only of the asker's own units.
- Hold ids (which are also order ids) are unguessable and unique: 144 random bits, 24 URL-safe
  characters (see `flashsale.ledger.ids`); consecutive ids share no prefix or sequence, so an id
  reveals nothing about how many holds came before it.
- At every instant, per item: `available + held + sold == quota`, no term negative, and every
  user's held+sold ≤ per_user_limit (unless an operator lowered the limit below what they hold).
- A granted `(user_id, request_id)` is remembered: repeating it returns the same hold
  (`replayed=True`) and never reserves twice; the same key with another item or quantity is
  refused with IDEMPOTENCY_MISMATCH. Refusals are not remembered: they reserved nothing, so a
  retry is a fresh decision.
- Holds past `expires_at` are expired lazily by every reserve/confirm/release/stock call and by
  `expire_due`; expired units go straight back to `available`. Each expired hold is handed out by
  `expire_due` exactly once, so the system of record can follow.
- An item may be paused under a lease (`pause`): while `now < until`, every write that a caller
  asks for on the item (reserve, confirm, release, refund, configure) is refused with SALE_PAUSED
  and changes nothing; reads and idempotent replays keep answering. The lease ends by itself at
  `until`, so a pauser that dies cannot leave the sale closed; `resume` ends it sooner. Expiry is
  not paused: it depends on time alone, so a rebuild that restores a hold as held sees it expire
  again, and a paused sale never keeps a unit past its payment window. Pausing an item the ledger
  does not know (yet) works too: a purchase of it hears SALE_PAUSED, not UNKNOWN_ITEM.
- Every grant raises a sequence by one, so a ledger that lost acknowledged writes (Redis
  restarted on a stale AOF, a failover to a lagging replica) is one whose sequence went back.
  Sequences are kept per book (`BookId`: item id and bucket): an item has one book, bucket 0, but
  on a ledger that spreads it over several servers, where each bucket counts its own grants
  (`sequences`), since each can go back on its own. Callers tell the ledger the highest sequence
  they know a book reached (`expect`: the order writers' marks in the database, and each
  process's own grants); while a book's sequence is below that floor, every reserve it would
  decide that is not an idempotent replay is refused with LEDGER_BEHIND and changes nothing, so
  no unit is sold twice before the repair. A `restore` starts a new epoch: each book's sequence
  jumps to the next multiple of SEQUENCE_EPOCH above every mark, floor and sequence it knows of
  that book, so floors from before the loss never refuse afterwards.
- Retention: a finished hold (released, refunded, or expired and handed out by `expire_due`) is
  listed by `finished` and may be forgotten with its request key (`forget`); held holds never are
  (a payment still needs them), sold ones only by `forget_sold` (below). Counters are untouched,
  so conservation and limits stay exact. A user any of whose keys was forgotten is marked, and
  for a marked user a request key the ledger does not know is answered REQUEST_FORGOTTEN (nothing
  changes): the caller looks the key up in the system of record and replays the order found
  there, or, finding none, decides it with `reserve_many(..., checked=True)`. `restore`
  remembers every key it is given and drops the marks. `abandon` forgets grants nobody was told
  of (their units go back) without marking anyone, so a retry of such a key is a fresh decision.
- Sold holds are kept longer (a refund needs their units), listed by `sold_before` (by when they
  were sold), and may be forgotten with `forget_sold` the same way: counters untouched, users
  marked. A refund of an order whose hold was forgotten goes through `refund_stored`, which takes
  the hold from the stored order: its units leave `sold` once, and the ledger keeps the hold as
  refunded (a finished hold), so a repeat, a retry or a concurrent refund moves nothing.
- Holds finished before the ledger indexed finished and sold holds (an older deploy's ledger) are
  indexed by `index_finished`, a bounded, idempotent step the retention pass repeats until done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold
from flashsale.domain.sale import ItemTerms

# A restore's sequence starts at a multiple of this: more grants than one epoch can see (2^32) never
# happen between two repairs, and 2^53 (exact in a Lua double) leaves room for 2^21 epochs.
SEQUENCE_EPOCH = 2**32


# A book of sequences: (item id, bucket). Bucket 0 is the item's only book unless the ledger spreads
# the item over several buckets that each count their own grants (see `Ledger.sequences`).
BookId = tuple[int, int]


def next_epoch(*sequences: int) -> int:
    """The first sequence of the epoch after the highest of `sequences` (what a restore starts at)."""
    return (max(sequences, default=0) // SEQUENCE_EPOCH + 1) * SEQUENCE_EPOCH


class Decision(NamedTuple):
    """The answer to `reserve`: a hold, or the code of the refusal.

    A NamedTuple, as `Hold` is, because one is built for every decision on the hot path.
    """

    hold: Hold | None
    code: ErrorCode | None = None
    replayed: bool = False

    @property
    def granted(self) -> bool:
        return self.hold is not None


class Reservation(NamedTuple):
    """One `reserve` call's arguments, for `reserve_many`; a plain 4-tuple in this order works too."""

    item_id: int
    user_id: str
    qty: int
    request_id: str


class PurchaseStream(NamedTuple):
    """Where an engine that does not record orders itself appends each granted hold, for the order writer.

    `client` is the engine's connection to the stream's server (a redis-py `Redis` for the Redis
    engine, a `RedisCluster` on a Cluster) and `key` the stream's name; `jobs/order_writer.py` reads
    the stream through them. On a Cluster there is one stream per slot group: `keys` names them all
    (`key` is the first), and the writers read every one.
    """

    client: Any
    key: str
    keys: tuple[str, ...] = ()

    @property
    def every_key(self) -> tuple[str, ...]:
        """Every stream the writers must read: `keys`, or `key` alone when there is one."""
        return self.keys or (self.key,)


class Pause(NamedTuple):
    """A live pause lease of one item: it ends by itself at `until` (the ledger's clock)."""

    until: float
    token: str


def paused_error(item_id: int, until: float, now: float) -> FlashSaleError:
    """The refusal of a write to a paused item, telling when the lease ends at the latest."""
    return FlashSaleError(
        ErrorCode.SALE_PAUSED,
        f"item {item_id} is paused (reconciliation or rebuild); retry shortly",
        retry_after_s=max(0.0, until - now),
    )


@dataclass(frozen=True, slots=True)
class StockLevel:
    item_id: int
    quota: int
    available: int
    held: int
    sold: int

    @property
    def conserved(self) -> bool:
        """True when no unit was created or lost."""
        return (
            self.available + self.held + self.sold == self.quota
            and min(self.available, self.held, self.sold) >= 0
        )


@runtime_checkable
class Ledger(Protocol):
    def configure(self, terms: ItemTerms) -> StockLevel:
        """Register an item or change its terms.

        A quota below held+sold is refused with QUOTA_BELOW_COMMITTED (FlashSaleError) and nothing
        changes; otherwise `available` becomes quota - held - sold.
        """
        ...

    def reserve(self, *, item_id: int, user_id: str, qty: int, request_id: str) -> Decision:
        """Atomically hold `qty` units for `user_id`, or refuse with a stable code (see module doc).

        A paused item refuses with SALE_PAUSED right after the idempotency key is answered.
        """
        ...

    def reserve_many(
        self, requests: Sequence[tuple[int, str, int, str]], *, checked: bool = False
    ) -> list[Decision]:
        """Decide `(item_id, user_id, qty, request_id)` requests in order, as `reserve` one after another.

        One Decision per request, in order. An engine may decide a batch in one round trip; if the
        call fails, an earlier part may already be decided, and retrying with the same request ids
        replays it. With `checked`, the caller found no stored order for any of these keys, so an
        unknown key of a marked user is decided instead of answered REQUEST_FORGOTTEN (a known key
        is still replayed: a concurrent checked request of the same key may have won).
        """
        ...

    def abandon(self, hold_ids: Iterable[str]) -> int:
        """Undo grants that no one was told of (their order could not be recorded); return how many.

        A held hold gives its units and the user's quota back; a held, released or expired one is
        then forgotten with its request key (and its claim), so a retry of the key is decided
        afresh. Sold and refunded holds and unknown ids are left alone. Not refused by a pause: it
        takes back what the caller itself was just granted, which nobody else saw. Idempotent.
        """
        ...

    def finished(self, before: float, limit: int = 1000) -> list[Hold]:
        """Return up to `limit` finished holds (released, refunded, expired and handed out) that
        finished before `before` (the ledger's clock), earliest first (per slot group on a Cluster).

        A finished hold never changes again, so the list stays true until `forget`.
        """
        ...

    def forget(self, hold_ids: Iterable[str]) -> int:
        """Forget finished holds and their request keys, marking their users; return how many went.

        Only holds `finished` would list are forgotten; others (held, sold, expired but not handed
        out, unknown) are left alone. The caller makes sure each one's order is in the system of
        record first: from then on a request with a forgotten key is answered REQUEST_FORGOTTEN.
        """
        ...

    def sold_before(self, before: float, limit: int = 1000) -> list[Hold]:
        """Return up to `limit` sold holds that were sold before `before` (the ledger's clock),
        earliest first (per slot group on a Cluster): what `forget_sold` may forget.
        """
        ...

    def forget_sold(self, hold_ids: Iterable[str]) -> int:
        """Forget sold holds and their request keys, marking their users, as `forget` does; return how many.

        Only SOLD holds are forgotten; others and unknown ids are left alone. Counters do not move:
        the units stay sold and count against the user's limit. The caller makes sure each one's
        order is stored as paid first: a refund then goes through `refund_stored`.
        """
        ...

    def refund_stored(self, hold: Hold) -> Hold:
        """Refund the paid order `hold` stands for (taken from the store), even if `forget_sold` forgot it.

        A hold the ledger knows is refunded as `refund(hold.hold_id)` does. One it does not know must
        be a sold hold `forget_sold` forgot (the caller read its order as paid): its `qty` units
        leave the item's `sold`, go back on sale and to the user's quota, and the hold is kept as
        REFUNDED and finished, so a repeat (a retry, a duplicate, a concurrent call) finds it
        refunded and moves nothing. Refused with SALE_PAUSED on a paused item, UNKNOWN_ITEM for an
        unknown item, and CONFLICT (nothing changes) when the item's sold units or the user's units
        are fewer than `qty`: the ledger holds no such sale.
        """
        ...

    def index_finished(self, limit: int = 1000) -> bool:
        """Index up to about `limit` holds not yet indexed as finished or sold; True once none is left.

        Holds finished or sold before the ledger kept these indexes (an older deploy's data) are
        never listed by `finished` or `sold_before` until indexed here, as finished or sold now
        (their retention period starts now). Idempotent and restart-safe: the progress is kept in
        the ledger, so any process may go on where another stopped. An expiry not handed out yet is
        not indexed (`expire_due` does that when it hands it out). A network engine, which processes
        of the older version may still write during a rolling deploy, may start over later (and
        answer False again) to index what they left.
        """
        ...

    def confirm(self, hold_id: str) -> Hold:
        """Turn a live hold into a sale (payment arrived).

        Confirming a SOLD hold again returns it unchanged (payment callbacks repeat). A hold past its
        window raises ORDER_EXPIRED; released/refunded ones INVALID_TRANSITION; unknown UNKNOWN_HOLD.
        """
        ...

    def release(self, hold_id: str) -> Hold:
        """Cancel a live hold: its units and the user's quota go back at once. Idempotent on RELEASED."""
        ...

    def refund(self, hold_id: str) -> Hold:
        """Undo a sale: the unit returns to `available` and to the user's quota. Idempotent on REFUNDED."""
        ...

    def shorten(self, hold_id: str, expires_at: float) -> Hold:
        """Bring a live hold's deadline forward to `expires_at` and return the hold as it is now.

        Never later: a hold due sooner, or no longer held, is returned unchanged. From then on the
        hold expires (and its units go back on sale) at the new deadline, as if granted with it.
        Unknown: UNKNOWN_HOLD.
        """
        ...

    def expire_due(self, limit: int = 1000) -> list[Hold]:
        """Expire holds whose window passed and return every expiry not yet handed out (once each)."""
        ...

    def next_expiry(self) -> float | None:
        """Return the earliest `expires_at` among live holds, so a sweeper can sleep exactly that long."""
        ...

    def stock(self, item_id: int) -> StockLevel:
        """Return the item's counters after expiring due holds. Unknown item: UNKNOWN_ITEM."""
        ...

    def used_by(self, item_id: int, user_id: str) -> int:
        """Return the units the user holds or bought of this item."""
        ...

    def get_hold(self, hold_id: str) -> Hold | None:
        """Return a hold snapshot, or None."""
        ...

    def holds(self, item_id: int) -> list[Hold]:
        """Return every hold the ledger remembers for an item, in any state (for reconciliation)."""
        ...

    def restore(
        self,
        terms: Iterable[ItemTerms],
        holds: Iterable[Hold],
        *,
        token: str | None = None,
        marks: Mapping[BookId, int] | None = None,
    ) -> None:
        """Rebuild the counters from the system of record (after a restart), replacing what is here.

        Each book's sequence becomes `next_epoch` of its old sequence, its floor and its mark in
        `marks` (the system of record's high-water marks), so it is above every sequence seen.

        Holds whose live units exceed an item's quota are refused with CONFLICT and nothing changes.
        Without `token` everything is replaced, pauses too. With `token` the rebuild is a
        compare-and-set on the pause: unless every item of `terms` is paused under `token` right
        now, it is refused with CONFLICT and nothing changes (the lease ran out and the sale went
        on); otherwise the pauses are kept, so the caller resumes when it is done.
        """
        ...

    def sequences(self, item_id: int) -> list[int]:
        """Return the sequence of each of the item's books, bucket 0 first (one book unless spread).

        Every grant raises the sequence of the book that decided it by one; nothing else changes
        one but a restore (up) and a lost write (down). Unknown item: UNKNOWN_ITEM.
        """
        ...

    def expect(self, marks: Mapping[BookId, int]) -> None:
        """Raise the floors of books' sequences to `marks` ((item, bucket) -> a sequence known reached).

        Floors only go up; a mark of a book this ledger does not have (a bucket of another layout)
        is ignored. While a book's sequence is below its floor, the reserves it would decide are
        refused with LEDGER_BEHIND (after answering idempotent replays) and change nothing. A floor
        is kept by this ledger object: each process tells its own (a network engine raises it with
        every grant it decides).
        """
        ...

    def pause(self, item_ids: Iterable[int], *, until: float, token: str) -> None:
        """Pause the items until `until` under `token` (or extend the lease if `token` holds it already).

        All or nothing: if another token holds a live pause of one of them, SALE_PAUSED is raised
        and nothing changes, so at most one pauser works on an item at a time.
        """
        ...

    def resume(self, item_ids: Iterable[int], *, token: str | None) -> None:
        """End the pauses of the items that `token` holds (every pause of them when `token` is None)."""
        ...

    def pauses(self) -> dict[int, Pause]:
        """Return the live pause of every paused item."""
        ...

    def purchase_stream(self) -> PurchaseStream | None:
        """Return the stream the engine appends every fresh grant to, or None if it has none.

        An engine with a stream (Redis) leaves the order rows to the order writer, which moves the
        stream into the system of record; one without (in-process) has its orders recorded by the
        caller of `reserve`, so there is nothing to write from.
        """
        ...

    def close(self) -> None:
        """Release the engine's connections (a network engine holds a pool). Idempotent.

        The ledger is not used afterwards; an in-process engine has nothing to release.
        """
        ...
