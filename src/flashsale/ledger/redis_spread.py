"""A hot item spread over a Redis Cluster's masters (`?spread=N`): its buckets, their reads and transfers.

With `spread=N` (N >= 2, at most the slot groups) every item has N buckets, bucket j a book of its own
in slot group `(item + j * (groups // N)) mod groups`, so the buckets sit in N different groups and,
groups placed well, on different masters. A bucket is a whole ledger of its share of the item: its
own quota, avail, held, sold, sequence and per-user counts `u:<user>`, in the group's hold records,
request keys, deadlines and purchase stream; the scripts need nothing new for it. A user's requests
all go to bucket crc32(user) mod N, so the user's count lives in one book and the limit stays exact.

A bucket that cannot cover a request does not refuse it (reserve.lua answers DEFER); the client moves
units in from the other buckets and asks again. A move is a transfer in three steps, each one script
in one slot (transfer.lua): `send` takes units out of the donor's avail and quota into an outgoing
record named by a fresh transfer id; `receive` credits them to the receiver once (it keeps the id);
`done` drops the outgoing record. Between steps 1 and 3 the units are in transit: `stock` counts the
outgoing records whose id no receiver has yet, so at every instant Σ avail + in transit + Σ held +
Σ sold == the item's quota, and no step creates or loses a unit. Transfers are refused while the
item is paused, and a transfer id carries its donor's generation (every restore gives all the
buckets it rebuilds a new one), so one sent before a restore is never credited after it: the
restore counted its units already, even when its sender stalled through the whole repair.

The shortfall path is serialized per item by its refill lease (lease.lua: a token in bucket 0's
slot, set only if free, LEASE_MS to live, renewed by its holder at every step). Only the holder
moves units, so short requests never steal each other's units. Requests that fit their bucket never
touch the lease: the hot path stays spread. The holder first lands every transfer still in transit
(only a holder whose lease ran out can have left one: a dead client's, or a late one's, landed
idempotently by id), then reads the buckets; while another bucket has units it moves them in (enough
for the request and its bucket's even share, surplus first) and asks its bucket again; when every
other bucket reads dry with nothing in transit it decides the request as its bucket finds it. Other
short requests wait for the lease (jittered, growing sleeps; past LEASE_WAIT_S they are answered
SERVICE_UNAVAILABLE, to retry, never refused for stock on a guess) and ask their bucket again
between tries, since the holder before them may have filled it.

The guarantee: a request is refused for stock only when Σ available over the buckets (+ in transit)
was below its quantity. The refusal is the atomic decision of bucket p, made under the lease after
every other bucket k read dry (at t_k) with nothing in transit. Only the holder moves units, and only
into p, so a bucket k's avail only falls after t_k (sales), units given back aside (a release or an
expiry, which may land in a bucket already read): at the refusal Σ avail <= p's avail < quantity.
Progress: every loop of the holder either serves the request or moved units that the bucket's own
sales took before it asked again, so it ends (or the stock does). A lease holder stalled past its
lease (a GC pause of LEASE_MS) could still send while a next holder reads: conservation holds, but
that refusal's premise may not; LEASE_MS is far beyond a holder's few round trips.

Order (RedisLedger._decide): a batch is decided in one call per group while no bucket may run short
(more asked of it than it had when last seen); otherwise the item's requests are decided in order,
one bucket's run per call, transfers between. Concurrent batches may still find a bucket short that
looked full: its deferred requests are then decided in order after the others of their batch. An
item found dry everywhere is taken as sold out for RedisLedger's DRY_S by that process.

Sequences: every bucket is a book of its own (see the ledger contract): bucket j counts its own
grants, each of its stream entries carries its `seq` and `part` j, the order writers keep a mark per
(item, bucket) in the database, and the floors (`expect`) are per bucket, checked by the bucket's
own script as on an unspread item. So a master that comes back on a stale AOF is seen in whichever
bucket it serves. A donor whose sequence is below its floor sends nothing (transfer.lua): its units
may be ones it had sold before it went back.
"""

from __future__ import annotations

import random
import secrets
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from flashsale.clock import Clock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.sale import ItemTerms
from flashsale.ledger.contract import StockLevel, paused_error

LEASE_MS = 2000  # a refill lease's time to live, renewed at every step: a dead holder's runs out
LEASE_WAIT_S = 10.0  # a short request waits this long for the lease (and its holder's work) at most
WAIT_FIRST_S, WAIT_MOST_S = 0.001, 0.02  # a waiter's first and longest sleep between tries (jittered)
STOCK_READS = 10  # reads of the buckets until one adds up (a transfer may move between two reads)
QUOTA_TRIES = 5  # attempts of a quota change whose plan a concurrent grant spoiled

SPREAD_LOOK = 11  # elements of look.lua's reply for a bucket of a spread item (fewer: an unspread book)

ConfigureIn = Callable[[ItemTerms, int, int | str, int], Any]


class LayoutChanged(RuntimeError):
    """The keys under the prefix were written with another `spread` (or `groups`): a configuration
    change that needs a rebuild (restore) from the system of record, told plainly."""


class Part(NamedTuple):
    """One bucket of a spread item as look.lua reads it."""

    quota: int
    avail: int
    held: int
    sold: int
    used: int  # the asked user's units here
    seq: int
    total: int  # the item's quota, as its last change wrote it
    out: dict[str, tuple[int, int, float]]  # transfer id -> (receiving bucket, units, when sent)
    received: frozenset[str]


def _part(reply: Sequence[Any]) -> Part:
    _, quota, avail, held, sold, used, seq, _part_no, total, flat, received = reply
    out = {}
    for j in range(0, len(flat), 2):
        to, units, when = flat[j + 1].split("|")
        out[flat[j]] = int(to), int(units), float(when)
    return Part(
        int(quota),
        int(avail),
        int(held),
        int(sold),
        int(used),
        int(seq),
        int(total),
        out,
        frozenset(received),
    )


def shares(total: int, n: int) -> list[int]:
    """`total` units over `n` buckets evenly; the first ones get the remainder."""
    return [total // n + (1 if j < total % n else 0) for j in range(n)]


def in_transit(parts: Sequence[Part | None]) -> int:
    """Units sent (step 1) and not yet received (step 2), as this read of the buckets shows them."""
    known = [p for p in parts if p is not None]
    received = frozenset().union(*(p.received for p in known))
    return sum(units for p in known for tid, (_, units, _) in p.out.items() if tid not in received)


class Spread:
    """The buckets of spread items on one ledger: `run(script, *args, group=g)` is the ledger's."""

    def __init__(self, run: Callable[..., Any], clock: Clock, groups: int, n: int) -> None:
        if not 2 <= n <= groups:
            raise ValueError(f"spread={n}: between 2 and the slot groups ({groups})")
        self._run = run
        self._clock = clock
        self.groups = groups
        self.n = n
        self._step = groups // n  # n buckets, n different groups: j * step < groups
        self.lease_ms = LEASE_MS

    # -- where ---------------------------------------------------------------------------------
    def groups_of(self, item_id: int) -> list[int]:
        """The slot group of each bucket of the item, bucket 0 first (the item's own group)."""
        return [(item_id + j * self._step) % self.groups for j in range(self.n)]

    def crowded(self, master_of: Callable[[int], str]) -> dict[int, list[str]]:
        """The items (by id mod groups) whose buckets share a master although the groups span enough
        masters for each bucket to have its own, with their buckets' masters; `master_of(group)` names
        the master serving the group's slot. Slot groups land on whatever masters own their tags'
        slots, so with many groups some items may be spread over fewer masters than `spread` says."""
        reachable = min(self.n, len({master_of(g) for g in range(self.groups)}))
        found = {}
        for residue in range(self.groups):
            masters = [master_of(g) for g in self.groups_of(residue)]
            if len(set(masters)) < reachable:
                found[residue] = masters
        return found

    def part_of_user(self, user_id: str) -> int:
        """The bucket a user's requests go to: crc32 of the user id mod the buckets."""
        return zlib.crc32(user_id.encode()) % self.n

    def part_of_group(self, item_id: int, group: int) -> int:
        """The bucket of the item that lives in `group`."""
        return (group - item_id) % self.groups // self._step

    # -- reads ---------------------------------------------------------------------------------
    def parts(self, item_id: int, user_id: str = "") -> list[Part | None]:
        """Every bucket of the item (None where it is unknown), read one after another; an unspread
        book is refused (LayoutChanged) rather than read as a bucket."""
        found: list[Part | None] = []
        for group in self.groups_of(item_id):
            reply = self._run("look", self._clock(), item_id, user_id, group=group)
            if reply[0] != ErrorCode.UNKNOWN_ITEM and len(reply) < SPREAD_LOOK:
                raise LayoutChanged(
                    f"item {item_id} was registered by an unspread ledger under this prefix: spread (or"
                    " groups) changed, so rebuild the ledger from the store (restore) first"
                )
            found.append(None if reply[0] == ErrorCode.UNKNOWN_ITEM else _part(reply))
        return found

    def stock(self, item_id: int) -> StockLevel:
        """The item's counters: the buckets' sums, units in transit counted as available.

        The buckets are read one at a time, so a transfer may move between two reads (counted twice
        or not at all); a read whose quotas do not add up to the item's is read again.
        """
        for _ in range(STOCK_READS):
            parts = self.parts(item_id)
            known = [p for p in parts if p is not None]
            if not known:
                raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {item_id}")
            transit = in_transit(parts)
            quota = sum(p.quota for p in known) + transit
            if all(p.total == quota for p in known):
                break
        avail = sum(p.avail for p in known) + transit
        return StockLevel(item_id, quota, avail, sum(p.held for p in known), sum(p.sold for p in known))

    # -- transfers -----------------------------------------------------------------------------
    def send(self, item_id: int, src: int, dst: int, units: int, floor: int = 0) -> tuple[str, int]:
        """Step 1: take up to `units` from bucket `src` for bucket `dst`; the transfer id and units taken.
        The id carries the donor's generation: a restore since makes the receiver refuse it (STALE).
        A donor whose sequence is below `floor` (its floor) lost writes: LEDGER_BEHIND, nothing moved."""
        tid = secrets.token_hex(8)
        group = self.groups_of(item_id)[src]
        reply = self._run("transfer", self._clock(), "send", item_id, tid, dst, units, floor, group=group)
        if reply[0] == ErrorCode.LEDGER_BEHIND:
            raise FlashSaleError(ErrorCode.LEDGER_BEHIND, f"bucket {src} of item {item_id} lost writes")
        if reply[0] == "ok" and int(reply[1]) > 0:
            return reply[2], int(reply[1])  # the record's id carries the donor's generation
        return tid, 0

    def land(self, item_id: int, src: int, dst: int, tid: str, units: int) -> Any:
        """Steps 2 and 3 of a transfer (either may have run already); the receiver's reply."""
        groups = self.groups_of(item_id)
        reply = self._run("transfer", self._clock(), "receive", item_id, tid, units, group=groups[dst])
        if reply[0] == "ok":
            self._run("transfer", self._clock(), "done", item_id, tid, group=groups[src])
        return reply

    def finish(self, item_id: int, parts: Sequence[Part | None]) -> tuple[int, int]:
        """Finish every transfer of the item still in transit (landing is idempotent by id, so one its
        sender is still finishing is safe too); (how many, units left in transit).

        A paused item's transfers stay in transit: a restore rebuilds the buckets meanwhile.
        """
        received = frozenset().union(*(p.received for p in parts if p is not None))
        finished = left = 0
        for src, part in enumerate(parts):
            for tid, (dst, units, _) in (part.out if part else {}).items():
                if tid in received:  # steps 1 and 2 ran: only the record is left
                    group = self.groups_of(item_id)[src]
                    self._run("transfer", self._clock(), "done", item_id, tid, group=group)
                    finished += 1
                elif self.land(item_id, src, dst, tid, units)[0] == "ok":
                    finished += 1
                else:
                    left += units
        return finished, left

    # -- the refill lease ----------------------------------------------------------------------
    def take_lease(self, item_id: int, token: str) -> bool:
        """Take the item's refill lease for `token`, or renew it: whether `token` holds it now."""
        reply = self._run("lease", "take", item_id, token, self.lease_ms, group=self.groups_of(item_id)[0])
        return bool(reply)

    def drop_lease(self, item_id: int, token: str) -> None:
        """Give the lease back, if `token` still holds it."""
        self._run("lease", "drop", item_id, token, group=self.groups_of(item_id)[0])

    @staticmethod
    def wait(tries: int) -> None:
        """Sleep before a waiter's next try: doubling from WAIT_FIRST_S up to WAIT_MOST_S, jittered so
        that the waiters of one released crowd do not all ask at once."""
        time.sleep(random.uniform(0.5, 1.0) * min(WAIT_MOST_S, WAIT_FIRST_S * 2 ** min(tries, 8)))

    def collect(self, item_id: int, part: int, need: int, floors: Sequence[int]) -> bool:
        """Under the refill lease: land what is in transit, then move units from the other buckets to
        bucket `part` (for `need` and its even share); True when there were none: every other bucket
        read dry with nothing in transit, so `part` holds all the item's units for sale. `floors`:
        each bucket's floor (a donor below its own raises LEDGER_BEHIND, see `send`)."""
        parts = self.parts(item_id)
        finished, left = self.finish(item_id, parts)
        if finished:
            parts = self.parts(item_id)
        avail = [p.avail if p else 0 for p in parts]
        if sum(avail) == avail[part]:
            return left == 0
        self._gather(item_id, part, need, avail, floors)
        return False

    def _gather(self, item_id: int, part: int, need: int, avail: list[int], floors: Sequence[int]) -> int:
        """Transfer units to bucket `part`: enough for `need` and its even share of the rest, taken
        from the others' surplus over that share first; the units moved."""
        total = sum(avail)
        even = total // self.n
        want = min(max(need, even) - avail[part], total - avail[part])
        moved = 0
        for surplus_only in (True, False):
            for src in sorted(range(self.n), key=lambda k: -avail[k]):
                units = min(want - moved, avail[src] - even if surplus_only else avail[src])
                if src == part or units <= 0:
                    continue
                tid, taken = self.send(item_id, src, part, units, floors[src])
                if taken and self.land(item_id, src, part, tid, taken)[0] == "ok":
                    moved += taken
                avail[src] -= taken
        return moved

    # -- quota ---------------------------------------------------------------------------------
    def configure(self, terms: ItemTerms, configure_in: ConfigureIn) -> StockLevel:
        """Register a spread item or change its terms; `configure_in(terms, group, quota, part)` runs
        configure.lua in one bucket's group ('' keeps its quota) and raises its refusals.

        A new item's quota is shared evenly. A quota change first lands every transfer, then moves
        each bucket's quota by what makes its available share even (taking before giving, each step
        refused rather than going below zero, undone if one is), then writes the terms everywhere.
        """
        item_id, groups = terms.item_id, self.groups_of(terms.item_id)
        parts = self.parts(item_id)
        if all(p is None for p in parts):
            for j, share in enumerate(shares(terms.quota, self.n)):
                configure_in(terms, groups[j], share, j)
            return self.stock(item_id)
        for j, p in enumerate(parts):
            if p is None:  # a bucket an interrupted registration did not make
                configure_in(terms, groups[j], 0, j)
        self._move_quota(item_id, terms.quota)
        for j, group in enumerate(groups):
            configure_in(terms, group, "", j)
        return self.stock(item_id)

    def _move_quota(self, item_id: int, quota: int) -> None:
        for _ in range(QUOTA_TRIES):
            parts = self.parts(item_id)
            if self.finish(item_id, parts)[0]:
                parts = self.parts(item_id)
            if in_transit(parts):  # kept in transit by a pause (which this raises) or just sent: again
                self._adjust(item_id, [0] * self.n, quota, 0, ask=True)
                continue
            known = [p for p in parts if p is not None]
            committed = [p.held + p.sold for p in known]
            if quota < sum(committed):
                raise FlashSaleError(
                    ErrorCode.QUOTA_BELOW_COMMITTED,
                    f"quota {quota} is below the {sum(committed)} units already held or sold",
                )
            targets = [c + s for c, s in zip(committed, shares(quota - sum(committed), self.n), strict=True)]
            deltas = [t - p.quota for t, p in zip(targets, known, strict=True)]
            if self._adjust(item_id, deltas, quota, sum(p.quota for p in known)):
                return
        raise FlashSaleError(ErrorCode.CONFLICT, f"the quota of item {item_id} moved while it changed: retry")

    def _adjust(self, item_id: int, deltas: list[int], quota: int, old_quota: int, ask: bool = False) -> bool:
        """Move each bucket's quota by its delta, takes first; False (and undone) if one cannot give.
        A pause raises SALE_PAUSED. With `ask`, bucket 0 is asked (with no move) for that alone.
        """
        groups, now = self.groups_of(item_id), self._clock()
        done: list[int] = []
        for j in sorted(range(self.n), key=deltas.__getitem__):
            if deltas[j] == 0 and not (ask and j == 0):
                continue
            reply = self._run("transfer", now, "adjust", item_id, deltas[j], quota, "", group=groups[j])
            if reply[0] != "ok":
                for k in done:  # an undo is never refused: it is forced through a pause
                    self._run("transfer", now, "adjust", item_id, -deltas[k], old_quota, "1", group=groups[k])
                if reply[0] == ErrorCode.SALE_PAUSED:
                    raise paused_error(item_id, float(reply[1]), now)
                return False
            done.append(j)
        return True
