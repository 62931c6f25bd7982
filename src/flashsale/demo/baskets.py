"""The basket shoppers' side: a coupon claimed, a cart of regular items, a checkout, and what they saw.

Every call goes through `BasketShop` to the platform's coupon and cart services, in process. They
block, so they run on the shop's thread pool (basket shoppers race each other in the ledgers and
the database as the flash crowd does); answers are tallied on the event loop thread (no lock).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from flashsale.demo.crowd import BasketBehaviour, BasketShopper
from flashsale.demo.shop import PoolDoor
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.services.cart import CartService, Checkout
from flashsale.services.coupons import CouponService
from flashsale.services.orders import OrderService


@dataclass
class BasketTally:
    """What the basket shoppers saw."""

    shoppers: int = 0
    claims: int = 0
    claim_refusals: Counter[ErrorCode] = field(default_factory=Counter)
    checkout_calls: int = 0
    checkouts: int = 0  # checkouts placed, once each whatever the clicks
    replays: int = 0  # further answers of a placed checkout to the same key (the second click)
    double_clicks: int = 0
    duplicate_checkouts: int = 0  # one key answered with two checkouts: must stay 0
    refusals: Counter[ErrorCode] = field(default_factory=Counter)  # checkouts refused, by code
    without_coupon: int = 0  # checked out again without the coupon after BUDGET_EXHAUSTED
    payments: int = 0  # checkouts paid
    cancellations: int = 0  # checkouts whose every line was cancelled
    walked_away: int = 0  # checkouts left unpaid, for the expiry
    expired: int = 0  # orders of checkout lines expired unpaid
    failures: Counter[str] = field(default_factory=Counter)  # refused pays and cancels: must stay empty


class BasketShop(PoolDoor):
    """The basket shoppers' door to the platform, in process."""

    def __init__(
        self,
        coupons: CouponService,
        carts: CartService,
        orders: OrderService,
        pool: Executor,
        *,
        wave_id: int,
    ) -> None:
        super().__init__(pool)
        self._coupons = coupons
        self._carts = carts
        self._orders = orders
        self._wave_id = wave_id
        self.tally = BasketTally()

    async def claim(self, shopper: BasketShopper) -> str | None:
        """Claim the wave's coupon; return its id, or None when the wave refused."""
        try:
            claimed = await self._run(
                lambda: self._coupons.claim(
                    user_id=shopper.user_id, wave_id=self._wave_id, request_id=f"{shopper.user_id}-claim"
                )
            )
        except FlashSaleError as exc:
            self.tally.claim_refusals[exc.code] += 1
            return None
        self.tally.claims += 1
        return claimed.coupon.coupon_id

    async def fill(self, shopper: BasketShopper) -> None:
        """Put the shopper's lines in the cart, one call per line as the shop's page does."""
        for item, qty in shopper.lines:
            await self._run(self._carts.add, shopper.user_id, item.id, qty)

    async def check_out(
        self, shopper: BasketShopper, key: str, coupon_ids: Sequence[str], *, clicks: int = 1
    ) -> Checkout | ErrorCode:
        """Check the cart out with `clicks` identical requests at once; return the checkout or the refusal."""
        answers = await asyncio.gather(
            *(self._check_out_once(shopper, key, coupon_ids) for _ in range(clicks))
        )
        # Twins racing on one key may both be told "not a replay": what counts is one checkout.
        kept = [a for a in answers if isinstance(a, Checkout)]
        placed = {a.id: a for a in kept}
        if len(placed) > 1:
            self.tally.duplicate_checkouts += 1
        if placed:
            self.tally.checkouts += 1
            self.tally.replays += len(kept) - 1
            return kept[0]
        code = next(a for a in answers if isinstance(a, ErrorCode))
        self.tally.refusals[code] += 1
        return code

    async def _check_out_once(
        self, shopper: BasketShopper, key: str, coupon_ids: Sequence[str]
    ) -> Checkout | ErrorCode:
        self.tally.checkout_calls += 1
        try:
            checkout, _ = await self._run(self._carts.checkout, shopper.user_id, key, coupon_ids)
        except FlashSaleError as exc:
            return exc.code
        return checkout

    async def pay(self, checkout: Checkout) -> None:
        """Pay every line of the checkout; a refusal is a failure of the platform, tallied as such."""
        try:
            await self._run(self._carts.pay, checkout.user_id, checkout.id)
        except FlashSaleError as exc:
            self.tally.failures[f"pay checkout: {exc.code}"] += 1
        else:
            self.tally.payments += 1

    async def cancel(self, checkout: Checkout) -> None:
        """Cancel every line's order: the last one gives the checkout's coupons back."""
        try:
            for line in checkout.lines:
                assert line.order is not None  # in process, a placed line has its order
                await self._run(self._orders.cancel, line.order.id, checkout.user_id)
        except FlashSaleError as exc:
            self.tally.failures[f"cancel checkout: {exc.code}"] += 1
        else:
            self.tally.cancellations += 1

    async def expire(self) -> int:
        """Run expiry sweeps until none is due; return how many orders expired.

        A checkout whose every line expired gets its coupons back (the order service's listener).
        """
        expired = 0
        while swept := await self._run(self._orders.expire_due):
            expired += swept
        self.tally.expired += expired
        return expired


async def shop_basket(shop: BasketShop, shopper: BasketShopper) -> None:
    """Play one basket shopper: claim, fill the cart, check out with the coupon, then pay, cancel or leave."""
    kind = shopper.behaviour
    shop.tally.shoppers += 1
    coupon = await shop.claim(shopper)
    await shop.fill(shopper)
    clicks = 2 if kind is BasketBehaviour.DOUBLE_CLICKER else 1
    if clicks > 1:
        shop.tally.double_clicks += 1
    key = f"{shopper.user_id}-checkout"
    answer = await shop.check_out(shopper, key, [coupon] if coupon else [], clicks=clicks)
    if answer is ErrorCode.BUDGET_EXHAUSTED:  # the coupon's budget ran out: buy without it
        shop.tally.without_coupon += 1
        answer = await shop.check_out(shopper, f"{key}-2", [])
    if not isinstance(answer, Checkout):
        return
    if kind is BasketBehaviour.CANCELLER:
        await shop.cancel(answer)
    elif kind is BasketBehaviour.WALKS_AWAY:
        shop.tally.walked_away += 1
    else:
        await shop.pay(answer)
