"""Clocks: the type every component takes, and a manual clock for tests and the simulated demo crowd.

The real clock is `time.time`; `flashsale.bootstrap.build` injects it unless told otherwise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Returns the platform's current time in epoch seconds: `time.time`, or a `ManualClock` in tests and the demo.
Clock = Callable[[], float]


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
