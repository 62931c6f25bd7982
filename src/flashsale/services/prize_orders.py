"""A goods prize delivered as a zero-price order: its unit through the stock ledger, settled without money.

Redeeming a goods award (services/draws.py) places, once, a one-line checkout of the prize's
product at price 0 and settles its order for 0 cents; the award is then marked redeemed with the
order's id. The unit comes from the product's *regular* item on sale now (the product at its shop
price, held through the same ledger as every other unit), so a prize never oversells it: when the
product has none, the redemption is refused with PRIZE_NOT_STOCKED and the award stays redeemable.

Exactly once, under twins and after a kill at any step, because every key derives from the award
and every step is idempotent and reads where the last one got to:
1. place: the checkout named by `prize_order_key(award, attempt)` (`CartService.check_out_priced`);
   twins and retries name the same checkout, hence the same hold and order.
2. settle: `PaymentDesk.settle_free` journals a 0-cent charge referenced by the order, then the
   ledger confirms the hold and the order is PAID (a repeat finds it paid; `recover()` finishes a
   settlement cut between the journal and the order).
3. mark: the award moves to REDEEMED with the order id, a compare-and-set (services/draws.py).
An attempt that ended for good without delivering (its checkout refused, or its order expired or
was cancelled unpaid: the ledger decided so and it can never be paid) is followed by the next
attempt's key; an attempt is never begun while the one before may still deliver.
"""

from __future__ import annotations

from itertools import count

from flashsale.domain.cart import CheckoutStatus, PricedItem, checkout_id_of
from flashsale.domain.draws import Award, prize_order_key
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import Order, OrderStatus
from flashsale.services.cart import CartService, Checkout
from flashsale.services.deps import Deps
from flashsale.services.orders import OrderService
from flashsale.store import draw_repository as repo

DELIVERED = (OrderStatus.PAID, OrderStatus.REFUNDED)  # the prize went out (an operator may refund it)
UNDELIVERED = (OrderStatus.EXPIRED, OrderStatus.CANCELLED)  # ended unpaid: the unit went back


class PrizeOrders:
    """Place and settle the zero-price order of a goods award, once."""

    def __init__(self, deps: Deps, carts: CartService, orders: OrderService) -> None:
        self.deps = deps
        self.carts = carts
        self.orders = orders

    def deliver(self, award: Award, product_id: int) -> Order:
        """The award's zero-price order of one unit of the product, placed and PAID (once).

        Raises PRIZE_NOT_STOCKED when a new order is needed and the product has no regular item on
        sale now, or the ledger's refusal (SOLD_OUT, LIMIT_EXCEEDED, ...) of this attempt's hold;
        either way nothing is held, and a later redemption tries again.
        """
        for attempt in count():
            key = prize_order_key(award.id, attempt)
            checkout = self._placed(award, product_id, key)
            if checkout is None:
                continue  # refused for good before: the next attempt
            order = checkout.lines[0].order
            assert order is not None  # a placed checkout's line has its order
            paid = self._settled(order.id)
            if paid is not None:
                return paid
        raise AssertionError("unreachable")  # pragma: no cover

    def _placed(self, award: Award, product_id: int, key: str) -> Checkout | None:
        """The attempt's checkout, placed now or before; None when it was refused before."""
        try:
            stored: Checkout | None = self.carts.get(award.user_id, checkout_id_of(award.user_id, key))
        except FlashSaleError as exc:
            if exc.code is not ErrorCode.NOT_FOUND:
                raise
            stored = None
        if stored is not None and stored.status == CheckoutStatus.REFUSED:
            return None
        # A PENDING one (its placer died) is decided as written; only a new one looks for the item.
        item_id = stored.lines[0].item_id if stored is not None else self._regular_item(product_id)
        line = PricedItem(item_id, 1, 0, 0)
        checkout, _ = self.carts.check_out_priced(award.user_id, key, [line])  # a refusal raises
        return checkout

    def _regular_item(self, product_id: int) -> int:
        with self.deps.read() as read:
            item_id = repo.regular_item_on_sale(read.db, product_id, self.deps.now())
        if item_id is None:
            raise FlashSaleError(
                ErrorCode.PRIZE_NOT_STOCKED, f"product {product_id} is not on sale now; redeem it later"
            )
        return item_id

    def _settled(self, order_id: str) -> Order | None:
        """The order settled for 0 cents; None when it ended unpaid (the next attempt's turn)."""
        order = self.orders.stored(order_id)
        if order.status in DELIVERED:
            return order
        if order.status is OrderStatus.UNPAID:
            try:
                return self.orders.payments.settle_free(order_id)
            except FlashSaleError:
                # The ledger refused to confirm: if it ended the hold (expired, cancelled) the store
                # says so now and the next attempt takes over; anything else is the caller's answer.
                order = self.orders.stored(order_id)
                if order.status not in UNDELIVERED:
                    raise
        assert order.status in UNDELIVERED, order.status
        return None
