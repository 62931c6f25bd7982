"""Batching for async callers: what arrives while a batch is being decided waits for the next one.

A purchase or a payment blocks (the ledger's decision, then a commit on the embedded default or a
Redis round trip), so it cannot run on the event loop; and a thread hop or a commit per request
costs more than the decision itself. So requests are batched: those that arrive while a batch is
being decided queue up, and the next batch runs as one `run_many` call in one thread hop, in
arrival order, as if they had been decided one after another. On the embedded default that is
group commit: one transaction (one fsync) records the whole batch, and each request is answered
after it. One batch runs at a time per batcher, so the store gets one writer per kind of request
instead of a pool contending for its lock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

C = TypeVar("C")  # a request
R = TypeVar("R")  # its answer


class Batcher(Generic[C, R]):
    """Run requests for async callers through `run_many` in batches; one event loop at a time.

    `run_many` answers each request of a batch in order, with its result or the exception that
    refused it (raised to that caller alone).
    """

    def __init__(
        self, run_many: Callable[[Sequence[C]], Sequence[R | Exception]], *, max_batch: int = 64
    ) -> None:
        if max_batch < 1:
            raise ValueError("a batch holds at least one request")
        self._run_many = run_many
        self._max_batch = max_batch
        self._queue: deque[tuple[C, asyncio.Future[R]]] = deque()
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, request: C) -> R:
        """Run the request in a batch with whatever else is waiting; return its answer, or raise."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[R] = loop.create_future()
        self._queue.append((request, answer))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        try:
            return await answer
        finally:
            # A refusal raised here holds this frame in its traceback, and the frame holds the future
            # that holds the refusal: without this, every refused request would be a reference
            # cycle, and its whole request (frames, headers, response) garbage for the collector.
            del answer

    async def _drain(self) -> None:
        batch: list[tuple[C, asyncio.Future[R]]] = []
        try:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
                outcomes = await asyncio.to_thread(self._run_many, [request for request, _ in batch])
                for (_, answer), outcome in zip(batch, outcomes, strict=True):
                    if answer.done():  # the caller went away; what was done stands, a retry replays it
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
