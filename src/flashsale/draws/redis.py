"""The Redis draw ledger: the contract of `flashsale.draws.contract`, decided by Lua scripts.

Each decision (configure, grant, draw) is one script call, so it is atomic on the server whatever
the number of clients; every check comes before the first write, since Lua cannot roll back. The
roll and the award id are made here, by the injected RNG and `flashsale.ledger.ids` (Lua has no
secure randomness), and passed in; a replay answers the first decision and ignores them. Keys are
listed in draws/lua/lib.lua: every key of a pool shares the hash tag `{d:<pool>}`, so one pool
lives in one slot. A day's counters expire three days after their last write: caps only ever ask
about today. Needs Redis 7.0 or later (the `#!lua` shebang).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from typing import Any

from redis import Redis
from redis.exceptions import WatchError

from flashsale.domain.draws import ROLL_BITS, PoolTerms
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.draws.contract import DrawDecision, DrawRecord, GrantDecision, GrantRecord, PrizeLevel
from flashsale.draws.rng import Rng, system_rng
from flashsale.ledger.ids import new_hold_ids
from flashsale.redis_url import node_client, take_options

SCRIPTS = ("configure", "grant", "draw")
DAY_TTL_S = 3 * 86400  # as in lua/lib.lua


@cache
def _script_texts() -> dict[str, str]:
    """Read every script, each prefixed with `#!lua` (refused up front when out of memory) and the library."""
    lua = files("flashsale.draws") / "lua"
    lib = (lua / "lib.lua").read_text()
    return {name: f"#!lua\n{lib}\n{(lua / f'{name}.lua').read_text()}" for name in SCRIPTS}


def _spec(pool: PoolTerms) -> str:
    return ",".join(
        f"{p.prize_id}:{p.weight}:{p.stock}:{-1 if p.daily_cap is None else p.daily_cap}" for p in pool.prizes
    )


def _ufield(user: str, key: str) -> str:
    return f"{len(user.encode())}|{user}{key}"


def _decision(rec: str, balance: int, *, replayed: bool) -> DrawDecision:
    award_id, prize, day = rec.split("|")
    return DrawDecision(award_id, int(prize) if prize else None, day, balance, replayed=replayed)


class RedisDrawLedger:
    """`flashsale.draws.contract.DrawLedger` on one Redis server; safe to share between threads."""

    def __init__(self, client: Redis, rng: Rng | None = None, *, prefix: str = "fs") -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"key prefix {prefix!r} must be non-empty and free of braces (hash tags)")
        self.client = client
        self.prefix = prefix
        self._rng = rng or system_rng()
        self._scripts = {name: client.register_script(text) for name, text in _script_texts().items()}

    def _key(self, pool_id: int, name: str) -> str:
        return f"{self.prefix}:{{d:{pool_id}}}:{name}"

    def _run(self, name: str, pool_id: int, *args: Any) -> Any:
        return self._scripts[name](keys=(), args=(self.prefix, pool_id, *args))

    def close(self) -> None:
        """Close the client and its connections (closing again is harmless)."""
        self.client.close()
        self.client.connection_pool.disconnect()

    def configure(self, pool: PoolTerms) -> None:
        reply = self._run("configure", pool.pool_id, pool.thanks_weight, _spec(pool))
        if reply[0] != "ok":
            raise FlashSaleError(
                ErrorCode.QUOTA_BELOW_COMMITTED, f"prize {reply[1]} awarded {reply[2]}, above its new stock"
            )

    def grant(
        self, *, pool_id: int, user_id: str, source: str, grant_key: str, draws: int, day: str, daily_cap: int
    ) -> GrantDecision:
        status, balance = self._run("grant", pool_id, user_id, source, grant_key, draws, day, daily_cap)
        if status == "ok":
            return GrantDecision(draws, int(balance))
        if status == "replay":
            return GrantDecision(0, int(balance), replayed=True)
        return GrantDecision(0, int(balance), ErrorCode(status))

    def draw(self, *, pool_id: int, user_id: str, request_id: str, day: str) -> DrawDecision:
        award_id = new_hold_ids(1)[0]
        reply = self._run(
            "draw", pool_id, user_id, request_id, day, award_id, self._rng.getrandbits(ROLL_BITS)
        )
        status = reply[0]
        if status in ("ok", "replay"):
            return _decision(reply[1], int(reply[2]), replayed=status == "replay")
        balance = int(reply[1]) if len(reply) > 1 else 0
        return DrawDecision(None, balance=balance, code=ErrorCode(status))

    def balance(self, pool_id: int, user_id: str) -> int:
        return int(self.client.hget(self._key(pool_id, "bal"), user_id) or 0)

    def levels(self, pool_id: int, day: str) -> list[PrizeLevel]:
        pipe = self.client.pipeline(transaction=True)  # one snapshot: MULTI reads at one instant
        pipe.hget(self._key(pool_id, "terms"), "prizes")
        pipe.hgetall(self._key(pool_id, "awarded"))
        pipe.hgetall(self._key(pool_id, f"day:{day}"))
        spec, awarded, today = pipe.execute()
        if spec is None:
            raise FlashSaleError(ErrorCode.UNKNOWN_POOL, f"no prize pool {pool_id}")
        levels = []
        for part in filter(None, spec.split(",")):
            prize, _weight, stock, cap = part.split(":")
            levels.append(
                PrizeLevel(
                    int(prize),
                    int(stock),
                    int(awarded.get(prize, 0)),
                    int(today.get(f"p:{prize}", 0)),
                    None if cap == "-1" else int(cap),
                )
            )
        return levels

    def restore(
        self,
        pool: PoolTerms,
        grants: Iterable[GrantRecord],
        draws: Iterable[DrawRecord],
        *,
        only_if_absent: bool = False,
    ) -> bool:
        # Aggregate first, then replace the pool's keys in one MULTI: no decision sees half of it.
        balances: Counter[str] = Counter()
        grant_fields: dict[str, int] = {}
        day_counts: dict[str, Counter[str]] = {}
        awarded: Counter[str] = Counter()
        reqs: dict[str, str] = {}
        for g in grants:
            grant_fields[_ufield(g.user_id, g.grant_key)] = g.draws
            balances[g.user_id] += g.draws
            day_counts.setdefault(g.day, Counter())[f"g:{g.source}|{g.user_id}"] += 1
        for d in draws:
            balances[d.user_id] -= 1
            prize = "" if d.prize_id is None else str(d.prize_id)
            if prize:
                awarded[prize] += 1
                day_counts.setdefault(d.day, Counter())[f"p:{prize}"] += 1
            reqs[_ufield(d.user_id, d.request_id)] = f"{d.award_id}|{prize}|{d.day}"
        stale = list(self.client.scan_iter(match=f"{self.prefix}:{{d:{pool.pool_id}}}:*", count=1000))
        terms_key = self._key(pool.pool_id, "terms")
        with self.client.pipeline(transaction=True) as pipe:
            if only_if_absent:
                # WATCH: a pool configured by another process meanwhile aborts the MULTI (no overwrite).
                pipe.watch(terms_key)
                if pipe.exists(terms_key):
                    return False
                pipe.multi()
            if stale:
                pipe.delete(*stale)
            pipe.hset(terms_key, mapping={"thanks": pool.thanks_weight, "prizes": _spec(pool)})
            for name, mapping in (
                ("bal", dict(balances)),
                ("grants", grant_fields),
                ("awarded", dict(awarded)),
                ("reqs", reqs),
            ):
                if mapping:
                    pipe.hset(self._key(pool.pool_id, name), mapping=mapping)  # type: ignore[arg-type]
            for day, counts in day_counts.items():
                pipe.hset(self._key(pool.pool_id, f"day:{day}"), mapping=dict(counts))  # type: ignore[arg-type]
                pipe.expire(self._key(pool.pool_id, f"day:{day}"), DAY_TTL_S)
            try:
                pipe.execute()
            except WatchError:
                return False
        return True


def redis_draw_ledger_from_url(url: str, rng: Rng | None = None) -> RedisDrawLedger:
    """Build a draw ledger from `redis://host:port/db?prefix=NAME`; other options go to redis-py.

    It takes the stock ledger's URL as it is: `buckets=N` (the stock ledger's option) is ignored.
    """
    options, parts = take_options(url, {"prefix": "fs"}, ignored=frozenset({"buckets"}))
    return RedisDrawLedger(node_client(parts), rng, prefix=options["prefix"])
