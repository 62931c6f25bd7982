"""The draw scheduler: runs every scheduled draw whose time has come, in each serving process.

Several processes may run it (one per `serve` worker): a scheduled draw runs once whoever gets
there first, since its run is a compare-and-set from pending (services/draw_schedule.py), and the
others skip it.
"""

from __future__ import annotations

import logging
import threading

from flashsale.services.draw_schedule import DrawSchedule

log = logging.getLogger(__name__)


class DrawScheduler:
    """A daemon thread that calls `run_due` every `interval_s` seconds (real time)."""

    def __init__(self, schedule: DrawSchedule, *, interval_s: float = 5.0) -> None:
        self._schedule = schedule
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flashsale-draws", daemon=True)
        self.ran = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.ran += len(self._schedule.run_due())
            except Exception:  # a database blip must not kill the job; the next pass retries
                log.exception("scheduled draws failed")
            self._stop.wait(self._interval_s)
