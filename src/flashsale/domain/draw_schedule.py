"""Scheduled draws: "at 16:00, draw N winners among today's qualifying buyers", reproducibly.

A scheduled draw runs once (pending -> done). Its record is the audit trail: the seed, the sorted
entrant list and the winners, so that anyone recomputes the winners with `winners` from the seed
and the entrants alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from flashsale.domain.errors import ErrorCode, FlashSaleError


class ScheduleStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"


def winners(entrants: Sequence[str], n: int, seed: str) -> list[str]:
    """Pick `n` winners among `entrants` from `seed`, reproducibly, in rank order.

    Each entrant's rank is SHA-256 of `seed|entrant` (hex); the n lowest win. Anyone with the seed
    and the entrant list recomputes the same winners in any language; the order of the list does
    not matter and an entrant listed twice counts once.
    """
    if n < 0:
        raise ValueError("cannot draw a negative number of winners")
    ranked = sorted(set(entrants), key=lambda e: hashlib.sha256(f"{seed}|{e}".encode()).hexdigest())
    return ranked[:n]


@dataclass(frozen=True, slots=True)
class ScheduledDraw:
    """N winners among the buyers of the pool's day whose PAID order reached `min_order_cents` by `run_at`."""

    id: int
    pool_id: int
    prize_id: int
    name: str
    run_at: datetime
    winners: int
    min_order_cents: int
    status: ScheduleStatus = ScheduleStatus.PENDING
    seed: str | None = None
    entrants: tuple[str, ...] | None = None
    winner_ids: tuple[str, ...] | None = None
    ran_at: datetime | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.winners <= 100_000:
            raise ValueError("a scheduled draw has 1..100000 winners")
        if self.min_order_cents < 0:
            raise ValueError("the order threshold cannot be negative")

    def run(self, *, seed: str, entrants: Sequence[str], at: datetime) -> ScheduledDraw:
        """The draw, done: its winners picked from `seed` among `entrants`, and both recorded."""
        if self.status is ScheduleStatus.DONE:
            raise FlashSaleError(ErrorCode.CONFLICT, f"scheduled draw {self.id} ran already")
        if at < self.run_at:
            raise FlashSaleError(
                ErrorCode.CONFLICT, f"scheduled draw {self.id} runs at {self.run_at.isoformat()}"
            )
        pool = tuple(sorted(set(entrants)))
        return replace(
            self,
            status=ScheduleStatus.DONE,
            seed=seed,
            entrants=pool,
            winner_ids=tuple(winners(pool, self.winners, seed)),
            ran_at=at,
        )

    def verified(self) -> bool:
        """True when the recorded winners are what the recorded seed and entrants give (False if not run)."""
        if self.seed is None or self.entrants is None or self.winner_ids is None:
            return False
        return list(self.winner_ids) == winners(self.entrants, self.winners, self.seed)
