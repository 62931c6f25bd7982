"""The expiry sweeper: sleeps exactly until the next hold is due, then writes expiries down."""

from __future__ import annotations

import logging
import threading
import time

from flashsale.ledger.contract import Ledger
from flashsale.services.orders import OrderService

log = logging.getLogger(__name__)


class ExpirySweeper:
    """A daemon thread; `wake()` it when a new hold may be due earlier than it planned."""

    def __init__(self, orders: OrderService, ledger: Ledger, *, max_sleep_s: float = 1.0) -> None:
        self._orders = orders
        self._ledger = ledger
        self._max_sleep_s = max_sleep_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flashsale-expiry", daemon=True)
        self.expired = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            delay = self._max_sleep_s
            try:
                self.expired += self._orders.expire_due()
                due = self._ledger.next_expiry()
                if due is not None:
                    delay = min(delay, max(0.0, due - time.time()))
            except Exception:  # a database or Redis blip must not kill the sweeper; the next pass retries
                log.exception("expiry sweep failed")
            self._wake.wait(delay)
            self._wake.clear()
