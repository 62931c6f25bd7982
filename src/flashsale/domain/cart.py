"""A shopper's cart and its checkout, as rules without storage.

A cart holds at most one line per item, each with a quantity within what one purchase may ask
for. A checkout turns the whole cart into orders, one per line, all or none: every line is held
in the ledger under its own request id (`line_request_id`), so a replayed checkout replays each
line and never holds twice. The checkout's id is derived from the shopper's idempotency key, so
the same key always names the same checkout.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.sale import MAX_QUANTITY_PER_REQUEST

MAX_CART_LINES = 20  # a shop's cart page shows this many; more is a script, not a shopper


@dataclass(frozen=True, slots=True)
class CartLine:
    item_id: int
    qty: int


@dataclass(frozen=True, slots=True)
class Cart:
    """The lines of one shopper's cart, in the order they were first added."""

    user_id: str
    lines: tuple[CartLine, ...] = ()

    def qty_of(self, item_id: int) -> int:
        return next((line.qty for line in self.lines if line.item_id == item_id), 0)

    def with_qty(self, item_id: int, qty: int) -> Cart:
        """The cart with the item's line set to `qty` units (0 removes it); bad input raises."""
        if qty < 0 or qty > MAX_QUANTITY_PER_REQUEST:
            raise FlashSaleError(
                ErrorCode.INVALID_QUANTITY, f"a cart line holds 1 to {MAX_QUANTITY_PER_REQUEST} units"
            )
        kept = tuple(line for line in self.lines if line.item_id != item_id)
        if qty == 0:
            return Cart(self.user_id, kept)
        if self.qty_of(item_id):  # keep the line's place in the cart
            lines = tuple(CartLine(item_id, qty) if ln.item_id == item_id else ln for ln in self.lines)
            return Cart(self.user_id, lines)
        if len(kept) >= MAX_CART_LINES:
            raise FlashSaleError(ErrorCode.CART_FULL, f"a cart holds at most {MAX_CART_LINES} lines")
        return Cart(self.user_id, (*kept, CartLine(item_id, qty)))

    def added(self, item_id: int, qty: int) -> Cart:
        """The cart with `qty` more units of the item."""
        if qty < 1:
            raise FlashSaleError(ErrorCode.INVALID_QUANTITY, "add at least one unit")
        return self.with_qty(item_id, self.qty_of(item_id) + qty)


@dataclass(frozen=True, slots=True)
class PricedItem:
    """A line to check out at a price already decided: the price engine's for a cart, a deal's for a group."""

    item_id: int
    qty: int
    unit_price_cents: int
    total_cents: int


class CheckoutStatus(StrEnum):
    PLACED = "PLACED"  # every line is an order
    REFUSED = "REFUSED"  # a line was refused: nothing was held; a replay answers the same refusal


CHECKOUT_PREFIX = "co_"


def checkout_id_of(user_id: str, idempotency_key: str) -> str:
    """The checkout a shopper's key names: the same key always names the same checkout."""
    digest = hashlib.sha256(f"{user_id}\x00{idempotency_key}".encode()).hexdigest()
    return f"{CHECKOUT_PREFIX}{digest[:32]}"


def line_request_id(checkout_id: str, line_no: int) -> str:
    """The request id a checkout's line is held under in the ledger (and its order stored under)."""
    return f"{checkout_id}#{line_no}"


def is_checkout_line(request_id: str) -> bool:
    """Whether a hold's request id may be a checkout's line (its price is then the checkout's)."""
    return request_id.startswith(CHECKOUT_PREFIX) and "#" in request_id
