"""The expiry sweeper: sleeps until the next hold is due, then writes expiries down."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from flashsale.clock import Clock
from flashsale.ledger.contract import Ledger
from flashsale.services.orders import OrderService

log = logging.getLogger(__name__)


class ExpirySweeper:
    """A daemon thread that writes down the holds the ledger expired.

    What is due follows the platform clock (the one the ledger decides with), so a `ManualClock`
    moves the sweeper's deadlines too. The thread itself waits on real time, at most `max_sleep_s`
    between passes: a clock that jumps ahead is noticed within that. Each pass also runs the
    `also` steps (settling group buys): work that follows expiries and deadlines on the same clock.
    """

    def __init__(
        self,
        orders: OrderService,
        ledger: Ledger,
        clock: Clock,
        *,
        max_sleep_s: float = 1.0,
        also: Sequence[Callable[[], object]] = (),
    ) -> None:
        self._also = tuple(also)
        self._orders = orders
        self._ledger = ledger
        self._clock = clock
        self._max_sleep_s = max_sleep_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flashsale-expiry", daemon=True)
        self.expired = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def delay(self) -> float:
        """Seconds to wait before the next pass: until the next hold is due on the platform clock."""
        due = self._ledger.next_expiry()
        if due is None:
            return self._max_sleep_s
        return min(self._max_sleep_s, max(0.0, due - self._clock()))

    def _run(self) -> None:
        while not self._stop.is_set():
            delay = self._max_sleep_s
            try:
                self.expired += self._orders.expire_due()
                for step in self._also:
                    step()
                delay = self.delay()
            except Exception:  # a database or Redis blip must not kill the sweeper; the next pass retries
                log.exception("expiry sweep failed")
            self._stop.wait(delay)
