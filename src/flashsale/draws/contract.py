"""The draw ledger contract: every engine (in-process, Redis) gives exactly these guarantees.

The draw ledger is to a prize pool what the stock ledger is to an item: it decides, atomically and
under any crowd, who may draw, what they win and whether a prize is left. The store records what it
decided (flashsale.services.draws); the ledger is rebuilt from that record with `restore`.

Guarantees shared by all engines:
- A prize is never over-awarded: at every instant, per prize, `awarded <= stock` and, for every day,
  `awarded that day <= daily_cap` (when it has one). A prize's stock and caps count every award the
  engine made, replays included once.
- `draw` is one atomic decision: the pool is known (else UNKNOWN_POOL); a known
  `(pool, user, request_id)` answers the first decision again (`replayed=True`) and changes nothing;
  otherwise the user needs an entitlement (else NO_ENTITLEMENT) and some prize with a weight above
  zero must have stock and room under today's cap (else PRIZE_GONE: the entitlement is kept, no
  draw happens). Then one entitlement is spent and the roll picks, as
  `flashsale.domain.draws.pick` does: `roll % total_weight` walks the prizes in the pool's order,
  thanks-for-playing last; a picked prize that is gone (stock or today's cap) is thanks-for-playing.
  Refusals are not remembered: they spent nothing, so a retry is a fresh decision.
- An entitlement is spent once: a user's balance is the draws granted minus the draws made, never
  negative, whatever the number of concurrent draws.
- `grant` is one atomic decision too: a known `(pool, user, grant_key)` grants nothing again
  (`replayed=True`, so a replayed share or order grants nothing); otherwise at most `daily_cap`
  grants per (pool, user, source, day) go through (else GRANT_LIMIT_REACHED, nothing granted).
- Time and randomness come from the caller: `day` is the pool's calendar day of the decision (caps
  reset when it changes), `roll` a uniform number in [0, 2**48) from the injected RNG (`secrets` in
  production, seeded in tests), and award ids are unguessable (flashsale.ledger.ids).
- `configure` registers a pool or changes its prizes; a prize's stock below what it awarded is
  refused with QUOTA_BELOW_COMMITTED and nothing changes. A daily cap may go below what the prize
  awarded today: that is how an operator stops a prize for the rest of the day (no award follows).
  A prize left out of the new terms keeps its counters but can no longer be drawn.
- `restore` replaces everything the engine knows of a pool with what the records say (terms, grants
  and draws as stored), so the in-process engine is rebuilt from the store after a restart, and
  (`only_if_absent`) a Redis that lost a pool gets it back without overwriting a live one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from flashsale.domain.draws import PoolTerms
from flashsale.domain.errors import ErrorCode


class DrawDecision(NamedTuple):
    """The answer to `draw`: an award id and the prize (None: thanks for playing), or a refusal code."""

    award_id: str | None
    prize_id: int | None = None
    day: str = ""
    balance: int = 0  # the user's entitlements left in the pool after this decision
    code: ErrorCode | None = None
    replayed: bool = False

    @property
    def drawn(self) -> bool:
        return self.award_id is not None


class GrantDecision(NamedTuple):
    """The answer to `grant`: how many draws this call granted (0 on a replay or a refusal)."""

    granted: int
    balance: int
    code: ErrorCode | None = None
    replayed: bool = False


class GrantRecord(NamedTuple):
    """A stored grant, for `restore`."""

    user_id: str
    source: str
    grant_key: str
    draws: int
    day: str


class DrawRecord(NamedTuple):
    """A stored draw, for `restore`."""

    user_id: str
    request_id: str
    award_id: str
    prize_id: int | None
    day: str


@dataclass(frozen=True, slots=True)
class PrizeLevel:
    prize_id: int
    stock: int
    awarded: int
    awarded_today: int
    daily_cap: int | None

    @property
    def within_limits(self) -> bool:
        """True when the prize was not over-awarded, in total or today (under a cap never lowered today)."""
        return 0 <= self.awarded <= self.stock and (
            self.daily_cap is None or 0 <= self.awarded_today <= self.daily_cap
        )


@runtime_checkable
class DrawLedger(Protocol):
    def configure(self, pool: PoolTerms) -> None:
        """Register a pool or change its terms; a stock below a prize's awards is QUOTA_BELOW_COMMITTED."""
        ...

    def grant(
        self, *, pool_id: int, user_id: str, source: str, grant_key: str, draws: int, day: str, daily_cap: int
    ) -> GrantDecision:
        """Give `draws` entitlements once per `grant_key`, at most `daily_cap` grants per source and day."""
        ...

    def draw(self, *, pool_id: int, user_id: str, request_id: str, day: str) -> DrawDecision:
        """Spend one entitlement and pick a prize, atomically and once per request id (see module doc)."""
        ...

    def balance(self, pool_id: int, user_id: str) -> int:
        """The entitlements `user_id` has left in the pool (0 for an unknown pool or user)."""
        ...

    def levels(self, pool_id: int, day: str) -> list[PrizeLevel]:
        """Every prize's stock and awards, in total and on `day`; UNKNOWN_POOL when not configured."""
        ...

    def restore(
        self,
        pool: PoolTerms,
        grants: Iterable[GrantRecord],
        draws: Iterable[DrawRecord],
        *,
        only_if_absent: bool = False,
    ) -> bool:
        """Replace the pool's state with the given terms and records (the store's, after a restart).

        With `only_if_absent`, a pool the engine knows is left as it is, checked and written in one
        atomic step, so a process that finds an emptied Redis never overwrites the pool another
        process restored (and drew on) meanwhile. Return whether the pool was written.
        """
        ...

    def close(self) -> None:
        """Release connections (a network engine's pool); harmless to call twice."""
        ...
