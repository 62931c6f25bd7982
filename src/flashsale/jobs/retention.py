"""The retention job: every serving process forgets old finished holds now and then.

Several processes may run it at once: forgetting is idempotent (services/retention.py).
"""

from __future__ import annotations

import logging
import threading

from flashsale.services.retention import Retention

log = logging.getLogger(__name__)


class RetentionJob:
    """A daemon thread that runs `Retention.forget_finished` every `interval_s` seconds (real time)."""

    def __init__(self, retention: Retention, *, interval_s: float) -> None:
        self._retention = retention
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flashsale-retention", daemon=True)
        self.forgotten = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):  # not at start-up: nothing there is old yet
            try:
                done = self._retention.forget_finished()
                self.forgotten += done.forgotten
                if done.forgotten:
                    log.info("retention forgot %d finished holds", done.forgotten)
            except Exception:  # a database or Redis blip must not kill the job; the next pass retries
                log.exception("ledger retention failed")
