"""Clocks: the real one, and a manual one for tests and the simulated demo crowd."""

from __future__ import annotations

import threading
import time


def system_clock() -> float:
    """Return epoch seconds from the wall clock."""
    return time.time()


class ManualClock:
    """A clock that only moves when told to; thread-safe, callable like `time.time`."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, moment: float) -> None:
        with self._lock:
            self._now = moment
