"""The order writer: moves accepted purchases from the ledger's Redis Stream into the database.

Exactly one order per accepted purchase: entries are read through a consumer group, written in
batches with insert-or-ignore on the order id, and acknowledged only after the commit. Entries a
crashed writer had read but not acknowledged are claimed after `claim_idle_ms` and written again
(harmlessly). An entry that cannot be parsed goes to a dead-letter stream instead of blocking.

Staying up: a stream or group that vanished (Redis restarted empty, FLUSHALL, a failover to an
empty replica) is created again from the stream's start, so no purchase appended afterwards is
missed; any other failure (Redis or the database unreachable) is retried with a bounded backoff.

Lost writes: each entry carries the ledger's sequence of its book (`seq`: of its item, or of its
bucket `part` of a spread item, see `flashsale.ledger.contract.BookId`); the writer raises the
book's mark in the database (`ledger_marks`) in the transaction that stores the orders, and at
every upkeep hands every mark to this process's ledger (`Ledger.expect`). A Redis that comes back
with a lower sequence (a stale AOF, a lagging replica) then refuses to sell from that book
(LEDGER_BEHIND) in every process, including ones that never saw the lost grants, until repaired.
A Redis that went back and granted as many times again passes through the mark's sequence with
another order: the writer sees an entry at exactly the mark's sequence whose order is not the
mark's, and calls the process's repair hook (`Refusals.lost_writes`). (Below the mark is no
sign: another writer may have stored later entries first.)

Several streams: on a Redis Cluster the ledger appends to one stream per slot group, and a writer
reads them all (one group of the same name on each): it claims and reads every stream without
waiting, writes what it found in one transaction and acknowledges each stream's entries there;
with nothing anywhere it waits on one stream at a time, in turn (XREADGROUP cannot wait on streams
of several slots), so an entry of another stream waits at most `block_ms` longer.

Staying small: every `upkeep_every` passes a writer trims the stream to what every consumer group
has acknowledged and forgets consumers of its group that have been idle `forget_idle_ms` with
nothing pending (one per writer process that ever ran). Both happen in one script (`_UPKEEP`), so
no read or claim can slip between the check and the change; several writers may run it at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import cast

from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT
from sqlalchemy.orm import Session

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold, HoldState
from flashsale.ledger.contract import BookId
from flashsale.services.orders import OrderService, store_placed
from flashsale.store import repositories as repo

log = logging.getLogger(__name__)

Entry = tuple[str, Mapping[str, str]]
# XREADGROUP's answer under RESP2 with decode_responses (the ledger's client): per stream, its entries.
StreamBatches = list[tuple[str, list[Entry]]]

# Errors of a read or claim on a stream or group that no longer exists. UNBLOCKED: the stream was
# deleted while a blocking XREADGROUP waited on it (Redis 7.0+).
_VANISHED = ("NOGROUP", "UNBLOCKED")
MIN_BACKOFF_S, MAX_BACKOFF_S = 0.1, 5.0

# KEYS[1] the stream; ARGV: our group, our consumer, forget_idle_ms. Returns {trimmed, forgotten...}.
# An entry is unacknowledged by a group when it is pending there or after the group's last delivered
# id, so the stream is trimmed below the smallest of those bounds over all groups: the first pending
# id, else the last delivered one (that acknowledged entry is kept; it saves comparing past it).
# Ids are compared as decimal strings (no leading zeros), exactly, not as Lua doubles. A consumer
# with nothing pending owns nothing, so forgetting it loses nothing; a live one that reads again is
# recreated by that read. allow-oom: trimming must run when a stream has filled the memory.
_UPKEEP = """#!lua flags=allow-oom
local function fields(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
local function less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function before(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if ams ~= bms then return less(ams, bms) end
  return less(aseq, bseq)
end
local stream, ours, me, forget_ms = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', stream) == 0 then return {0} end
local floor
local answer = {0}
for _, flat in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local group = fields(flat)
  local low = group['last-delivered-id']
  if group['pending'] > 0 then low = redis.call('XPENDING', stream, group['name'])[2] end
  if floor == nil or before(low, floor) then floor = low end
  if group['name'] == ours then
    for _, cflat in ipairs(redis.call('XINFO', 'CONSUMERS', stream, ours)) do
      local consumer = fields(cflat)
      if consumer['pending'] == 0 and consumer['idle'] >= forget_ms and consumer['name'] ~= me then
        redis.call('XGROUP', 'DELCONSUMER', stream, ours, consumer['name'])
        answer[#answer + 1] = consumer['name']
      end
    end
  end
end
if floor then answer[1] = redis.call('XTRIM', stream, 'MINID', floor) end
return answer
"""


def hold_of_entry(fields: Mapping[str, str]) -> Hold:
    """Parse one purchase-stream entry (written by the reserve script) into the hold it granted."""
    return Hold(
        hold_id=fields["hold_id"],
        item_id=int(fields["item_id"]),
        user_id=fields["user_id"],
        qty=int(fields["qty"]),
        request_id=fields["request_id"],
        created_at=float(fields["created_at"]),
        expires_at=float(fields["expires_at"]),
        state=HoldState.HELD,
    )


def backoff_s(failures: int) -> float:
    """The wait after `failures` (>= 1) failed passes in a row: 0.1 s doubling up to 5 s.

    The exponent is capped, so a long outage never makes the float overflow.
    """
    return min(MAX_BACKOFF_S, MIN_BACKOFF_S * 2.0 ** min(failures - 1, 16))


@dataclass
class WriterStats:
    """What one writer did since it was made (for logs, tests and the CLI's summary)."""

    written: int = 0
    duplicates: int = 0
    claimed: int = 0
    dead_lettered: int = 0
    recreated: int = 0  # times the stream or group had vanished and the group was created again
    trimmed: int = 0  # stream entries trimmed (acknowledged by every group)
    forgotten: int = 0  # idle consumers removed from the group


class OrderWriter:
    """One consumer of the purchase stream; run several (any process) for more throughput."""

    def __init__(
        self,
        orders: OrderService,
        redis: Redis | RedisCluster,
        stream: str | Sequence[str],
        *,
        group: str = "order-writers",
        consumer: str | None = None,
        batch: int = 500,
        block_ms: int = 200,
        claim_idle_ms: int = 30_000,
        upkeep_every: int = 10,
        forget_idle_ms: int = 600_000,
        linger_s: float = 0.05,
    ) -> None:
        self.orders = orders
        self.redis = redis
        self.streams = (stream,) if isinstance(stream, str) else tuple(stream)
        self.stream = self.streams[0]
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        # Passes, not seconds: an idle pass blocks for block_ms, so upkeep runs every
        # upkeep_every * block_ms when idle and every upkeep_every batches under load.
        self.upkeep_every = upkeep_every
        self.forget_idle_ms = forget_idle_ms
        # After a part batch, wait this long before the next pass (see run_forever).
        self.linger_s = linger_s
        self.stats = WriterStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._recheck_own = True  # a writer of the same name may have died holding entries
        # XAUTOCLAIM's cursor per stream: a long pending list is scanned a batch at a time
        self._claim_from = dict.fromkeys(self.streams, "0-0")
        self._passes = 0
        self._upkeep = redis.register_script(_UPKEEP)
        for key in self.streams:
            self._ensure_group(key)

    def start(self) -> None:
        """Run in a daemon thread until `stop()`."""
        self._thread = threading.Thread(
            target=self.run_forever, args=(self._stop,), name="flashsale-writer", daemon=True
        )
        self._thread.start()

    @property
    def running(self) -> bool:
        """True while the thread started by `start()` runs (a health check; it ends only by `stop()`)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Ask the thread started by `start()` to finish its pass, and wait for it (up to 5 s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _ensure_group(self, stream: str) -> None:
        """Create the group (and the stream) unless it exists; from "0": nothing appended is skipped."""
        try:
            self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run_once(self, *, block: bool = True) -> int:
        """Claim stale entries, read new ones, write them in one transaction, then ack; return how many.

        Every stream is asked; with nothing anywhere, the pass waits on one of them (see the module doc).

        Every `upkeep_every` passes, trim the stream and forget dead consumers afterwards (`upkeep`).
        """
        recheck, own_left = self._recheck_own, False
        one = len(self.streams) == 1
        taken: dict[str, list[Entry]] = {}
        for stream in self.streams:
            entries = self._from_group(stream, partial(self._claim_stale, stream))
            self.stats.claimed += len(entries)
            if recheck:
                # Entries this consumer read before a failed pass are redelivered only by asking for "0".
                own = self._from_group(stream, partial(self._read, stream, "0", False))
                own_left |= bool(own)
                entries += own
            if len(entries) < self.batch:
                # Block only with empty hands: claimed entries are written now, not after block_ms.
                wait = block and one and not entries
                entries += self._from_group(stream, partial(self._read, stream, ">", wait))
            taken[stream] = entries
        if recheck:  # only once every stream was asked: a failed pass asks them all again
            self._recheck_own = own_left
        if block and not one and not any(taken.values()):
            stream = self.streams[self._passes % len(self.streams)]  # wait on one stream, in turn
            taken[stream] = self._from_group(stream, partial(self._read, stream, ">", True))
        if any(taken.values()):
            self._write(taken)
        count = sum(len(entries) for entries in taken.values())
        self._passes += 1
        if self._passes % self.upkeep_every == 0:
            self.upkeep()
            self.share_marks()
        return count

    def drain(self) -> int:
        """Write everything currently readable (new and stale-pending), without blocking."""
        total = 0
        while n := self.run_once(block=False):
            total += n
        return total

    def run_forever(self, stop: threading.Event) -> None:
        """Run passes until `stop` is set; a failed pass is retried after a bounded backoff.

        Nothing is lost by a failure: unacknowledged entries stay pending and the next pass takes
        them again. The first failure of a run of them is logged with its traceback, the recovery
        once more; the retries in between are not, so an outage does not flood the log.
        """
        failures = 0
        while not stop.is_set():
            try:
                written = self.run_once()
            except Exception:
                failures += 1
                self._recheck_own = True
                if failures == 1:
                    log.exception("order writer pass failed; retrying with backoff up to %s s", MAX_BACKOFF_S)
                stop.wait(backoff_s(failures))
                continue
            if failures:
                log.warning("order writer resumed after %d failed passes", failures)
                failures = 0
            if 0 < written < self.batch:
                # A part batch: let purchases gather a moment, so a busy stream is written in fewer,
                # larger transactions (the marks' read and write and the commit cost per batch, not
                # per order); the orders land a little later behind their answers, as they do anyway.
                stop.wait(self.linger_s)

    def upkeep(self) -> int:
        """Trim the stream to what every group acknowledged, forget dead consumers; return how many trimmed.

        Safe to run from any number of writers at once: it is one script, and trimming by MINID only
        ever moves the stream's start forward. Consumers of this writer's group idle for
        `forget_idle_ms` with nothing pending are removed; one that died holding entries keeps them
        until a live writer claimed them (after `claim_idle_ms`), and is removed on a later upkeep.
        """
        total = 0
        for stream in self.streams:
            trimmed, *forgotten = self._upkeep(
                keys=[stream], args=[self.group, self.consumer, self.forget_idle_ms]
            )
            if forgotten:
                log.info("forgot idle consumers of %s/%s: %s", stream, self.group, ", ".join(forgotten))
            total += int(trimmed)
            self.stats.forgotten += len(forgotten)
        self.stats.trimmed += total
        return total

    def share_marks(self) -> dict[BookId, int]:
        """Hand the database's high-water marks to this process's ledger as floors; return them.

        One small read: so a process learns of grants other processes' writers stored, and its
        ledger refuses to sell from a Redis book that lost them. An item with a book whose sequence
        in the ledger is below its mark starts the repair now, before a shopper meets it (one look
        per item; a mark of a bucket the ledger does not have, from another layout, is no sign).
        """
        deps = self.orders.deps
        with deps.read() as r:
            marks = repo.ledger_marks(r.db)
        deps.ledger.expect(marks)
        by_item: dict[int, dict[int, int]] = {}
        for (item_id, bucket), mark in marks.items():
            by_item.setdefault(item_id, {})[bucket] = mark
        for item_id, item_marks in sorted(by_item.items()):
            try:
                seqs = deps.ledger.sequences(item_id)
            except FlashSaleError as exc:
                if exc.code is not ErrorCode.UNKNOWN_ITEM:
                    raise
                continue  # an emptied ledger: the purchase path rebuilds it (services/fence.py)
            if any(b < len(seqs) and seqs[b] < mark for b, mark in item_marks.items()):
                self.orders.refusals.lost_writes(item_id)
                break  # one repair covers every item
        return marks

    def _from_group(self, stream: str, read: Callable[[], list[Entry]]) -> list[Entry]:
        """Run a read or claim; if the stream or group vanished, create the group again and retry once.

        From "0", because the ledger may already have appended purchases to a new stream. A second
        vanishing in a row propagates to the caller's backoff rather than spinning here.
        """
        try:
            return read()
        except ResponseError as exc:
            if not str(exc).startswith(_VANISHED):
                raise
            log.warning(
                "purchase stream %s or its group %s vanished (%s): Redis restarted empty, was flushed or "
                "failed over; creating the group again from the stream's start",
                stream,
                self.group,
                exc,
            )
        self._ensure_group(stream)
        self._claim_from[stream] = "0-0"
        self.stats.recreated += 1
        return read()

    def _claim_stale(self, stream: str) -> list[Entry]:
        self._claim_from[stream], claimed, *_ = self.redis.xautoclaim(
            stream,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id=self._claim_from[stream],
            count=self.batch,
        )
        return [(entry_id, fields) for entry_id, fields in claimed if fields]

    def _read(self, stream: str, start: str, block: bool) -> list[Entry]:
        """Read new entries (">") or this consumer's own unacknowledged ones ("0")."""
        answer = cast(
            "StreamBatches | None",
            self.redis.xreadgroup(
                self.group,
                self.consumer,
                {stream: start},
                count=self.batch,
                block=self.block_ms if block else None,
            ),
        )
        return [(entry_id, fields) for _stream, batch in answer or () for entry_id, fields in batch]

    def _write(self, taken: Mapping[str, Sequence[Entry]]) -> None:
        """Store the entries of every stream in one transaction, then dead-letter and ack per stream."""
        orders, bad = [], []
        seqs: dict[str, tuple[BookId, int]] = {}  # order id -> (its book, the book's sequence of its grant)
        for stream, entry_id, fields in ((s, i, f) for s, entries in taken.items() for i, f in entries):
            try:
                orders.append(self.orders.priced(hold_of_entry(fields)))
                if "seq" in fields:  # entries appended before sequences existed carry none
                    book = int(fields["item_id"]), int(fields.get("part", 0))
                    seqs[fields["hold_id"]] = book, int(fields["seq"])
            except (KeyError, ValueError) as exc:
                log.error("dead-lettering purchase entry %s: %s", entry_id, exc)
                bad.append((stream, entry_id, fields))
        deps = self.orders.deps
        marks: dict[BookId, tuple[int, str]] = {}  # book -> (the highest sequence here, its order)
        for order_id, (book, seq) in seqs.items():
            if seq > marks.get(book, (0, ""))[0]:
                marks[book] = seq, order_id
        with deps.uow() as uow:
            forked = _forked(uow.db, seqs)
            new_ids = store_placed(uow, orders)
            repo.raise_ledger_marks(uow.db, marks)
            deps.commit(uow)  # ack only after this commit: a crash before it means redelivery
        for item_id in sorted({seqs[order_id][0][0] for order_id in forked}):
            self.orders.refusals.lost_writes(item_id)
        for stream, entry_id, fields in bad:
            dead: dict[FieldT, EncodableT] = dict(fields.items())
            dead["entry_id"] = entry_id
            self.redis.xadd(f"{stream}:dead", dead)  # the stream's own slot: its name holds the tag
        for stream, entries in taken.items():
            if entries:
                self.redis.xack(stream, self.group, *[entry_id for entry_id, _ in entries])
        self.stats.written += len(new_ids)
        self.stats.duplicates += len(orders) - len(new_ids)
        self.stats.dead_lettered += len(bad)


def _forked(db: Session, seqs: Mapping[str, tuple[BookId, int]]) -> list[str]:
    """Orders granted at exactly a book's mark, which another order holds: a ledger that went back.

    Each sequence is granted once in one history, so a second order at it is a second history.
    A redelivered entry of the mark's own order is no sign, nor is one below the mark (writers
    store entries out of order).
    """
    marks = repo.ledger_mark_orders(db)
    return [
        order_id
        for order_id, (book, seq) in seqs.items()
        if book in marks and marks[book][0] == seq and marks[book][1] != order_id
    ]
