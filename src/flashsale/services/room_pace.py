"""The pace of a waiting room's polls: a ticket that asks again before its `poll_after_s` hears 429.

Every poll answer tells the page when to ask again (`domain.admission.poll_after_s`); a client that
polls faster learns nothing new and costs the buyers' event loop. So each ticket keeps the time its
last answer named, and a poll before it is refused with RATE_LIMITED and `Retry-After` (the seconds
left) before the line or the ledger is read: one dict look-up in process, one script call in Redis.

A poll first claims its ticket (no other poll of it passes for `CLAIM_S` while it is answered),
then sets the time its answer names, so a burst of concurrent polls of one ticket is answered once.
Times are the sale's clock, as the room's are. The pace lives where the line lives: in process on
the embedded default, in the ledger's Redis in scale-out (one hash per room, beside its line), so
it holds across every worker.
"""

from __future__ import annotations

import threading
from typing import Protocol

from redis import Redis

from flashsale.domain.errors import ErrorCode, FlashSaleError

CLAIM_S = 1.0  # while a poll is being answered; its answer then sets the real time


class PollPace(Protocol):
    """When each ticket (item, shopper) may poll again; atomic per ticket."""

    def claim(self, item_id: int, shopper: str, now: float) -> float | None:
        """Claim the ticket's next poll: None if it may poll now, else the seconds it must wait."""
        ...

    def next_at(self, item_id: int, shopper: str, at: float) -> None:
        """Record when the ticket may poll again (`at` may be now: at once)."""
        ...


class MemoryPollPace:
    """The pace in process (the embedded default): one dict under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[tuple[int, str], float] = {}

    def claim(self, item_id: int, shopper: str, now: float) -> float | None:
        key = (item_id, shopper)
        with self._lock:
            at = self._next.get(key)
            if at is not None and now < at:
                return at - now
            self._next[key] = now + CLAIM_S
            return None

    def next_at(self, item_id: int, shopper: str, at: float) -> None:
        with self._lock:
            self._next[(item_id, shopper)] = at


# KEYS[1] the room's pace hash; ARGV: shopper, now, claim seconds. Returns the wait, or false.
_CLAIM = """
local at = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
local now = tonumber(ARGV[2])
if at and now < at then return tostring(at - now) end
redis.call('HSET', KEYS[1], ARGV[1], tostring(now + tonumber(ARGV[3])))
return false
"""


class RedisPollPace:
    """The pace in the ledger's Redis: a hash per room (same slot as its line), a field per shopper."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._claim = client.register_script(_CLAIM)

    def _key(self, item_id: int) -> str:
        return f"{self._prefix}:{{wr:{item_id}}}:pace"

    def claim(self, item_id: int, shopper: str, now: float) -> float | None:
        wait = self._claim(keys=[self._key(item_id)], args=[shopper, repr(now), repr(CLAIM_S)])
        return None if wait is None else float(wait)

    def next_at(self, item_id: int, shopper: str, at: float) -> None:
        self._client.hset(self._key(item_id), shopper, repr(at))


def too_soon(wait_s: float) -> FlashSaleError:
    """The refusal of a poll that came `wait_s` seconds before its ticket may ask again."""
    return FlashSaleError(
        ErrorCode.RATE_LIMITED,
        "polled before the time the last answer named (poll_after_s): ask again later",
        retry_after_s=wait_s,
    )
