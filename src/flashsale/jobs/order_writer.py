"""The order writer: moves accepted purchases from the ledger's Redis Stream into the database.

Exactly one order per accepted purchase: entries are read through a consumer group, written in
batches with insert-or-ignore on the order id, and acknowledged only after the commit. Entries a
crashed writer had read but not acknowledged are claimed after `claim_idle_ms` and written again
(harmlessly). An entry that cannot be parsed goes to a dead-letter stream instead of blocking.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from redis import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from flashsale.domain.holds import Hold, HoldState
from flashsale.services.orders import OrderService, store_placed

log = logging.getLogger(__name__)

Entry = tuple[str, Mapping[str, str]]
# XREADGROUP's answer under RESP2 with decode_responses (the ledger's client): per stream, its entries.
StreamBatches = list[tuple[str, list[Entry]]]


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


@dataclass
class WriterStats:
    written: int = 0
    duplicates: int = 0
    claimed: int = 0
    dead_lettered: int = 0


class OrderWriter:
    """One consumer of the purchase stream; run several (any process) for more throughput."""

    def __init__(
        self,
        orders: OrderService,
        redis: Redis,
        stream: str,
        *,
        group: str = "order-writers",
        consumer: str | None = None,
        batch: int = 500,
        block_ms: int = 200,
        claim_idle_ms: int = 30_000,
    ) -> None:
        self.orders = orders
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.stats = WriterStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._recheck_own = True  # a writer of the same name may have died holding entries
        self._ensure_group()

    def start(self) -> None:
        """Run in a daemon thread until `stop()`."""
        self._thread = threading.Thread(
            target=self.run_forever, args=(self._stop,), name="flashsale-writer", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run_once(self, *, block: bool = True) -> int:
        """Claim stale entries, read new ones, write them in one transaction, then ack; return how many."""
        entries = self._claim_stale()
        self.stats.claimed += len(entries)
        if self._recheck_own:
            # Entries this consumer read before a failed pass are redelivered only by asking for "0".
            own = self._read("0", block=False)
            self._recheck_own = bool(own)
            entries += own
        if len(entries) < self.batch:
            entries += self._read(">", block)
        if entries:
            self._write(entries)
        return len(entries)

    def drain(self) -> int:
        """Write everything currently readable (new and stale-pending), without blocking."""
        total = 0
        while n := self.run_once(block=False):
            total += n
        return total

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # the next pass retries; unacked entries stay pending, nothing is lost
                log.exception("order writer pass failed")
                self._recheck_own = True
                stop.wait(1.0)

    def _claim_stale(self) -> list[Entry]:
        _next, claimed, *_ = self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id="0-0",
            count=self.batch,
        )
        return [(entry_id, fields) for entry_id, fields in claimed if fields]

    def _read(self, start: str, block: bool) -> list[Entry]:
        """Read new entries (">") or this consumer's own unacknowledged ones ("0")."""
        answer = cast(
            "StreamBatches | None",
            self.redis.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: start},
                count=self.batch,
                block=self.block_ms if block else None,
            ),
        )
        return [(entry_id, fields) for _stream, batch in answer or () for entry_id, fields in batch]

    def _write(self, entries: Sequence[Entry]) -> None:
        orders, bad = [], []
        for entry_id, fields in entries:
            try:
                orders.append(self.orders.priced(hold_of_entry(fields)))
            except (KeyError, ValueError) as exc:
                log.error("dead-lettering purchase entry %s: %s", entry_id, exc)
                bad.append((entry_id, fields))
        deps = self.orders.deps
        with deps.uow() as uow:
            new_ids = store_placed(uow, orders)
            deps.commit(uow)  # ack only after this commit: a crash before it means redelivery
        for entry_id, fields in bad:
            dead: dict[FieldT, EncodableT] = dict(fields.items())
            dead["entry_id"] = entry_id
            self.redis.xadd(f"{self.stream}:dead", dead)
        self.redis.xack(self.stream, self.group, *[entry_id for entry_id, _ in entries])
        self.stats.written += len(new_ids)
        self.stats.duplicates += len(orders) - len(new_ids)
        self.stats.dead_lettered += len(bad)
