"""Orders: what the shopper sees of a hold, with its price and state machine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import HoldState


class OrderStatus(StrEnum):
    UNPAID = "UNPAID"
    PAID = "PAID"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REFUNDED = "REFUNDED"


# Fulfilment states (packed, shipped, …) will hang off PAID; each one maps back to SOLD in the ledger.
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.UNPAID: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.EXPIRED}),
    OrderStatus.PAID: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}

STATUS_OF_HOLD: dict[HoldState, OrderStatus] = {
    HoldState.HELD: OrderStatus.UNPAID,
    HoldState.SOLD: OrderStatus.PAID,
    HoldState.RELEASED: OrderStatus.CANCELLED,
    HoldState.EXPIRED: OrderStatus.EXPIRED,
    HoldState.REFUNDED: OrderStatus.REFUNDED,
}
HOLD_OF_STATUS: dict[OrderStatus, HoldState] = {v: k for k, v in STATUS_OF_HOLD.items()}


@dataclass(frozen=True, slots=True)
class Order:
    """One accepted purchase. `id` is the ledger's hold id, so an order and its hold never diverge."""

    id: str
    user_id: str
    item_id: int
    qty: int
    unit_price_cents: int
    total_cents: int
    status: OrderStatus
    request_id: str
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    payment_ref: str | None = None

    def effective_status(self, now: datetime) -> OrderStatus:
        """Report an UNPAID order past its window as EXPIRED even before the sweeper writes it."""
        if self.status is OrderStatus.UNPAID and now >= self.expires_at:
            return OrderStatus.EXPIRED
        return self.status

    def needs_transition(self, target: OrderStatus) -> bool:
        """Return False if the order is `target` already (a harmless repeat); raise if it cannot become it."""
        if self.status is target:
            return False
        error = order_transition_error(self.status, target)
        if error is not None:
            raise FlashSaleError(error, f"order {self.id} is {self.status}")
        return True


def order_transition_error(current: OrderStatus, target: OrderStatus) -> ErrorCode | None:
    """Return why an order in `current` cannot become `target`, or None if it can."""
    if target in ORDER_TRANSITIONS[current]:
        return None
    if current is OrderStatus.EXPIRED:
        return ErrorCode.ORDER_EXPIRED
    return ErrorCode.INVALID_TRANSITION
