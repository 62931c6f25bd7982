"""The order path's batchers (services/batching.py): purchases into `OrderService.buy_many`, pays into
`PaymentDesk.pay_many`, cancels into `OrderService.cancel_many`. HTTP routes and the demo crowd go
through them, so a crowd's purchases, payments and cancels each share transactions and commits
instead of taking one apiece.

A batch holds up to 256 requests: a commit costs the same for 64 requests as for 256 (on a sandboxed
kernel its system calls cost more than the rows), and the demo's crowd spent a third less CPU on
purchases and pays than with batches of 64. A batch of 256 pays still runs in tens of milliseconds.
"""

from __future__ import annotations

from flashsale.domain.orders import Order
from flashsale.services.batching import Batcher
from flashsale.services.orders import Buy, Cancel, OrderService, Purchase
from flashsale.services.settlement import Paid, PayRequest

MAX_BATCH = 256


class Checkout(Batcher[Buy, Purchase]):
    """Buy for async callers (HTTP routes, the demo crowd), in batches; one event loop at a time."""

    def __init__(self, orders: OrderService, *, max_batch: int = MAX_BATCH) -> None:
        super().__init__(orders.buy_many, max_batch=max_batch)

    async def buy(self, cmd: Buy) -> Purchase:
        """Reserve and record as `OrderService.buy` does, in one batch with whatever else is waiting."""
        return await self.submit(cmd)


class Till(Batcher[PayRequest, Paid]):
    """Pay for async callers, in batches: each pay is answered as `OrderService.pay_once` would answer it."""

    def __init__(self, orders: OrderService, *, max_batch: int = MAX_BATCH) -> None:
        super().__init__(orders.payments.pay_many, max_batch=max_batch)

    async def pay(self, request: PayRequest) -> Paid:
        """Pay as `OrderService.pay_once` does, in one batch with whatever else is waiting."""
        return await self.submit(request)


class Cancels(Batcher[Cancel, Order]):
    """Cancel for async callers, in batches: each answered as `OrderService.cancel` would answer it."""

    def __init__(self, orders: OrderService, *, max_batch: int = MAX_BATCH) -> None:
        super().__init__(orders.cancel_many, max_batch=max_batch)

    async def cancel(self, request: Cancel) -> Order:
        """Cancel as `OrderService.cancel` does, in one batch with whatever else is waiting."""
        return await self.submit(request)
