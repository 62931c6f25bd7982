"""Checkout: the buy path's batching, between callers on an event loop and `OrderService.buy_many`.

A purchase blocks (the ledger's decision, then a commit on the embedded default or a Redis round
trip), so it cannot run on the event loop; and a thread hop or a commit per purchase costs more
than the decision itself. So purchases are batched: those that arrive while a batch is being
decided queue up, and the next batch is decided by one `buy_many` in one thread hop, in arrival
order, as if they had been decided one after another. On the embedded default that is group
commit: one transaction (one fsync) records the whole batch, and each purchase is answered after
it. One batch runs at a time, so the store has one writer instead of a pool contending for its lock.
"""

from __future__ import annotations

import asyncio
from collections import deque

from flashsale.services.orders import Buy, OrderService, Purchase

Answer = asyncio.Future[Purchase]


class Checkout:
    """Buy for async callers (HTTP routes, the demo crowd); one event loop at a time. See the module doc."""

    def __init__(self, orders: OrderService, *, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("a batch holds at least one purchase")
        self._orders = orders
        self._max_batch = max_batch
        self._queue: deque[tuple[Buy, Answer]] = deque()
        self._drainer: asyncio.Task[None] | None = None

    async def buy(self, cmd: Buy) -> Purchase:
        """Reserve and record as `OrderService.buy` does, in one batch with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        answer: Answer = loop.create_future()
        self._queue.append((cmd, answer))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        batch: list[tuple[Buy, Answer]] = []
        try:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
                outcomes = await asyncio.to_thread(self._orders.buy_many, [cmd for cmd, _ in batch])
                for (_, answer), outcome in zip(batch, outcomes, strict=True):
                    if answer.done():  # the client went away; its purchase stands, a retry replays it
                        continue
                    if isinstance(outcome, Exception):
                        answer.set_exception(outcome)
                    else:
                        answer.set_result(outcome)
                batch = []
        finally:
            self._drainer = None
            # Only when the drain itself is cancelled (the loop shuts down): nobody may wait forever.
            for _, answer in (*batch, *self._queue):
                answer.cancel()
            self._queue.clear()
