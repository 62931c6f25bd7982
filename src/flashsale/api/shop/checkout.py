"""Checkout: hands purchases from the event loop to the order service with as few thread hops as it can.

A purchase blocks (a Redis round trip, a database commit), so it cannot run on the event loop; but
a thread-pool hop per request costs more than the decision itself. With write-behind (the shared
Redis ledger), finishing a purchase is one ledger decision plus a price from cache, so purchases
are batched: those that arrive while a batch is being decided queue up, and the next batch decides
them all with one `reserve_many` (one script call) in one thread hop, in arrival order, as if they
had been decided one after another. Without write-behind each purchase also commits its order
row, so each goes to the thread pool on its own, where concurrent commits overlap.
"""

from __future__ import annotations

import asyncio
from collections import deque

from starlette.concurrency import run_in_threadpool

from flashsale.services.orders import Buy, OrderService, Purchase

Answer = asyncio.Future[Purchase]


class Checkout:
    """Buy on behalf of HTTP requests; see the module docstring. Used from one event loop at a time."""

    def __init__(self, orders: OrderService, *, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("a batch holds at least one purchase")
        self._orders = orders
        self._max_batch = max_batch
        self._queue: deque[tuple[Buy, Answer]] = deque()
        self._drainer: asyncio.Task[None] | None = None

    async def buy(self, cmd: Buy) -> Purchase:
        """Reserve and record as `OrderService.buy` does, possibly in one batch with other requests."""
        if not self._orders.write_behind:
            return await run_in_threadpool(self._orders.buy, cmd)
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
                outcomes = await run_in_threadpool(self._decide, [cmd for cmd, _ in batch])
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

    def _decide(self, cmds: list[Buy]) -> list[Purchase | Exception]:
        """Decide a batch in one ledger call, then finish each purchase; runs in a worker thread."""
        requests = [(c.item_id, c.user_id, c.qty, c.request_id) for c in cmds]
        try:
            decisions = self._orders.deps.ledger.reserve_many(requests)
        except Exception as exc:  # a retry with the same Idempotency-Key replays what was decided
            return [exc] * len(cmds)
        outcomes: list[Purchase | Exception] = []
        for cmd, decision in zip(cmds, decisions, strict=True):
            try:
                outcomes.append(self._orders.complete(cmd, decision))
            except Exception as exc:  # a refusal (FlashSaleError) or a failure of this purchase alone
                outcomes.append(exc)
        return outcomes
