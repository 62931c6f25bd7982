"""A job that runs one step every so often on a daemon thread of each serving process: the draw
scheduler, the ledger's retention. A failing step is logged and tried again at the next pass: a
database or Redis blip must not kill the job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicJob:
    """Call `step` every `interval_s` seconds (real time) until stopped.

    `step` returns how much it did (0: nothing), which `done` adds up. With `at_start` the first
    pass runs at once; else after the first interval (when nothing can be due yet).
    """

    def __init__(self, name: str, step: Callable[[], int], *, interval_s: float, at_start: bool) -> None:
        self._step = step
        self._interval_s = interval_s
        self._at_start = at_start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"flashsale-{name}", daemon=True)
        self.name = name
        self.done = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        if not self._at_start and self._stop.wait(self._interval_s):
            return
        while not self._stop.is_set():
            try:
                self.done += self._step()
            except Exception:
                log.exception("%s failed; the next pass tries again", self.name)
            self._stop.wait(self._interval_s)
