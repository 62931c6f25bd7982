"""Holds: units set aside for one user until they pay, cancel, or the payment window runs out."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from flashsale.domain.errors import ErrorCode


class HoldState(StrEnum):
    HELD = "held"
    SOLD = "sold"
    RELEASED = "released"  # cancelled by the shopper or the shop
    EXPIRED = "expired"  # payment window ran out
    REFUNDED = "refunded"  # was sold, money and unit went back


# Which state a hold may move to, and nothing else: the ledger and the order both obey this.
HOLD_TRANSITIONS: dict[HoldState, frozenset[HoldState]] = {
    HoldState.HELD: frozenset({HoldState.SOLD, HoldState.RELEASED, HoldState.EXPIRED}),
    HoldState.SOLD: frozenset({HoldState.REFUNDED}),
    HoldState.RELEASED: frozenset(),
    HoldState.EXPIRED: frozenset(),
    HoldState.REFUNDED: frozenset(),
}


class Hold(NamedTuple):
    """A snapshot of one hold as the ledger sees it.

    Immutable like the other value objects, but a NamedTuple: every purchase builds one, and a
    NamedTuple is built about three times faster than a frozen dataclass (no `object.__setattr__`
    per field).
    """

    hold_id: str
    item_id: int
    user_id: str
    qty: int
    request_id: str
    created_at: float
    expires_at: float
    state: HoldState

    def is_due(self, now: float) -> bool:
        """True when the hold is still HELD but its payment window has passed."""
        return self.state is HoldState.HELD and is_due(self.expires_at, now)

    def is_live(self, now: float) -> bool:
        """True when the hold still takes stock at `now`: sold, or held within its window."""
        if self.state is HoldState.SOLD:
            return True
        return self.state is HoldState.HELD and not is_due(self.expires_at, now)


def is_due(expires_at: float, now: float) -> bool:
    """True once a payment window ending at `expires_at` has run out: from that very instant on.

    The one rule for "is this hold still live?": the in-process ledger, `Hold.is_due` / `is_live`
    (reconciliation) and `Order.effective_status` ask it. The Redis engine cannot call Python, so
    `ledger/lua/lib.lua` (`sweep`) and `ledger/lua/expire.lua` mirror it as
    `ZRANGEBYSCORE due -inf now` (a deadline equal to `now` is due); the sweep's candidate query
    in `services/orders.py` (`expires_at <= now`) mirrors it in SQL.
    """
    return now >= expires_at


def transition_error(current: HoldState, target: HoldState) -> ErrorCode | None:
    """Return why `current` cannot move to `target`, or None if it can."""
    if target in HOLD_TRANSITIONS[current]:
        return None
    if current is HoldState.EXPIRED:
        return ErrorCode.ORDER_EXPIRED
    return ErrorCode.INVALID_TRANSITION
