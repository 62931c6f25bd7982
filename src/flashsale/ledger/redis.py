"""The Redis stock ledger: the contract of `flashsale.ledger.contract`, decided by Lua scripts.

Every operation is one script call by SHA (redis-py loads a script again when the server forgot
it). A reservation checks the window, the stock, the user's held+sold against the limit and the
request id, then writes, all in one atomic step; every check comes before the first write, because
Lua has no rollback. The same step appends the granted hold to the stream `<prefix>:purchases`
(fields hold_id, item_id, user_id, qty, request_id, created_at, expires_at, seq, and part for a
bucket j > 0 of a spread item) for the order writer, once per hold: replays and refusals append
nothing. Time is the caller's clock, passed in, and hold ids are made here (random, see
`flashsale.ledger.ids`: Lua has no secure randomness), so the scripts never read the wall clock or
make up an id. Needs Redis 7.0 or later.

Expiry is lazy and bounded: every script first expires due holds, of any item, at most 256 per
call; with more left it answers "again" before deciding anything, and the client calls once more.
So every decision sees every due hold expired, and no call blocks Redis long. One set keeps the
deadlines of every item, so finding that nothing is due costs one read per call, not one per item.
Holds and their request keys are kept until retention forgets finished ones (`finished` +
`forget`) or sold ones (`sold_before` + `forget_sold`, see the contract), or `restore` replaces
the state.

The cost of a script is mostly per command it runs, not per key it touches, so `reserve_many`
decides a whole batch with a fixed number of commands per item and per call (see reserve.lua);
only the stream entry is one command per grant. Requests go in as one argument and decisions come
back as one string, which keeps the client's encoding and parsing small.

Keys, for the prefix P (`?prefix=`, default "fs"):

    P:{i:<item>}:book     hash    the item's terms (quota, limit, opens, closes, ttl, buckets), its
                                  counters (avail of bucket 0, held, sold, seq: the grants' sequence),
                                  and u:<user> -> the units the user holds or bought: one read and
                                  one write per batch
    P:{i:<item>:b<k>}:avail       available units of bucket k >= 1
    P:{i:<item>}:holds    zset    the item's hold ids by grant time (for reconciliation); a forgotten
                                  hold leaves it in O(log n). (`hold_ids`, a list, is read too: the
                                  index of holds granted before it became a sorted set)
    P:{i:<item>}:out      hash    a spread item's bucket: transfer id -> 'to|units|when', units it sent
                                  that are not known to be received (see redis_spread)
    P:{i:<item>}:recv     zset    a spread item's bucket: the transfer ids it was credited, by when
    P:{i:<item>}:refill   string  a spread item's refill lease (bucket 0's slot): the token of the one
                                  client that may move units between its buckets (see redis_spread)
    P:holds               hash    hold id -> the hold, packed in one field (item, qty, times, state,
                                  bucket, user, request id): one read per lookup
    P:reqs                hash    #user|user+request id -> hold id (idempotency)
    P:due                 zset    the live holds of every item by expires_at
    P:expired  P:purchases        shared: expiries not yet handed out, accepted purchases
    P:pauses              hash    item -> "until|token": the item's pause lease (see the contract);
                                  every script that changes an item reads it first (one HGET)
    P:done                zset    finished holds (released, refunded, expired and handed out) by when
                                  they finished: what retention may forget (forget.lua)
    P:retired             hash    user -> '1': some of the user's keys were forgotten, so an unknown
                                  key of theirs is answered REQUEST_FORGOTTEN (one HMGET per batch)
    P:sold                zset    sold holds by when they were sold: what the sold retention may
                                  forget (refunds then go through refund_stored.lua)
    P:indexed             string  the HSCAN cursor of index.lua over P:holds ('done|<when>' once
                                  round, again a day later): holds of an older deploy, finished or
                                  sold, join P:done or P:sold

Lost writes: every grant raises its book's `seq` (the item's; a spread item's bucket's, whose
entries name it in `part`) and carries it in its stream entry; the client remembers the highest it
saw granted per book (its floor, raised too by `expect`) and sends the floors of a batch's items
with it. A book whose `seq` is below the floor sent refuses every fresh request with LEDGER_BEHIND
before anything is written: Redis went back in time (a restart on a stale AOF, a failover to a
lagging replica) and must be repaired before it sells again. The check lives in the script, so it
costs one more field of the HMGET the batch does anyway.

Idempotency is kept for the user, not the item: the contract refuses a replayed (user, request id)
that names another item. The request key names the hold, the hold names its item, and the reserve
script compares both with the request in the same atomic step. Holds and request keys live in one
hash each, so a batch writes all of its grants with one command per hash.

Redis Cluster (`redis+cluster://host:port?groups=N`, default 16 groups): every item belongs to
the slot group `item id mod N`, and the group's keys all carry its hash tag: the prefix becomes
`P:{g<k>}`, so the keys above are `P:{g<k>}:due`, `P:{g<k>}:{i:<item>}:book` and so on (the first
{...} of a key is its tag), and a script touches one slot only. So every group has its own deadlines,
hold records, request keys, pauses and purchase stream, and the order writers read every group's
stream. A batch is split by group (one script call per group, answers in request order); a hold id is
drawn so that crc32(id) mod N is its item's group, which takes `confirm(hold_id)` to the right slot
with no lookup. Idempotency lives with the item's group (`P:{g<k>}:reqs`); so that a request id
reused on an item of another group is still refused (IDEMPOTENCY_MISMATCH, which PostgreSQL's
unique (user, request id) needs: else both would be granted and one order never stored), each key is
first claimed in its user's group (`P:{g<crc32(user) mod N>}:claims`, field -> item, claim.lua), and
the claim of a refused request is dropped again. That costs one more script call per user group of a
batch. A client that dies between claim and drop leaves the key bound to its item. On one node
(`groups=0`) the prefix has no tag and the key names are those above; nothing changes there.

Buckets (`?buckets=N`, default 1) split each item's available units over N counters, each under
its own hash tag; a request goes to bucket crc32(user) mod N. A bucket that cannot cover a
request spreads all buckets' units evenly again and tops itself up, so SOLD_OUT means every bucket
is dry, and no unit is created or lost. held, sold and the per-user counts stay per item, so the
limit is exact. On one node all of this is one script and buys no throughput, since Redis runs
scripts one at a time; on a Cluster these buckets stay in the item's group's slot (one master).

Spread items (`redis+cluster://...?groups=G&spread=N`, default 1: off) put a hot item on N masters:
bucket j of every item is a book of its own in slot group (item + j*(G // N)) mod G, a whole ledger
of its share (quota, avail, held, sold, seq, u:<user>) with the group's hold records, request keys,
deadlines and stream. A user's requests go to bucket crc32(user) mod N, so the limit stays exact;
hold ids are drawn in the bucket's group. A bucket that cannot cover a request answers DEFER
(reserve.lua) and the client moves units in by a three-step transfer (transfer.lua) whose units in
transit `stock` counts, one client per item at a time (its refill lease); a request is refused for
stock only when the item's units for sale, every bucket's and in transit, were fewer than it asked.
A batch that may run short in a bucket is decided in order, one bucket's run at a time, so batches
keep their order.
Reads, pauses, configure and restore fan out over the buckets: see `flashsale.ledger.redis_spread`.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis import BlockingConnectionPool, Redis
from redis.cluster import RedisCluster
from redis.exceptions import AskError, ClusterCrossSlotError, ClusterDownError, MovedError

from flashsale.clock import Clock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import HOLD_TRANSITIONS, Hold, HoldState, transition_error
from flashsale.domain.sale import MAX_QUANTITY_PER_REQUEST, ItemTerms
from flashsale.ledger.contract import BookId, Decision, Pause, PurchaseStream, StockLevel, paused_error
from flashsale.ledger.ids import new_hold_ids
from flashsale.ledger.redis_spread import LEASE_WAIT_S, Spread, shares
from flashsale.redis_url import DEFAULT_CONNECTIONS, node_client, take_options

SCRIPTS = (
    "reserve",
    "settle",
    "look",
    "holds",
    "expire",
    "next_expiry",
    "configure",
    "restore",
    "pause",
    "claim",
    "forget",
    "finished",
    "shorten",
    "refund_stored",
    "index",
    "transfer",
    "lease",
)
MAX_SCRIPT_BATCH = 512  # requests per script call: bounds one call's run time (Redis waits for it)
# index.lua scans the hold records again this long after a scan came round (the ledger's clock):
# what processes of the older version sold or finished during a rolling deploy gets indexed too.
INDEX_AGAIN_S = 86_400.0

# A one-node ledger pointed at a Cluster node hears one of these for its first script.
_CLUSTER_REPLIES = (ClusterCrossSlotError, MovedError, AskError, ClusterDownError)
_AGAIN = ["again"]  # a script expired a bounded share of due holds and must be called again
_REFUSED = {code.value: Decision(None, code) for code in ErrorCode}
_DEFERRED = Decision(None)  # a bucket of a spread item could not cover it: decided after a transfer
_SHORT = (ErrorCode.SOLD_OUT, ErrorCode.INSUFFICIENT_STOCK)
# A tokenless restore of a spread ledger pauses its items this long at most (it resumes them when done).
RESTORE_PAUSE_S = 60.0
# A spread item found dry in every bucket is taken as sold out this long without asking the other
# buckets again: units given back elsewhere meanwhile (a release, an expiry seen by another process)
# wait at most this long for a buyer of another bucket.
DRY_S = 0.1
_log = logging.getLogger(__name__)
# Each target state is reachable from exactly one state; the scripts refuse any other.
_SOURCE = {target: source for source, targets in HOLD_TRANSITIONS.items() for target in targets}


@cache
def _script_texts() -> dict[str, str]:
    """Read every script, each prefixed with the shared Lua library.

    The `#!lua` line makes Redis (7.0+) refuse a script up front when it is out of memory, instead of
    failing a write halfway through a script that cannot roll back.
    """
    lua = files("flashsale.ledger") / "lua"
    lib = (lua / "lib.lua").read_text()
    return {name: f"#!lua\n{lib}\n{(lua / f'{name}.lua').read_text()}" for name in SCRIPTS}


def _pools(client: Redis | RedisCluster) -> list[Any]:
    """The connection pools of a client: its own, or on a Cluster every node's (which `close` keeps)."""
    if isinstance(client, Redis):
        return [client.connection_pool]
    return [node.redis_connection.connection_pool for node in client.get_nodes() if node.redis_connection]


def _reqfield(user_id: str, request_id: str) -> str:
    """The key of (user, request id), as lib.lua's reqfield makes it: the user's length in bytes first."""
    return f"{len(user_id.encode())}|{user_id}{request_id}"


def _hold(rec: Sequence[str]) -> Hold:
    hold_id, item_id, user_id, qty, request_id, created, expires, state = rec
    return Hold(
        hold_id, int(item_id), user_id, int(qty), request_id, float(created), float(expires), HoldState(state)
    )


class ClusterNeedsClusterURL(RuntimeError):
    """A `redis://` ledger URL names a node of a Redis Cluster: a configuration error, told plainly."""


class RedisLedger:
    """`flashsale.ledger.contract.Ledger` on one Redis server; safe to share between threads and processes."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        clock: Clock = time.time,
        *,
        prefix: str = "fs",
        buckets: int = 1,
        groups: int = 0,
        spread: int = 1,
    ) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"key prefix {prefix!r} must be non-empty and free of braces (hash tags)")
        if buckets < 1:
            raise ValueError("an item needs at least one bucket")
        if groups < 0:
            raise ValueError("slot groups: 0 (one node) or more (a Cluster)")
        if spread > 1 and buckets > 1:
            raise ValueError("buckets in one slot (buckets=N) or over slot groups (spread=N), not both")
        self.client = client
        self.prefix = prefix
        self.buckets = buckets
        self.groups = groups
        # Each slot group's key prefix: the plain prefix on one node; on a Cluster `prefix:{g<k>}`,
        # whose hash tag (the first {...} of a key) puts every key of the group in one slot.
        self._prefixes = [prefix] if groups == 0 else [f"{prefix}:{{g{k}}}" for k in range(groups)]
        self.stream_keys = [f"{p}:purchases" for p in self._prefixes]
        self.stream_key = self.stream_keys[0]
        self._clock = clock
        self._shared = [
            (
                f"{p}:due",
                f"{p}:holds",
                f"{p}:expired",
                f"{p}:purchases",
                f"{p}:reqs",
                f"{p}:pauses",
                f"{p}:claims",
                f"{p}:done",
                f"{p}:retired",
            )
            for p in self._prefixes
        ]
        self._scripts = {name: client.register_script(text) for name, text in _script_texts().items()}
        self._expire_from = 0  # the slot group `expire_due` asks first (in turn)
        # (item, bucket) -> the highest sequence this process knows the book reached (bucket 0 only
        # unless spread): raised from many threads, so under a lock (a lost race would lower one).
        self._floors: dict[BookId, int] = {}
        self._floors_lock = threading.Lock()
        # Spread items (see flashsale.ledger.redis_spread): each bucket's avail as last seen (a hint:
        # whether a batch may run short in a bucket).
        self.spread = Spread(self._run, clock, groups, spread) if spread > 1 else None
        self._books_per_item = self.spread.n if self.spread else 1  # an item's books of sequences
        self._seen_avail: dict[tuple[int, int], int] = {}
        self._dry: dict[int, float] = {}  # spread item -> when (ledger clock) every bucket was dry

    def purchase_stream(self) -> PurchaseStream:
        """The streams the reserve script appends every fresh grant to: one per slot group (order writer)."""
        return PurchaseStream(self.client, self.stream_key, tuple(self.stream_keys))

    def close(self) -> None:
        """Close the client and its connections (closing again is harmless)."""
        self.client.close()
        for pool in _pools(self.client):
            pool.disconnect()

    def group_of_item(self, item_id: int) -> int:
        """The slot group an item's keys live in: item id mod groups on a Cluster, 0 on one node."""
        return item_id % self.groups if self.groups else 0

    def groups_of_item(self, item_id: int) -> list[int]:
        """The slot groups of the item's buckets: one, or `spread` different ones (bucket 0 first)."""
        return self.spread.groups_of(item_id) if self.spread else [self.group_of_item(item_id)]

    def group_of_request(self, item_id: int, user_id: str) -> int:
        """The slot group that decides a user's requests of an item: its bucket's on a spread ledger."""
        if self.spread is None:
            return self.group_of_item(item_id)
        return self.spread.groups_of(item_id)[self.spread.part_of_user(user_id)]

    def master_of_group(self, group: int) -> str:
        """The Cluster node (host:port) serving a slot group's hash slot, as the client last learnt it."""
        assert isinstance(self.client, RedisCluster)
        return str(self.client.get_node_from_key(self._shared[group][0]).name)

    def group_of_user(self, user_id: str) -> int:
        """The slot group of a user's request claims on a Cluster: crc32 of the user id mod groups."""
        return zlib.crc32(user_id.encode()) % self.groups if self.groups > 1 else 0

    def group_of_hold(self, hold_id: str) -> int:
        """The slot group a hold id was drawn for: crc32 of the id mod groups (0 on one node)."""
        return zlib.crc32(hold_id.encode()) % self.groups if self.groups > 1 else 0

    def _hold_ids(self, count: int, group: int) -> list[str]:
        """`count` fresh hold ids of the group, so `confirm(hold_id)` finds the hold's slot without a lookup.

        Drawn at random and kept when they fall in the group (one in `groups`): every character
        stays as random as `new_hold_ids` makes it, which a group marker in the id would not.
        """
        if self.groups <= 1:
            return new_hold_ids(count)
        ids: list[str] = []
        while len(ids) < count:
            ids += [i for i in new_hold_ids(count * self.groups) if self.group_of_hold(i) == group]
        return ids[:count]

    def _run(self, name: str, *args: Any, group: int = 0) -> Any:
        script = self._scripts[name]
        while True:
            try:
                reply = script(keys=self._shared[group], args=(self._prefixes[group], *args))
            except _CLUSTER_REPLIES as exc:
                if self.groups:  # a Cluster client: a real Cluster fault (redis-py follows MOVED/ASK itself)
                    raise
                raise ClusterNeedsClusterURL(
                    "this Redis is a Cluster node, and a redis:// URL runs the one-node layout, "
                    "whose scripts span hash slots: name it redis+cluster://host:port"
                ) from exc
            if reply != _AGAIN:
                return reply

    def _each_group(self, name: str, *args: Any) -> list[Any]:
        """Run a script once per slot group, in group order; its replies."""
        return [self._run(name, *args, group=g) for g in range(len(self._prefixes))]

    # -- configuration -------------------------------------------------------------------------
    def configure(self, terms: ItemTerms) -> StockLevel:
        if self.spread:
            with self._floors_lock:
                self._dry.pop(terms.item_id, None)
            return self.spread.configure(terms, self._configure_in)
        reply = self._configure_in(terms, self.group_of_item(terms.item_id), terms.quota)
        return StockLevel(terms.item_id, *(int(n) for n in reply[1:]))

    def _configure_in(self, terms: ItemTerms, group: int, quota: int | str, part: int | None = None) -> Any:
        """Run configure.lua in one group (for one bucket `part` of a spread item); raise its refusals."""
        spread = () if part is None else (part, terms.quota)
        reply = self._run(
            "configure",
            self._clock(),
            terms.item_id,
            quota,
            terms.per_user_limit,
            terms.opens_at,
            terms.closes_at,
            terms.hold_ttl_s,
            self.buckets,
            *spread,
            group=group,
        )
        if reply[0] == ErrorCode.SALE_PAUSED:
            raise paused_error(terms.item_id, float(reply[1]), self._clock())
        if reply[0] == ErrorCode.QUOTA_BELOW_COMMITTED:
            raise FlashSaleError(
                ErrorCode.QUOTA_BELOW_COMMITTED,
                f"quota {terms.quota} is below the {reply[1]} units already held or sold",
            )
        return reply

    def restore(
        self,
        terms: Iterable[ItemTerms],
        holds: Iterable[Hold],
        *,
        token: str | None = None,
        marks: Mapping[BookId, int] | None = None,
    ) -> None:
        """Replace every item, hold and counter under the prefix in one script call.

        The purchase stream is kept: it feeds the database, which is what is restored from. The
        counters are computed and checked here before anything is written; the pause lease (with
        `token`) is checked by the script, in the same atomic step as the rebuild.

        On a spread ledger each slot group is rebuilt in its own call, so a restore without `token`
        pauses every item itself (under a fresh token, after dropping whatever pauses there were,
        as a tokenless restore replaces them): no transfer moves units between a rebuilt bucket and
        one not rebuilt yet (transfer.lua refuses while paused), which would create or lose units.
        """
        terms, holds = list(terms), list(holds)
        if token is None and self.spread is not None:
            item_ids, own = [t.item_id for t in terms], f"restore-{secrets.token_hex(8)}"
            self.resume(self.pauses(), token=None)
            self.pause(item_ids, until=self._clock() + RESTORE_PAUSE_S, token=own)
            try:
                self.restore(terms, holds, token=own, marks=marks)
            finally:
                self.resume(item_ids, token=own)
            return
        books = {t.item_id: t for t in terms}
        # (item, bucket, "held" | "sold") -> units; the bucket of a hold is its user's (0 unless spread)
        committed: Counter[tuple[int, int, str]] = Counter()
        used: Counter[tuple[int, str]] = Counter()
        for hold in holds:
            if hold.item_id not in books:
                raise FlashSaleError(
                    ErrorCode.CONFLICT, f"hold {hold.hold_id} is of unknown item {hold.item_id}"
                )
            if hold.state in (HoldState.HELD, HoldState.SOLD):
                committed[hold.item_id, self._part_of_user(hold.user_id), hold.state.value] += hold.qty
                used[hold.item_id, hold.user_id] += hold.qty
        parts = range(self._books_per_item)
        taken = {i: sum(committed[i, j, s] for j in parts for s in ("held", "sold")) for i in books}
        broken = [i for i, t in books.items() if taken[i] > t.quota]
        if broken:
            raise FlashSaleError(ErrorCode.CONFLICT, f"stored holds exceed quota for items {broken}")
        marks = marks or {}
        # One call per slot group, each with its items (a spread item's buckets), their users' units
        # and their holds; a group with no item is emptied too. On one node that is one call, the
        # whole rebuild atomic; on a Cluster each group is rebuilt atomically (an unspread item
        # never spans groups; a spread one is paused in every group by a restore on a live sale).
        n = len(self._prefixes)
        # Every bucket rebuilt here shares one generation: a transfer sent before is never credited
        # after (transfer.lua), as its units are counted by this rebuild already.
        generation = secrets.token_hex(6)
        items: list[list[Any]] = [[] for _ in range(n)]
        for t in books.values():
            known = zip(self._books_of(t.item_id), self._floors_of(t.item_id), strict=True)
            floors = [max(floor, marks.get(book, 0)) for book, floor in known]
            for part, (group, share, floor) in enumerate(self._restored_parts(t, floors, taken)):
                row = items[group]
                held, sold = committed[t.item_id, part, "held"], committed[t.item_id, part, "sold"]
                row += (
                    t.item_id,
                    held + sold + share,
                    t.per_user_limit,
                    t.opens_at,
                    t.closes_at,
                    t.hold_ttl_s,
                )
                row += (held, sold, floor, *((part, t.quota, generation) if self.spread else ("", "", "")))
        users: list[list[Any]] = [[] for _ in range(n)]
        for (item_id, user_id), units in used.items():
            users[self.group_of_request(item_id, user_id)] += (item_id, user_id, units)
        claims: list[list[Any]] = [[] for _ in range(n)]
        records: list[list[Any]] = [[] for _ in range(n)]
        for h in holds:
            if self.groups > 1:
                claims[self.group_of_user(h.user_id)] += (_reqfield(h.user_id, h.request_id), h.item_id)
            row = records[self.group_of_request(h.item_id, h.user_id)]
            row += (h.hold_id, h.item_id, h.user_id, h.qty, h.request_id)
            row += (h.created_at, h.expires_at, h.state.value)
        if token and self.spread:
            self._check_leases(books, token)
        for g, prefix in enumerate(self._prefixes):
            pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + ":*"
            args: list[Any] = [self._clock(), token or "", pattern, self.buckets, len(items[g]) // 12]
            args += [*items[g], len(users[g]) // 3, *users[g], len(claims[g]) // 2, *claims[g], *records[g]]
            reply = self._run("restore", *args, group=g)
            if reply[0] == ErrorCode.CONFLICT:
                raise FlashSaleError(ErrorCode.CONFLICT, f"the pause lease of item {reply[1]} is not held")
        with self._floors_lock:
            self._dry.clear()  # every bucket rebuilt: what was sold out here may not be

    def _check_leases(self, item_ids: Iterable[int], token: str) -> None:
        """Refuse (CONFLICT) a restore under `token` unless every bucket's group holds its item's
        lease: each group is rebuilt in its own call, and a spread item rebuilt in some groups only
        would have its units counted twice or not at all. (Each call checks again, atomically.)"""
        now = self._clock()
        held = [
            {int(flat[j]) for j in range(0, len(flat), 3) if flat[j + 2] == token}
            for flat in self._each_group("pause", now, "list", "", 0)
        ]
        for item_id in item_ids:
            if any(item_id not in held[g] for g in self.groups_of_item(item_id)):
                raise FlashSaleError(ErrorCode.CONFLICT, f"the pause lease of item {item_id} is not held")

    def _part_of_user(self, user_id: str) -> int:
        return self.spread.part_of_user(user_id) if self.spread else 0

    def _books_of(self, item_id: int) -> list[BookId]:
        """The item's books of sequences: one per bucket of a spread item, else bucket 0 alone."""
        return [(item_id, j) for j in range(self._books_per_item)]

    def _restored_parts(
        self, terms: ItemTerms, floors: Sequence[int], taken: Mapping[int, int]
    ) -> list[tuple[int, int, int]]:
        """(group, available share, sequence floor) of each bucket of a restored item, given each
        bucket's floor (restore.lua starts the book's new epoch above it and above its old sequence).
        A spread item's available units are shared evenly."""
        item_id = terms.item_id
        if self.spread is None:
            return [(self.group_of_item(item_id), terms.quota - taken[item_id], floors[0])]
        return list(
            zip(
                self.spread.groups_of(item_id),
                shares(terms.quota - taken[item_id], self.spread.n),
                floors,
                strict=True,
            )
        )

    # -- sequences -----------------------------------------------------------------------------
    def sequences(self, item_id: int) -> list[int]:
        if self.spread:
            parts = self.spread.parts(item_id)
            if any(p is not None for p in parts):
                return [0 if p is None else p.seq for p in parts]
        else:
            reply = self._look(item_id, "")
            if reply is not None:
                return [int(reply[6])]
        raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {item_id}")

    def expect(self, marks: Mapping[BookId, int]) -> None:
        with self._floors_lock:
            for book, seq in marks.items():
                if book[1] < self._books_per_item and seq > self._floors.get(book, 0):
                    self._floors[book] = seq

    # -- pauses --------------------------------------------------------------------------------
    def _by_group(self, item_ids: Iterable[int]) -> dict[int, list[int]]:
        """The items, grouped by slot group (groups in first-seen order)."""
        grouped: dict[int, list[int]] = {}
        for item_id in item_ids:
            for group in self.groups_of_item(item_id):  # a spread item: in each of its buckets' groups
                grouped.setdefault(group, []).append(item_id)
        return grouped

    def pause(self, item_ids: Iterable[int], *, until: float, token: str) -> None:
        now = self._clock()
        done: list[tuple[int, list[int]]] = []
        for group, items in self._by_group(item_ids).items():
            reply = self._run("pause", now, "pause", token, until, *items, group=group)
            if reply[0] == ErrorCode.SALE_PAUSED:
                # All or nothing across groups too: drop what this call paused in earlier groups.
                for g, paused in done:
                    self._run("pause", now, "resume", token, 0, *paused, group=g)
                raise paused_error(int(reply[1]), float(reply[2]), now)
            done.append((group, items))

    def resume(self, item_ids: Iterable[int], *, token: str | None) -> None:
        for group, items in self._by_group(item_ids).items():
            self._run("pause", self._clock(), "resume", token or "", 0, *items, group=group)

    def pauses(self) -> dict[int, Pause]:
        leases = {}
        for flat in self._each_group("pause", self._clock(), "list", "", 0):
            leases.update(
                {int(flat[j]): Pause(float(flat[j + 1]), flat[j + 2]) for j in range(0, len(flat), 3)}
            )
        return leases

    # -- the decision --------------------------------------------------------------------------
    def reserve(self, *, item_id: int, user_id: str, qty: int, request_id: str) -> Decision:
        return self.reserve_many(((item_id, user_id, qty, request_id),))[0]

    def reserve_many(
        self, requests: Sequence[tuple[int, str, int, str]], *, checked: bool = False
    ) -> list[Decision]:
        """Decide the requests in order, one script call per slot group and MAX_SCRIPT_BATCH of them.

        On a Cluster the batch is split by its items' slot groups, each part in request order; the
        answers come back in the order of `requests`. Requests of different groups name different
        items, and an item's decisions depend only on its own earlier requests (idempotency lives
        with the item's group), so deciding group by group answers as deciding in order would.
        """
        decisions: list[Decision] = []
        if self.groups <= 1:
            for start in range(0, len(requests), MAX_SCRIPT_BATCH):
                decisions += self._reserve_chunk(requests[start : start + MAX_SCRIPT_BATCH], 0, checked)
            return decisions
        # Rounds, so that no request key comes twice in one: a claim made and then dropped by a
        # refused request must be seen dropped by a later request of the same key, as in order.
        start, seen = 0, set[tuple[str, str]]()
        for j, (_, user_id, _, request_id) in enumerate(requests):
            if (user_id, request_id) in seen:
                decisions += self._reserve_round(requests[start:j], checked)
                start, seen = j, set()
            seen.add((user_id, request_id))
        return decisions + self._reserve_round(requests[start:], checked)

    def _claims(self, mode: str, requests: Sequence[tuple[int, str, int, str]]) -> str:
        """Run the claim script (see claim.lua) for the requests, per user group; a verdict per request."""
        positions: dict[int, list[int]] = {}
        for j, (_, user_id, _, _) in enumerate(requests):
            positions.setdefault(self.group_of_user(user_id), []).append(j)
        verdicts = [""] * len(requests)
        for group, indices in positions.items():
            pairs: list[Any] = []
            for j in indices:
                item_id, user_id, _, request_id = requests[j]
                pairs += (_reqfield(user_id, request_id), item_id)
            for j, verdict in zip(indices, self._run("claim", mode, *pairs, group=group) or "", strict=False):
                verdicts[j] = verdict
        return "".join(verdicts)

    def _reserve_round(self, requests: Sequence[tuple[int, str, int, str]], checked: bool) -> list[Decision]:
        """Claim the request keys in their users' groups, decide the rest per item group, settle claims."""
        if not requests:
            return []
        claimed = self._claims("claim!" if checked else "claim", requests)
        answers: list[Decision | None] = [None] * len(requests)
        pending: list[int] = []
        for j in range(len(requests)):
            if claimed[j] == "x":  # the key names a hold of another item
                answers[j] = _REFUSED[ErrorCode.IDEMPOTENCY_MISMATCH]
            elif claimed[j] == "c":  # unclaimed, but some of the user's keys were forgotten
                answers[j] = _REFUSED[ErrorCode.REQUEST_FORGOTTEN]
            else:
                pending.append(j)
        self._decide(requests, pending, answers, checked)
        decided = [d for d in answers if d is not None]
        # A refused request is not remembered: its claim goes. A fresh grant under a claim it found
        # (a concurrent refusal of the same key may have dropped it meanwhile) claims again.
        drop = [r for r, v, d in zip(requests, claimed, decided, strict=True) if v == "n" and not d.granted]
        keep = [
            r
            for r, v, d in zip(requests, claimed, decided, strict=True)
            if v == "o" and d.granted and not d.replayed
        ]
        for mode, which in (("drop", drop), ("keep", keep)):
            if which:
                self._claims(mode, which)
        return decided

    def _decide(
        self,
        requests: Sequence[tuple[int, str, int, str]],
        pending: Sequence[int],
        answers: list[Decision | None],
        checked: bool,
    ) -> None:
        """Decide `requests[j]` for each j of `pending` into `answers[j]`: one script call per group.

        A spread item whose batch may run short in a bucket (more asked of a bucket than it had when
        last seen) is decided in order instead, one bucket's run of requests at a time, with transfers
        where a bucket runs dry; so is the rest of an item a bucket deferred in the calls per group.
        An item this process found sold out in every bucket within DRY_S is decided by each bucket as
        it finds itself (no transfer is looked for), so a sold-out sale costs what an unspread one does.
        """
        in_order: dict[int, list[int]] = {}  # spread item -> its requests to decide in order
        dry = frozenset[int]()
        if self.spread:
            pending, in_order, dry = self._plan_spread(requests, pending)
        for j in self._decide_per_group(requests, pending, answers, checked, dry):
            in_order.setdefault(requests[j][0], []).append(j)
        for indices in in_order.values():
            self._decide_in_order(requests, sorted(indices), answers, checked)

    def _decide_per_group(
        self,
        requests: Sequence[tuple[int, str, int, str]],
        indices: Sequence[int],
        answers: list[Decision | None],
        checked: bool,
        dry: frozenset[int],
    ) -> list[int]:
        """Decide the requests one call per group (and MAX_SCRIPT_BATCH); the ones a bucket deferred.
        The `dry` items are decided as each bucket finds itself (never deferred)."""
        positions: dict[tuple[int, bool], list[int]] = {}  # (group, final) -> indices into requests
        for j in indices:
            item_id, user_id = requests[j][0], requests[j][1]
            positions.setdefault((self.group_of_request(item_id, user_id), item_id in dry), []).append(j)
        deferred = []
        for (group, final), group_indices in positions.items():
            for start in range(0, len(group_indices), MAX_SCRIPT_BATCH):
                part = group_indices[start : start + MAX_SCRIPT_BATCH]
                decided = self._reserve_chunk([requests[j] for j in part], group, checked, final)
                for j, decision in zip(part, decided, strict=True):
                    if decision is _DEFERRED:
                        deferred.append(j)
                    else:
                        answers[j] = decision
        return deferred

    def _plan_spread(
        self, requests: Sequence[tuple[int, str, int, str]], pending: Sequence[int]
    ) -> tuple[list[int], dict[int, list[int]], frozenset[int]]:
        """Split a spread batch: the requests to decide per group, those per item in order, and the
        items found sold out lately (see `_decide`)."""
        assert self.spread is not None
        asked: Counter[tuple[int, int]] = Counter()
        for j in pending:
            item_id, user_id, qty, _ = requests[j]
            asked[item_id, self.spread.part_of_user(user_id)] += max(qty, 0)
        with self._floors_lock:
            scarce = {
                item for (item, part), units in asked.items() if units > self._seen_avail.get((item, part), 0)
            }
        dry = frozenset(i for i, _ in asked if self._sold_out(i))
        parallel: list[int] = []
        in_order: dict[int, list[int]] = {}
        for j in pending:
            if requests[j][0] in scarce and requests[j][0] not in dry:
                in_order.setdefault(requests[j][0], []).append(j)
            else:
                parallel.append(j)
        return parallel, in_order, dry

    def _sold_out(self, item_id: int) -> bool:
        """Whether this process found the spread item dry in every bucket less than DRY_S ago."""
        found = self._dry.get(item_id)
        return found is not None and 0 <= self._clock() - found < DRY_S

    def _decide_in_order(
        self,
        requests: Sequence[tuple[int, str, int, str]],
        indices: Sequence[int],
        answers: list[Decision | None],
        checked: bool,
    ) -> None:
        """Decide one spread item's requests in order: each run of one bucket's requests in one call;
        a request its bucket defers is decided on the shortfall path (`_decide_short`), then the rest
        of the run is asked again."""
        assert self.spread is not None
        item_id, at = requests[indices[0]][0], 0
        while at < len(indices):
            if self._sold_out(item_id):  # found so here or by another thread: each bucket decides alone
                self._decide_per_group(requests, indices[at:], answers, checked, frozenset((item_id,)))
                return
            part = self.spread.part_of_user(requests[indices[at]][1])
            end = at + 1
            while (
                end < len(indices)
                and end - at < MAX_SCRIPT_BATCH
                and self.spread.part_of_user(requests[indices[end]][1]) == part
            ):
                end += 1
            run, group = indices[at:end], self.spread.groups_of(item_id)[part]
            decided = self._reserve_chunk([requests[j] for j in run], group, checked)
            done = next((k for k, d in enumerate(decided) if d is _DEFERRED), len(run))
            for j, decision in zip(run[:done], decided[:done], strict=True):
                answers[j] = decision
            at += done
            if at < end:  # deferred: its bucket is short
                answers[run[done]] = self._decide_short(requests[run[done]], part, checked)
                at += 1

    def _decide_short(self, request: tuple[int, str, int, str], part: int, checked: bool) -> Decision:
        """Decide a request its bucket `part` deferred, on the item's shortfall path (see
        `flashsale.ledger.redis_spread`): as the refill lease's holder, move units in until it fits or
        every other bucket reads dry, then decide it as the bucket finds it; while another holds the
        lease, wait and ask the bucket again. Past LEASE_WAIT_S it is answered SERVICE_UNAVAILABLE
        (retry), never refused for stock on a guess."""
        assert self.spread is not None
        spread, (item_id, _, qty, _) = self.spread, request
        group = spread.groups_of(item_id)[part]
        token, held, tries = secrets.token_hex(8), False, 0
        deadline = time.monotonic() + LEASE_WAIT_S
        try:
            while time.monotonic() < deadline:
                if not held and self._sold_out(item_id):  # a holder found every bucket dry just now
                    break
                held = spread.take_lease(item_id, token)  # or renew it: a holder's step is short
                if held and spread.collect(item_id, part, qty, self._floors_of(item_id)):
                    break  # every other bucket dry, nothing in transit: the bucket decides alone
                if not held:
                    spread.wait(tries)
                    tries += 1
                decision = self._reserve_chunk([request], group, checked)[0]
                if decision is not _DEFERRED:
                    return decision
            else:
                return _REFUSED[ErrorCode.SERVICE_UNAVAILABLE]
            decision = self._reserve_chunk([request], group, checked, final=True)[0]
            if held and decision.code is ErrorCode.SOLD_OUT:  # none here, none elsewhere
                with self._floors_lock:
                    self._dry[item_id] = self._clock()
            return decision
        except FlashSaleError as exc:
            if exc.code is not ErrorCode.LEDGER_BEHIND:
                raise
            return _REFUSED[ErrorCode.LEDGER_BEHIND]  # a donor bucket lost writes (Spread.send)
        finally:
            if held:
                spread.drop_lease(item_id, token)

    def _floors_of(self, item_id: int) -> list[int]:
        """The floor of each of the item's books (0 where none is known)."""
        with self._floors_lock:
            return [self._floors.get(b, 0) for b in self._books_of(item_id)]

    def _reserve_chunk(
        self,
        chunk: Sequence[tuple[int, str, int, str]],
        group: int,
        checked: bool = False,
        final: bool = False,
    ) -> list[Decision]:
        """Decide a chunk of one group's requests in one script call. On a spread ledger a bucket's
        shortage is deferred (_DEFERRED) unless `final`."""
        now = float(self._clock())
        # Lua has no secure randomness, so every request gets a fresh id from here, drawn for the
        # chunk at once; a refused request's id is simply never used. No buffer survives the call,
        # so workers forked from one parent never share ids.
        hold_ids = self._hold_ids(len(chunk), group)
        routed = self.buckets > 1
        # The whole chunk is one argument (see reserve.lua): redis-py encodes one string, not one per
        # request. The lengths in bytes split user and request id apart again.
        batch = "".join(
            [
                f"{item_id}|{qty}|{zlib.crc32(user_id.encode()) if routed else 0}|{hold_id}"
                f"|{len(request_id.encode())}|{len(user_id.encode())}|{user_id}{request_id}"
                for (item_id, user_id, qty, request_id), hold_id in zip(chunk, hold_ids, strict=True)
            ]
        )
        spread = self.spread
        # The floor of each item's book this group decides (on a spread ledger: the item's bucket here).
        books = {i: (i, spread.part_of_group(i, group) if spread else 0) for i in {r[0] for r in chunk}}
        with self._floors_lock:
            floors = "".join(f"{i}|{self._floors[b]}|" for i, b in books.items() if b in self._floors)
        deferring = spread is not None and not final
        verdicts, priors, reached, *left = self._run(
            "reserve",
            now,
            MAX_QUANTITY_PER_REQUEST,
            batch,
            floors,
            "1" if checked else "",
            "1" if deferring else "",
            group=group,
        )
        self.expect({books[int(reached[j])]: int(reached[j + 1]) for j in range(0, len(reached), 2)})
        if spread is not None:
            self._seen(group, left[0] if left else [])
        replays = iter(priors)
        decisions = []
        for (item_id, user_id, qty, request_id), hold_id, verdict in zip(
            chunk, hold_ids, verdicts.split(","), strict=True
        ):
            if verdict[0] == "+":  # granted: the verdict is the deadline
                expires = float(verdict[1:])
                decisions.append(
                    Decision(Hold(hold_id, item_id, user_id, qty, request_id, now, expires, HoldState.HELD))
                )
            elif verdict[0] == "=":  # replayed: state|created|expires; the hold id is the next of `priors`
                state, created, expires = verdict[1:].split("|")
                times = float(created), float(expires)
                hold = Hold(next(replays), item_id, user_id, qty, request_id, *times, HoldState(state))
                decisions.append(Decision(hold, replayed=True))
            elif verdict == "DEFER":
                decisions.append(_DEFERRED)
            else:
                decisions.append(_REFUSED[verdict])
        return decisions

    def _seen(self, group: int, left: Sequence[str]) -> None:
        """Remember a spread bucket's items' available units as its reply showed them (hints for the
        next batch)."""
        assert self.spread is not None
        part_of = self.spread.part_of_group
        with self._floors_lock:
            for j in range(0, len(left), 2):
                item_id, units = int(left[j]), int(left[j + 1])
                self._seen_avail[item_id, part_of(item_id, group)] = units
                if units > 0:  # some came back (a release, an expiry): not sold out after all
                    self._dry.pop(item_id, None)

    def _back_on_sale(self, holds: Iterable[Hold]) -> None:
        """Units of these items went back on sale here: none of them is sold out any more."""
        with self._floors_lock:
            for hold in holds:
                self._dry.pop(hold.item_id, None)

    # -- settling a hold -----------------------------------------------------------------------
    def confirm(self, hold_id: str) -> Hold:
        return self._settle(hold_id, HoldState.SOLD)

    def release(self, hold_id: str) -> Hold:
        return self._settle(hold_id, HoldState.RELEASED)

    def refund(self, hold_id: str) -> Hold:
        return self._settle(hold_id, HoldState.REFUNDED)

    def _settle(self, hold_id: str, target: HoldState) -> Hold:
        return self._settled(
            hold_id, target, self._settle_script(hold_id, target.value, _SOURCE[target].value)
        )

    def _settled(self, hold_id: str, target: HoldState, reply: Any) -> Hold:
        """The hold a settle script's reply gives, or the error it tells of."""
        if reply[0] == ErrorCode.UNKNOWN_HOLD:
            raise FlashSaleError(ErrorCode.UNKNOWN_HOLD, f"no hold {hold_id}")
        if reply[0] == ErrorCode.SALE_PAUSED:
            raise paused_error(int(reply[2]), float(reply[1]), self._clock())
        if reply[0] == "refused":
            state = HoldState(reply[1])
            error = transition_error(state, target) or ErrorCode.INVALID_TRANSITION
            raise FlashSaleError(error, f"hold {hold_id} is {state}, cannot become {target}")
        hold = _hold(reply[1])
        if target is not HoldState.SOLD:
            self._back_on_sale((hold,))
        return hold

    def refund_stored(self, hold: Hold) -> Hold:
        refunded, sold = HoldState.REFUNDED.value, HoldState.SOLD.value
        while True:
            reply = self._settle_script(hold.hold_id, refunded, sold)
            if reply[0] != ErrorCode.UNKNOWN_HOLD:
                return self._settled(hold.hold_id, HoldState.REFUNDED, reply)
            # Forgotten by `forget_sold`: its item's book still counts it (see refund_stored.lua).
            reply = self._run(
                "refund_stored",
                self._clock(),
                *(hold.hold_id, hold.item_id, hold.user_id, hold.qty, hold.request_id),
                *(hold.created_at, hold.expires_at),
                group=self.group_of_request(hold.item_id, hold.user_id),  # the user's bucket's, if spread
            )
            if reply[0] == "known":  # a concurrent refund (or a restore) wrote it meanwhile: settle it
                continue
            if reply[0] == ErrorCode.SALE_PAUSED:
                raise paused_error(int(reply[2]), float(reply[1]), self._clock())
            if reply[0] == ErrorCode.UNKNOWN_ITEM:
                raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {hold.item_id}")
            if reply[0] == ErrorCode.CONFLICT:
                raise FlashSaleError(
                    ErrorCode.CONFLICT, f"item {hold.item_id} holds no such sale as {hold.hold_id}"
                )
            refunded_hold = _hold(reply[1])
            self._back_on_sale([refunded_hold])
            return refunded_hold

    def shorten(self, hold_id: str, expires_at: float) -> Hold:
        reply = self._run("shorten", self._clock(), hold_id, expires_at, group=self.group_of_hold(hold_id))
        if reply[0] == ErrorCode.UNKNOWN_HOLD:
            raise FlashSaleError(ErrorCode.UNKNOWN_HOLD, f"no hold {hold_id}")
        return _hold(reply[1])

    def _settle_script(self, hold_id: str, target: str, source: str) -> Any:
        """Run the settle script in the hold's slot group; on a Cluster a hold not found there
        (restored from a database written on one node, its id of another group) is looked for in the
        other groups: only on that rare miss."""
        home = self.group_of_hold(hold_id)
        reply = self._run("settle", self._clock(), hold_id, target, source, group=home)
        for group in range(len(self._prefixes)):
            if reply[0] != ErrorCode.UNKNOWN_HOLD:
                break
            if group != home:
                reply = self._run("settle", self._clock(), hold_id, target, source, group=group)
        return reply

    # -- forgetting ----------------------------------------------------------------------------
    def abandon(self, hold_ids: Iterable[str]) -> int:
        with self._floors_lock:
            self._dry.clear()  # abandoned holds give units back, of items not known here
        return self._forget("abandon", hold_ids)

    def forget(self, hold_ids: Iterable[str]) -> int:
        return self._forget("retire", hold_ids)

    def forget_sold(self, hold_ids: Iterable[str]) -> int:
        return self._forget("sold", hold_ids)

    def finished(self, before: float, limit: int = 1000) -> list[Hold]:
        return self._listed("done", before, limit)

    def sold_before(self, before: float, limit: int = 1000) -> list[Hold]:
        return self._listed("sold", before, limit)

    def _listed(self, index: str, before: float, limit: int) -> list[Hold]:
        """Up to `limit` holds of a retention index ('done' or 'sold', see finished.lua), group by group."""
        found: list[Hold] = []
        for group in range(len(self._prefixes)):
            if len(found) >= limit:
                break
            found += [
                _hold(rec) for rec in self._run("finished", before, limit - len(found), index, group=group)
            ]
        return found

    def index_finished(self, limit: int = 1000) -> bool:
        """One page of index.lua's scan in each slot group not scanned yet; True once all are.

        A day (INDEX_AGAIN_S) after a group's scan came round it scans again: see index.lua.
        """
        replies = self._each_group("index", self._clock(), limit, INDEX_AGAIN_S)
        return all(int(done) for done, _ in replies)

    def _forget(self, mode: str, hold_ids: Iterable[str]) -> int:
        """Run forget.lua in each hold's slot group, then drop the forgotten keys' claims in their
        users' groups ('forget' also marks the user, for retention of finished or sold holds; 'drop'
        for abandon).

        Between the two steps a forgotten key's claim still names its item, so a request with it
        goes to the item's script, which finds the user marked (retire) or the key gone (abandon).
        """
        now = self._clock()
        homes: dict[int, list[str]] = {}
        for hold_id in hold_ids:
            homes.setdefault(self.group_of_hold(hold_id), []).append(hold_id)
        gone, forgotten, missing = 0, list[Any](), list[str]()
        for group, ids in homes.items():
            count, fields, lost = self._run("forget", now, mode, *ids, group=group)
            gone, forgotten, missing = gone + int(count), forgotten + fields, missing + lost
        # Rare: a hold restored from a store written on one node sits in its item's group, not its id's.
        for group in range(len(self._prefixes)):
            if not missing or self.groups <= 1:
                break
            count, fields, missing = self._run("forget", now, mode, *missing, group=group)
            gone, forgotten = gone + int(count), forgotten + fields
        if forgotten and self.groups > 1:
            claims = [
                (int(forgotten[j + 2]), forgotten[j], 0, forgotten[j + 1])
                for j in range(0, len(forgotten), 3)
            ]
            self._claims("drop" if mode == "abandon" else "forget", claims)
        return gone

    # -- expiry --------------------------------------------------------------------------------
    def expire_due(self, limit: int = 1000) -> list[Hold]:
        expired: list[Hold] = []
        n = len(self._prefixes)
        # Each call starts at the next group, so a group with a long backlog cannot starve the others.
        first, self._expire_from = self._expire_from, (self._expire_from + 1) % n
        for group in [(first + k) % n for k in range(n)]:
            if len(expired) >= limit:
                break
            expired += [
                _hold(rec) for rec in self._run("expire", self._clock(), limit - len(expired), group=group)
            ]
        # Lazy expiry of one item can hand an expiry to the list before an earlier one of another item.
        self._back_on_sale(expired)
        return sorted(expired, key=lambda h: (h.expires_at, h.hold_id))

    def next_expiry(self) -> float | None:
        firsts = [float(first) for first in self._each_group("next_expiry") if first is not None]
        return min(firsts, default=None)

    # -- reads ---------------------------------------------------------------------------------
    def _look(self, item_id: int, user_id: str) -> list[Any] | None:
        reply = self._run(
            "look", self._clock(), item_id, user_id, group=self.group_of_request(item_id, user_id)
        )
        return None if reply[0] == ErrorCode.UNKNOWN_ITEM else reply

    def stock(self, item_id: int) -> StockLevel:
        if self.spread:
            return self.spread.stock(item_id)
        reply = self._look(item_id, "")
        if reply is None:
            raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {item_id}")
        _, quota, available, held, sold, *_ = reply
        return StockLevel(item_id, int(quota), int(available), int(held), int(sold))

    def used_by(self, item_id: int, user_id: str) -> int:
        reply = self._look(item_id, user_id)
        return 0 if reply is None else int(reply[5])

    def holds(self, item_id: int) -> list[Hold]:
        found = [
            _hold(rec)
            for group in self.groups_of_item(item_id)
            for rec in self._run("holds", self._clock(), item_id, group=group)
        ]
        return sorted(found, key=lambda h: (h.created_at, h.hold_id))

    def get_hold(self, hold_id: str) -> Hold | None:
        reply = self._settle_script(hold_id, "", "")
        return None if reply[0] == ErrorCode.UNKNOWN_HOLD else _hold(reply[1])


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
DEFAULT_GROUPS = 16  # slot groups on a Cluster: enough to spread items over a few masters


def redis_ledger_from_url(url: str, clock: Clock) -> RedisLedger:
    """Build a ledger from `redis://host:port/db?prefix=NAME&buckets=N`; other options go to redis-py.

    `redis+cluster://host:port?groups=N` (or `rediss+cluster://`) runs on a Redis Cluster, any node
    of which is named: items go to N slot groups (default DEFAULT_GROUPS), see the module docstring;
    `&spread=M` splits every item over M of them (see `flashsale.ledger.redis_spread`).
    """
    cluster = urlsplit(url).scheme in CLUSTER_SCHEMES
    ours = {"prefix": "fs", "buckets": "1", "groups": str(DEFAULT_GROUPS) if cluster else "0", "spread": "1"}
    options, parts = take_options(url, ours)
    prefix, buckets, groups = options["prefix"], int(options["buckets"]), int(options["groups"])
    spread = int(options["spread"])
    if cluster:
        if groups < 1:
            raise ValueError("a Cluster ledger needs at least one slot group (groups=N, N >= 1)")
        plain = urlunsplit(parts._replace(scheme=CLUSTER_SCHEMES[parts.scheme]))
        client = RedisCluster.from_url(
            plain,
            decode_responses=True,
            connection_pool_class=BlockingConnectionPool,  # per node: threads wait, as on one node
            max_connections=DEFAULT_CONNECTIONS,
        )
        ledger = RedisLedger(client, clock, prefix=prefix, buckets=buckets, groups=groups, spread=spread)
        if ledger.spread is not None:
            crowded = ledger.spread.crowded(ledger.master_of_group)
            if crowded:
                _log.warning(
                    "spread=%d over groups=%d: the buckets of items with id mod %d in %s share a master;"
                    " pick groups whose tags land on different masters",
                    spread,
                    groups,
                    groups,
                    sorted(crowded),
                )
        return ledger
    if groups or spread > 1:
        raise ValueError("slot groups and spread items are for a Cluster: use redis+cluster://host:port")
    return RedisLedger(node_client(parts), clock, prefix=prefix, buckets=buckets)
