"""Countdown free orders (免单): the n-th paid order of a session (or of one item in it) is free.

A rule names the winning ranks ("the 1st, 88th and 888th paid order") and/or the first N payers
("the first 10 paid orders"). Every paid order the rule covers takes the next rank when it is paid,
in the payment's transaction; a winning rank is a slot with exactly one winner. The winner gets
a rebate of the order's amount (at most `cap_cents`), journaled as decided and then sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from flashsale.domain import events as ev
from flashsale.domain.errors import ErrorCode, FlashSaleError

MAX_RANKS = 100  # a rule lists at most this many winning ranks


@dataclass(frozen=True, slots=True)
class FreeOrderRule:
    """Which paid orders of a session (or of one item of it, `item_id`) are free.

    Ranks count the orders paid after the rule was created, each once, whatever happens to it
    later: a refund does not give its rank to the next payer.
    """

    id: int
    name: str
    session_id: int
    item_id: int | None
    ranks: tuple[int, ...] = ()
    first_n: int = 0
    cap_cents: int | None = None  # the most a rebate gives back; None: the whole order

    def __post_init__(self) -> None:
        if not self.ranks and self.first_n <= 0:
            raise ValueError("a free-order rule needs winning ranks or first_n >= 1")
        if self.first_n < 0:
            raise ValueError("first_n must be >= 0")
        if len(self.ranks) > MAX_RANKS:
            raise ValueError(f"at most {MAX_RANKS} winning ranks")
        if any(r < 1 for r in self.ranks) or len(set(self.ranks)) != len(self.ranks):
            raise ValueError("winning ranks are distinct numbers >= 1")
        if self.cap_cents is not None and self.cap_cents < 1:
            raise ValueError("cap_cents must be >= 1")

    def covers(self, session_id: int, item_id: int) -> bool:
        """True when a paid order of `item_id` in `session_id` takes a rank under this rule."""
        return session_id == self.session_id and self.item_id in (None, item_id)

    def overlaps(self, other: FreeOrderRule) -> bool:
        """True when some order would be counted by both rules (one order wins at most one rebate)."""
        same_items = self.item_id is None or other.item_id is None or self.item_id == other.item_id
        return self.session_id == other.session_id and same_items

    def wins(self, rank: int) -> bool:
        """True when the order paid `rank`-th is free."""
        return rank <= self.first_n or rank in self.ranks

    @property
    def slots(self) -> int:
        """How many winners the rule can have."""
        return len(set(self.ranks) | set(range(1, self.first_n + 1)))

    def rebate_cents(self, total_cents: int) -> int:
        """What a winning order of `total_cents` gets back."""
        return total_cents if self.cap_cents is None else min(total_cents, self.cap_cents)


class WinStatus(StrEnum):
    PENDING = "pending"  # the rebate is decided and journaled, not yet sent to the provider
    REBATED = "rebated"  # the provider has it


@dataclass(frozen=True, slots=True)
class FreeOrderWin:
    """The winner of one slot (rule, rank): its order, and the rebate it gets."""

    rule_id: int
    slot: int
    order_id: str
    user_id: str
    item_id: int
    qty: int
    rebate_cents: int
    status: WinStatus
    won_at: datetime
    rebated_at: datetime | None = None

    def rebated(self, at: datetime) -> FreeOrderWin:
        """Return this win with its rebate sent at `at`."""
        if self.status is not WinStatus.PENDING:
            raise FlashSaleError(ErrorCode.INVALID_TRANSITION, f"the rebate of {self.order_id} was sent")
        return replace(self, status=WinStatus.REBATED, rebated_at=at)

    def event(self) -> ev.Event:
        """The outbox event of the move into this win's status."""
        ids = (self.order_id, self.item_id, self.user_id, self.qty)
        if self.status is WinStatus.PENDING:
            return ev.FreeOrderWon(*ids, self.won_at.timestamp(), self.rule_id, self.slot, self.rebate_cents)
        assert self.rebated_at is not None
        return ev.OrderRebated(*ids, self.rebated_at.timestamp(), self.rule_id, self.slot, self.rebate_cents)


def refundable_cents(total_cents: int, rebated_cents: int) -> int:
    """What refunding a paid order gives back: what the shopper kept paying, never more."""
    return max(0, total_cents - rebated_cents)
