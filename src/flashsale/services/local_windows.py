"""The rate limits' sliding window counters in this process's memory (the embedded default's).

The same arithmetic as the `limits` library's sliding window counter on its MemoryStorage
(tests/unit/test_local_windows.py replays random hits through both and compares every answer),
kept in one dict: a hit is a lookup under a lock. Through MemoryStorage it cost about 9 µs (keys
built as strings, expiry timers, error-wrapping decorators), two per purchase: enough that turning
rate limits on cost the embedded buy path more than a tenth of its rate. In Redis the counters stay
with `limits` (shared by every worker).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from math import floor, inf

from limits import RateLimitItem

SWEEP_EVERY_S = 60.0  # how often counters of windows past are dropped (a shopper seen once goes)

Key = tuple[tuple[str, ...], int, int]  # (identifiers, amount, window seconds)


class LocalWindows:
    """`hit` and `get_window_stats` as `limits`' SlidingWindowCounterRateLimiter answers them."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # per key: [its window's number, the count in it, the count in the window before it]
        self._counts: dict[Key, list[int]] = {}
        self._swept_at = clock()

    def hit(self, limit: RateLimitItem, *identifiers: str) -> bool:
        """Count one hit if the weighted count leaves room for it; whether it was counted."""
        expiry = limit.get_expiry()
        now = self._clock()
        with self._lock:
            counts = self._window(limit, identifiers, expiry, now)
            if floor(_weighted(counts, expiry, now)) + 1 > limit.amount:
                return False
            counts[1] += 1
            if now - self._swept_at >= SWEEP_EVERY_S:
                self._sweep(now)
            return True

    def get_window_stats(self, limit: RateLimitItem, *identifiers: str) -> tuple[float, int]:
        """(when a hit may next be counted, hits left now), as `limits` computes them."""
        expiry = limit.get_expiry()
        now = self._clock()
        with self._lock:
            counts = self._window(limit, identifiers, expiry, now)
            _, current, previous = counts
            remaining = max(0, limit.amount - floor(_weighted(counts, expiry, now)))
            if not (previous or current):
                return now, remaining
            previous_reset_in = (
                _previous_ttl(previous, expiry, now) % (expiry / previous) if previous else inf
            )
            current_reset_in = ((1 - ((now / expiry) % 1)) * expiry + expiry) % expiry if current else inf
            return now + min(previous_reset_in, current_reset_in), remaining

    def _window(
        self, limit: RateLimitItem, identifiers: tuple[str, ...], expiry: int, now: float
    ) -> list[int]:
        """The key's counts, moved on to now's window (the last one's count becomes the previous)."""
        number = int(now / expiry)
        key = (identifiers, limit.amount, expiry)
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [number, 0, 0]
        elif counts[0] != number:
            counts[2] = counts[1] if counts[0] == number - 1 else 0
            counts[0], counts[1] = number, 0
        return counts

    def _sweep(self, now: float) -> None:
        """Drop the counters whose windows are both past: they count nothing any more."""
        self._counts = {
            key: counts for key, counts in self._counts.items() if counts[0] >= int(now / key[2]) - 1
        }
        self._swept_at = now


def _previous_ttl(previous: int, expiry: int, now: float) -> float:
    """How long the previous window still weighs (0 when it counted nothing), as `limits` has it."""
    return 0.0 if previous == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry


def _weighted(counts: list[int], expiry: int, now: float) -> float:
    _, current, previous = counts
    return previous * _previous_ttl(previous, expiry, now) / expiry + current
