"""The in-process draw ledger: one lock, plain dicts. The store is the truth across restarts (`restore`)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable

from flashsale.domain.draws import ROLL_BITS, PoolTerms, PrizeTerms, any_prize_left, has_room, pick
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.draws.contract import DrawDecision, DrawRecord, GrantDecision, GrantRecord, PrizeLevel
from flashsale.draws.rng import BufferedSystemRng, Rng
from flashsale.ledger.ids import HoldIdPool


class _Pool:
    """Counters of one pool; only touched under the ledger lock."""

    __slots__ = ("awarded", "balances", "day_awarded", "day_grants", "draws", "grants", "terms")

    def __init__(self, terms: PoolTerms) -> None:
        self.terms = terms
        self.awarded: dict[int, int] = defaultdict(int)
        self.day_awarded: dict[tuple[str, int], int] = defaultdict(int)
        self.day_grants: dict[tuple[str, str, str], int] = defaultdict(int)  # (day, source, user)
        self.balances: dict[str, int] = defaultdict(int)
        self.grants: set[tuple[str, str]] = set()  # (user, grant key)
        self.draws: dict[tuple[str, str], DrawDecision] = {}  # (user, request id) -> first decision

    def gone(self, day: str) -> bool:
        return not any_prize_left(self.terms, self.awarded.__getitem__, lambda p: self.day_awarded[day, p])

    def has_left(self, day: str, prize: PrizeTerms) -> bool:
        return has_room(prize, self.awarded[prize.prize_id], self.day_awarded[day, prize.prize_id])

    def award(self, day: str, prize_id: int | None) -> None:
        if prize_id is not None:
            self.awarded[prize_id] += 1
            self.day_awarded[day, prize_id] += 1


class MemoryDrawLedger:
    """Thread-safe in-process implementation of `flashsale.draws.contract.DrawLedger`."""

    def __init__(self, rng: Rng | None = None) -> None:
        self._rng = rng or BufferedSystemRng()  # called under the lock only
        self._lock = threading.Lock()
        self._pools: dict[int, _Pool] = {}
        self._ids = HoldIdPool()

    def _pool(self, pool_id: int) -> _Pool:
        pool = self._pools.get(pool_id)
        if pool is None:
            raise FlashSaleError(ErrorCode.UNKNOWN_POOL, f"no prize pool {pool_id}")
        return pool

    def configure(self, pool: PoolTerms) -> None:
        with self._lock:
            book = self._pools.get(pool.pool_id)
            if book is None:
                self._pools[pool.pool_id] = _Pool(pool)
                return
            for prize in pool.prizes:
                if prize.stock < book.awarded[prize.prize_id]:
                    raise FlashSaleError(
                        ErrorCode.QUOTA_BELOW_COMMITTED,
                        f"prize {prize.prize_id} awarded more than a stock of {prize.stock}",
                    )
            book.terms = pool

    def grant(
        self, *, pool_id: int, user_id: str, source: str, grant_key: str, draws: int, day: str, daily_cap: int
    ) -> GrantDecision:
        with self._lock:
            pool = self._pools.get(pool_id)
            if pool is None:
                return GrantDecision(0, 0, ErrorCode.UNKNOWN_POOL)
            if (user_id, grant_key) in pool.grants:
                return GrantDecision(0, pool.balances[user_id], replayed=True)
            if pool.day_grants[day, source, user_id] >= daily_cap:
                return GrantDecision(0, pool.balances[user_id], ErrorCode.GRANT_LIMIT_REACHED)
            pool.grants.add((user_id, grant_key))
            pool.day_grants[day, source, user_id] += 1
            pool.balances[user_id] += draws
            return GrantDecision(draws, pool.balances[user_id])

    def draw(self, *, pool_id: int, user_id: str, request_id: str, day: str) -> DrawDecision:
        with self._lock:
            pool = self._pools.get(pool_id)
            if pool is None:
                return DrawDecision(None, code=ErrorCode.UNKNOWN_POOL)
            first = pool.draws.get((user_id, request_id))
            if first is not None:
                return first._replace(balance=pool.balances[user_id], replayed=True)
            if pool.balances[user_id] <= 0:
                return DrawDecision(None, code=ErrorCode.NO_ENTITLEMENT)
            if pool.gone(day):
                return DrawDecision(None, balance=pool.balances[user_id], code=ErrorCode.PRIZE_GONE)
            prize_id = pick(pool.terms, self._rng.getrandbits(ROLL_BITS), lambda p: pool.has_left(day, p))
            pool.balances[user_id] -= 1
            pool.award(day, prize_id)
            decision = DrawDecision(self._ids(), prize_id, day, pool.balances[user_id])
            pool.draws[user_id, request_id] = decision
            return decision

    def balance(self, pool_id: int, user_id: str) -> int:
        with self._lock:
            pool = self._pools.get(pool_id)
            return 0 if pool is None else pool.balances.get(user_id, 0)

    def levels(self, pool_id: int, day: str) -> list[PrizeLevel]:
        with self._lock:
            pool = self._pool(pool_id)
            return [
                PrizeLevel(
                    p.prize_id,
                    p.stock,
                    pool.awarded[p.prize_id],
                    pool.day_awarded[day, p.prize_id],
                    p.daily_cap,
                )
                for p in pool.terms.prizes
            ]

    def restore(
        self,
        pool: PoolTerms,
        grants: Iterable[GrantRecord],
        draws: Iterable[DrawRecord],
        *,
        only_if_absent: bool = False,
    ) -> bool:
        book = _Pool(pool)
        for g in grants:
            book.grants.add((g.user_id, g.grant_key))
            book.day_grants[g.day, g.source, g.user_id] += 1
            book.balances[g.user_id] += g.draws
        for d in draws:
            book.balances[d.user_id] -= 1
            book.award(d.day, d.prize_id)
            book.draws[d.user_id, d.request_id] = DrawDecision(d.award_id, d.prize_id, d.day)
        with self._lock:
            if only_if_absent and pool.pool_id in self._pools:
                return False
            self._pools[pool.pool_id] = book
            return True

    def close(self) -> None:
        """Nothing to release in process."""
