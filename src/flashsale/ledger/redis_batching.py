"""Group commit for one hot item: concurrent `reserve` calls ride together in one `reserve_many`.

Made for the Redis ledger, where a round trip and a script call cost far more than one decision
inside the script; it works over any engine with `reserve_many`.
"""

from __future__ import annotations

import threading
from collections import deque

from flashsale.ledger.contract import Decision, Ledger, Reservation


class _Call:
    """One waiting `reserve`, woken once: when it is answered or made the lane's leader."""

    __slots__ = ("decision", "error", "leads", "request", "signal")

    def __init__(self, request: Reservation) -> None:
        self.request = request
        self.decision: Decision | None = None
        self.error: BaseException | None = None
        self.leads = False
        # A lock taken at birth is a one-shot wake-up, much cheaper than an Event per caller.
        self.signal = threading.Lock()
        self.signal.acquire()

    def wait(self) -> None:
        self.signal.acquire()

    def wake(self) -> None:
        self.signal.release()


class _Lane:
    """The queue of one item; `busy` while a leader owns it."""

    __slots__ = ("busy", "cond", "queue")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.queue: deque[_Call] = deque()
        self.busy = False


class BatchingReserver:
    """Coalesce concurrent `reserve` calls per item into `reserve_many` calls of at most `max_batch`.

    The first caller of an idle item leads: it lingers up to `linger_s` for more callers (less when
    `max_batch` of them are queued), sends the queue's head as one batch, hands every caller its
    Decision, and makes the next queued caller the leader. One batch per item is in flight at a
    time, so each caller gets exactly the answer the calls would get one after another in queue
    order. If the batch call fails, every caller in it sees the same exception, and a retry with
    the same request id is safe (idempotency).

    The default `linger_s=0` batches what queued up while the previous batch was in flight: no
    wait when there is no crowd, full batches when there is one. A linger only helps when callers
    trickle in; with thousands of threads a lingering leader waits for the GIL, not for callers.
    """

    def __init__(self, ledger: Ledger, *, max_batch: int = 64, linger_s: float = 0.0) -> None:
        if max_batch < 1:
            raise ValueError("a batch holds at least one request")
        self.ledger = ledger
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._lanes: dict[int, _Lane] = {}

    def reserve(self, *, item_id: int, user_id: str, qty: int, request_id: str) -> Decision:
        """Reserve as `Ledger.reserve` does, possibly in one batch with other threads' calls."""
        lane = self._lanes.get(item_id) or self._lanes.setdefault(item_id, _Lane())
        call = _Call(Reservation(item_id, user_id, qty, request_id))
        with lane.cond:
            lane.queue.append(call)
            if not lane.busy:
                lane.busy = call.leads = True
            elif len(lane.queue) >= self.max_batch:
                lane.cond.notify()  # a full batch: the lingering leader need not wait longer
        if not call.leads:
            call.wait()
        if call.leads:  # from the start, or handed over by the previous leader
            self._lead(lane)
        if call.error is not None:
            raise call.error
        assert call.decision is not None
        return call.decision

    def _lead(self, lane: _Lane) -> None:
        with lane.cond:
            if self.linger_s > 0:
                lane.cond.wait_for(lambda: len(lane.queue) >= self.max_batch, timeout=self.linger_s)
            batch = [lane.queue.popleft() for _ in range(min(self.max_batch, len(lane.queue)))]
        try:
            decisions = self.ledger.reserve_many([c.request for c in batch])
            for call, decision in zip(batch, decisions, strict=True):
                call.decision = decision
        except BaseException as exc:  # every caller of the batch must wake up and learn why
            for call in batch:
                call.error = exc
        finally:
            with lane.cond:
                if lane.queue:
                    successor = lane.queue[0]
                    successor.leads = True
                    successor.wake()
                else:
                    lane.busy = False
            for call in batch:
                call.wake()
