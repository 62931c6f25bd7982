"""Orders: what the shopper sees of a hold, with its price and state machine."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from flashsale.domain import events as ev
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import HoldState, is_due


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
    """One accepted purchase. `id` is the ledger's hold id, so an order and its hold never diverge.

    Its status changes only through the transitions below (`paid`, `cancelled`, `expired`,
    `refunded`): each returns the order as it becomes, or raises if ORDER_TRANSITIONS forbids
    the move; `event` is the outbox record of the move. A service stores the change with
    `store.repositories.save_transition`, a compare-and-set on the status it started from.
    Times are epoch seconds, as the injected clock gives them.
    """

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
        if self.status is OrderStatus.UNPAID and is_due(self.expires_at.timestamp(), now.timestamp()):
            return OrderStatus.EXPIRED
        return self.status

    def as_seen(self, now: datetime) -> Order:
        """The order as reported at `now`: with its effective status (see `effective_status`)."""
        status = self.effective_status(now)
        return self if status is self.status else replace(self, status=status)

    def can_become(self, target: OrderStatus) -> bool:
        """True if ORDER_TRANSITIONS lets this order move to `target` (a repeat is not a move)."""
        return order_transition_error(self.status, target) is None

    def needs_transition(self, target: OrderStatus) -> bool:
        """Return False if the order is `target` already (a harmless repeat); raise if it cannot become it."""
        if self.status is target:
            return False
        error = order_transition_error(self.status, target)
        if error is not None:
            raise FlashSaleError(error, f"order {self.id} is {self.status}")
        return True

    # -- transitions: pure, each returns the order as it becomes ---------------------------------
    def paid(self, payment_ref: str, at: float) -> Order:
        """Return this order paid at `at` by the charge `payment_ref`."""
        self._check(OrderStatus.PAID)
        return replace(self, status=OrderStatus.PAID, paid_at=_moment(at), payment_ref=payment_ref)

    def cancelled(self, at: float) -> Order:
        """Return this order cancelled at `at` (by the shopper, or by reconciliation to fit the quota)."""
        return self._closed(OrderStatus.CANCELLED, at)

    def expired(self, at: float) -> Order:
        """Return this order expired at `at`, the end of its hold's payment window."""
        return self._closed(OrderStatus.EXPIRED, at)

    def refunded(self, at: float) -> Order:
        """Return this order refunded at `at`: its money, unit and quota go back."""
        return self._closed(OrderStatus.REFUNDED, at)

    def event(self, at: float) -> ev.Event:
        """Return the outbox event recording that this order moved into its status at `at`."""
        ids = (self.id, self.item_id, self.user_id, self.qty, at)
        if self.status is OrderStatus.UNPAID:
            raise ValueError(f"order {self.id} is UNPAID: no transition leads there")
        if self.status is OrderStatus.PAID:
            assert self.payment_ref is not None
            return ev.OrderPaid(*ids, payment_ref=self.payment_ref, amount_cents=self.total_cents)
        if self.status is OrderStatus.REFUNDED:
            return ev.OrderRefunded(*ids, amount_cents=self.total_cents)
        if self.status is OrderStatus.CANCELLED:
            return ev.OrderCancelled(*ids)
        return ev.OrderExpired(*ids)

    def _closed(self, target: OrderStatus, at: float) -> Order:
        self._check(target)
        return replace(self, status=target, closed_at=_moment(at))

    def _check(self, target: OrderStatus) -> None:
        error = order_transition_error(self.status, target)
        if error is not None:
            raise FlashSaleError(error, f"order {self.id} is {self.status}, cannot become {target}")


def _moment(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def order_transition_error(current: OrderStatus, target: OrderStatus) -> ErrorCode | None:
    """Return why an order in `current` cannot become `target`, or None if it can."""
    if target in ORDER_TRANSITIONS[current]:
        return None
    if current is OrderStatus.EXPIRED:
        return ErrorCode.ORDER_EXPIRED
    return ErrorCode.INVALID_TRANSITION
