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
        return self.state is HoldState.HELD and now >= self.expires_at


def transition_error(current: HoldState, target: HoldState) -> ErrorCode | None:
    """Return why `current` cannot move to `target`, or None if it can."""
    if target in HOLD_TRANSITIONS[current]:
        return None
    if current is HoldState.EXPIRED:
        return ErrorCode.ORDER_EXPIRED
    return ErrorCode.INVALID_TRANSITION
