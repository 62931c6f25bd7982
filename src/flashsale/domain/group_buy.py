"""Group buy (团购 / 拼单) as rules without storage.

An operator offers a deal on a flash item: a group of `size` members, each buying one unit at
`price_cents`, filled within `fill_window_s` of its opening. A leader opens a group and takes
seat 1; others take the free seats, numbered 1..size, until every seat is taken. A member's unit
is held in the stock ledger from the moment they join, as an order priced at the deal's price.

A group is FILLED when every seat's order was PAID before its deadline. Past the deadline
unfilled it FAILS: every unpaid order is cancelled (the hold goes back) and every paid one is
refunded, and it is FAILED once none of its orders holds a unit or money any more. A seat whose
order ended unpaid (expired, cancelled) is free again while the group is open.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import OrderStatus

MAX_GROUP_SIZE = 100  # 团购 groups of ten or more; a hundred is a crowd, not a group
MAX_FILL_WINDOW_S = 7 * 24 * 3600
# An order in one of these holds no unit and no money: its seat is free (or its failed group done).
ENDED = frozenset({OrderStatus.EXPIRED, OrderStatus.CANCELLED, OrderStatus.REFUNDED})


class GroupStatus(StrEnum):
    OPEN = "OPEN"  # taking members
    FILLED = "FILLED"  # every seat paid in time: the orders stand
    FAILING = "FAILING"  # past its deadline unfilled: its orders are being cancelled and refunded
    FAILED = "FAILED"  # every order cancelled, expired or refunded


@dataclass(frozen=True, slots=True)
class GroupDeal:
    """An operator's offer: groups of `size` buy one unit each of `item_id` at `price_cents`."""

    id: int
    item_id: int
    size: int
    price_cents: int
    fill_window_s: int

    @staticmethod
    def check(size: int, price_cents: int, fill_window_s: int) -> None:
        """Refuse terms no group could be run on (before anything is written)."""
        if not 2 <= size <= MAX_GROUP_SIZE:
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, f"a group has 2 to {MAX_GROUP_SIZE} members")
        if price_cents < 0:
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, "a group price is not negative")
        if not 1 <= fill_window_s <= MAX_FILL_WINDOW_S:
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, "a group fills within 1 s to 7 days")

    def deadline(self, opened_at: datetime) -> datetime:
        return opened_at + timedelta(seconds=self.fill_window_s)


@dataclass(frozen=True, slots=True)
class Seat:
    """A taken seat: its member, and the order holding their unit (None until it is placed)."""

    seat: int
    user_id: str
    claim: str  # names this taking of the seat: its checkout's key
    order_status: OrderStatus | None = None
    paid_at: datetime | None = None

    @property
    def freed(self) -> bool:
        """The seat's order ended without being paid: the seat goes back while the group is open."""
        return self.order_status in ENDED


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    deal_id: int
    item_id: int
    size: int
    price_cents: int
    leader_id: str
    status: GroupStatus
    opened_at: datetime
    deadline: datetime
    members: int  # seats taken

    def open_at(self, now: datetime) -> bool:
        """Whether a member may join now."""
        return self.status is GroupStatus.OPEN and now < self.deadline

    def refusal(self, now: datetime) -> ErrorCode:
        """Why a join is refused: the group is full, or no longer taking members."""
        return ErrorCode.GROUP_FULL if self.open_at(now) else ErrorCode.GROUP_CLOSED

    def filled_by(self, seats: Sequence[Seat]) -> bool:
        """Every seat taken and its order paid before the deadline."""
        in_time = [s for s in seats if s.paid_at is not None and s.paid_at <= self.deadline]
        return sum(s.order_status is OrderStatus.PAID for s in in_time) == self.size

    def settled_by(self, seats: Sequence[Seat]) -> bool:
        """A failing group's orders hold no unit and no money any more: it has failed."""
        return all(s.order_status in ENDED for s in seats)


def free_seat(taken: Sequence[int], size: int) -> int | None:
    """The lowest seat number of 1..size not taken, or None when the group is full."""
    busy = set(taken)
    return next((n for n in range(1, size + 1) if n not in busy), None)


GROUP_PREFIX = "gb_"


def group_id_of(leader_id: str, idempotency_key: str) -> str:
    """The group a leader's key opens: the same key always names the same group."""
    digest = hashlib.sha256(f"group\x00{leader_id}\x00{idempotency_key}".encode()).hexdigest()
    return f"{GROUP_PREFIX}{digest[:32]}"


def seat_key(group_id: str, seat: int, claim: str) -> str:
    """The checkout key of one taking of a seat: a member who rejoins after their seat was freed gets a
    new checkout (and new holds), a retry of the same taking replays it."""
    return f"group:{group_id}:{seat}:{claim}"
