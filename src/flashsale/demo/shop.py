"""The shoppers' side: real calls to the order service, and what they saw.

Every call goes through `Shop`: purchases, pays and cancels through the same batchers as the HTTP
routes (`Checkout`, `Till`, `Cancels`), expiry sweeps on a thread pool (so they really race the
shoppers in the ledger and the database); answers are tallied on the event loop thread (so the
tally needs no lock).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from flashsale.demo.crowd import Behaviour, Shopper
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import Order
from flashsale.services.checkout import Cancels, Checkout, Till
from flashsale.services.orders import Buy, Cancel, OrderService
from flashsale.services.settlement import PayRequest

T = TypeVar("T")
Answer = Order | ErrorCode
TURNED_AWAY = frozenset({ErrorCode.SOLD_OUT, ErrorCode.INSUFFICIENT_STOCK})


@dataclass
class Tally:
    """What the crowd saw."""

    reserve_calls: int = 0
    new_orders: int = 0
    replays: int = 0
    double_clicks: int = 0
    duplicate_orders: int = 0  # identical requests sent at once that made two orders: must stay 0
    payments: int = 0
    cancellations: int = 0
    expired: int = 0
    refusals: Counter[ErrorCode] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # refused pays and cancels: must stay empty
    served: set[tuple[int, str]] = field(default_factory=set)  # (item id, user id) that got a hold
    turned_away: set[tuple[int, str]] = field(default_factory=set)  # told SOLD_OUT or INSUFFICIENT_STOCK

    def bought(self, item_id: int, user_id: str, *, replayed: bool) -> None:
        """Count a purchase answered with an order: a fresh hold, or the replay of one."""
        if replayed:
            self.replays += 1
        else:
            self.new_orders += 1
        self.served.add((item_id, user_id))

    def refused(self, item_id: int, user_id: str, code: ErrorCode) -> None:
        """Count a purchase refused with `code`."""
        self.refusals[code] += 1
        if code in TURNED_AWAY:
            self.turned_away.add((item_id, user_id))

    def unserved(self, item_id: int) -> int:
        """Count the shoppers who wanted the item, were turned away, and never got a unit of it."""
        return sum(1 for item, _ in self.turned_away - self.served if item == item_id)


class Door(Protocol):
    """What a shopper's behaviour (`shop_for`) calls: the in-process `Shop`, or HTTP in a rehearsal."""

    tally: Tally

    async def buy(self, shopper: Shopper, qty: int, request_id: str) -> Answer:
        """Ask for a hold; return the order or the refusal's code."""
        ...

    async def pay(self, order: Order) -> None:
        """Pay the order; a refusal is tallied as a failure."""
        ...

    async def cancel(self, order: Order) -> None:
        """Cancel the unpaid order; a refusal is tallied as a failure."""
        ...


class PoolDoor:
    """A door whose calls into the platform block: each runs on the shop's thread pool, awaited."""

    def __init__(self, pool: Executor) -> None:
        self._pool = pool

    async def _run(self, call: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, call, *args)


class Shop(PoolDoor):
    """The crowd's door to the platform, in process."""

    def __init__(self, orders: OrderService, pool: Executor) -> None:
        super().__init__(pool)
        self._orders = orders
        self._checkout = Checkout(orders)  # purchases and pays go in batches, as over HTTP
        self._till = Till(orders)
        self._cancels = Cancels(orders)
        self.tally = Tally()

    async def buy(self, shopper: Shopper, qty: int, request_id: str) -> Answer:
        """Ask the order service for a hold; return the order or the refusal's code."""
        self.tally.reserve_calls += 1
        cmd = Buy(shopper.user_id, shopper.item.id, qty, request_id)
        try:
            purchase = await self._checkout.buy(cmd)
        except FlashSaleError as exc:
            self.tally.refused(cmd.item_id, cmd.user_id, exc.code)
            return exc.code
        self.tally.bought(cmd.item_id, cmd.user_id, replayed=purchase.replayed)
        return purchase.order

    async def pay(self, order: Order) -> None:
        """Pay through the sandbox provider; a refusal is a failure of the platform, tallied as such."""
        try:
            await self._till.pay(PayRequest(order.id, order.user_id))
        except FlashSaleError as exc:
            self.tally.failures[f"pay: {exc.code}"] += 1
        else:
            self.tally.payments += 1

    async def cancel(self, order: Order) -> None:
        """Cancel an unpaid order; a refusal is a failure of the platform, tallied as such."""
        try:
            await self._cancels.cancel(Cancel(order.id, order.user_id))
        except FlashSaleError as exc:
            self.tally.failures[f"cancel: {exc.code}"] += 1
        else:
            self.tally.cancellations += 1

    async def expire(self) -> int:
        """Run expiry sweeps until none is due; return how many unpaid holds expired."""
        expired = 0
        while swept := await self._run(self._orders.expire_due):
            expired += swept
        self.tally.expired += expired
        return expired


async def take(shop: Door, shopper: Shopper, qty: int, request_id: str, *, clicks: int = 1) -> Order | None:
    """Ask for `qty` units with `clicks` identical requests at once; offered fewer, settle for one."""
    if clicks == 1:  # no task of its own: most shoppers click once, and a task costs more than the click
        answers = [await shop.buy(shopper, qty, request_id)]
    else:
        answers = await asyncio.gather(*(shop.buy(shopper, qty, request_id) for _ in range(clicks)))
    orders = {a.id: a for a in answers if isinstance(a, Order)}
    if len(orders) > 1:
        shop.tally.duplicate_orders += 1
    if orders:
        return next(iter(orders.values()))
    if ErrorCode.INSUFFICIENT_STOCK in answers:
        return await take(shop, shopper, 1, f"{request_id}-1")
    return None


async def click_early(shop: Door, shopper: Shopper) -> None:
    """Hammer the buy button before the session opens."""
    for n in range(shopper.early_clicks):
        await shop.buy(shopper, shopper.qty, f"{shopper.user_id}-early-{n}")


async def shop_for(shop: Door, shopper: Shopper) -> None:
    """Play one shopper's behaviour while the session is open: the clicks, then the checkout."""
    order = await decide(shop, shopper)
    if order is not None:
        await check_out(shop, shopper, order)


async def decide(shop: Door, shopper: Shopper) -> Order | None:
    """Play the clicks of one shopper's behaviour (the platform's decisions); return the order got."""
    kind = shopper.behaviour
    request_id = f"{shopper.user_id}-buy"
    if kind is Behaviour.GREEDY:
        await shop.buy(shopper, shopper.qty + 1, f"{shopper.user_id}-greedy")
    if kind is Behaviour.DOUBLE_CLICKER:
        shop.tally.double_clicks += 1
    clicks = 2 if kind is Behaviour.DOUBLE_CLICKER else 1
    order = await take(shop, shopper, shopper.qty, request_id, clicks=clicks)
    if order is None:
        return None
    if kind is Behaviour.RETRIER:  # the answer got lost: send the very same request again
        again = await shop.buy(shopper, order.qty, order.request_id)
        if not (isinstance(again, Order) and again.id == order.id):
            shop.tally.failures["retry: not replayed"] += 1
    return order


async def check_out(shop: Door, shopper: Shopper, order: Order) -> None:
    """Play what one shopper does with the order got: pay it, cancel it, or walk away."""
    kind = shopper.behaviour
    if kind is Behaviour.CANCELLER:
        await shop.cancel(order)
    elif kind is not Behaviour.NEVER_PAYS:
        await shop.pay(order)
    if kind is Behaviour.GREEDY:  # back for more: over the limit now, unless a unit of it is left
        extra = await shop.buy(shopper, 1, f"{shopper.user_id}-again")
        if isinstance(extra, Order):
            await shop.pay(extra)
