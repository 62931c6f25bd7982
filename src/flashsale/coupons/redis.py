"""The Redis coupon ledger: the contract of `flashsale.coupons.contract`, decided by Lua scripts.

Each write (claim, redeem, restore, revoke, a budget) is one script call, so every check comes
before the first write and nothing interleaves: a crowd claiming one hot wave never over-issues.
Time is the caller's clock and coupon ids are drawn here (`flashsale.ledger.ids`), so the scripts
never read the wall clock or make up an id. Reads are plain commands. The key layout is in
lua/lib.lua; the prefix is `?prefix=` (default "fc"), apart from the stock ledger's "fs".

Records are JSON (cjson in the scripts) with numbers kept as strings: cjson prints numbers with 14
significant digits, which would round an epoch time with microseconds.

One node, as the stock ledger: a claim touches the wave, the coupon records, the idempotency keys
and the user's list. `load` sends the whole state in one argument; fine for the coupons of a
campaign (hundreds of thousands), not for a platform's history.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from typing import Any

from redis import Redis

from flashsale.clock import Clock
from flashsale.coupons.contract import BudgetLevel, ClaimDecision, WaveLevel
from flashsale.domain.coupons import Coupon, CouponState, WaveTerms
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.ledger.ids import new_hold_ids
from flashsale.redis_url import node_client, take_options

SCRIPTS = ("claim", "redeem", "restore", "revoke", "budget", "load")
NO_BUDGET = "none"
NO_END = "-1"  # a wave's `closes` when it has no end (Lua's tonumber has no infinity)
_REFUSED = {code.value: ClaimDecision(None, code) for code in ErrorCode}


@cache
def _script_texts() -> dict[str, str]:
    """Read every script, each after the shared library (`#!lua`: refused up front when out of memory)."""
    lua = files("flashsale.coupons") / "lua"
    lib = (lua / "lib.lua").read_text()
    return {name: f"#!lua\n{lib}\n{(lua / f'{name}.lua').read_text()}" for name in SCRIPTS}


def _coupon(rec: str) -> Coupon:
    c = json.loads(rec)
    return Coupon(
        coupon_id=c["id"],
        wave_id=int(c["w"]),
        template_id=int(c["t"]),
        user_id=c["u"],
        request_id=c["r"],
        state=CouponState(c["s"]),
        claimed_at=float(c["c"]),
        valid_from=float(c["f"]),
        valid_until=float(c["v"]),
        order_id=c.get("o"),
        discount_cents=int(c["d"]),
    )


def _record(coupon: Coupon) -> str:
    """The JSON record the scripts keep of a coupon (the inverse of `_coupon`)."""
    rec = {
        "id": coupon.coupon_id,
        "w": str(coupon.wave_id),
        "t": str(coupon.template_id),
        "u": coupon.user_id,
        "r": coupon.request_id,
        "s": coupon.state.value,
        "c": repr(coupon.claimed_at),
        "f": repr(coupon.valid_from),
        "v": repr(coupon.valid_until),
        "d": str(coupon.discount_cents),
    }
    if coupon.order_id is not None:
        rec["o"] = coupon.order_id
    return json.dumps(rec)


def _closes(terms: WaveTerms) -> str:
    return NO_END if math.isinf(terms.closes) else repr(terms.closes)


class RedisCouponLedger:
    """`flashsale.coupons.contract.CouponLedger` on one Redis server; safe across threads and processes."""

    def __init__(self, client: Redis, clock: Clock = time.time, *, prefix: str = "fc") -> None:
        if not prefix or any(ch in prefix for ch in "{}*?["):
            raise ValueError(
                f"key prefix {prefix!r} must be non-empty and free of braces and glob characters"
            )
        self.client = client
        self.prefix = prefix
        self._clock = clock
        self._scripts = {name: client.register_script(text) for name, text in _script_texts().items()}

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()

    def _run(self, name: str, *args: Any) -> Any:
        return self._scripts[name](keys=(), args=(self.prefix, *args))

    def configure_wave(self, terms: WaveTerms) -> WaveLevel:
        key = f"{self.prefix}:w:{terms.wave_id}"
        # MULTI: the issued count answered is the one beside the terms written.
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "template": terms.template_id,
                    "total": terms.total,
                    "limit": terms.per_user_limit,
                    "opens": repr(terms.opens),
                    "closes": _closes(terms),
                    "vfrom": repr(terms.valid_from),
                    "vuntil": repr(terms.valid_until),
                },
            )
            pipe.hget(key, "issued")
            _, issued = pipe.execute()
        return WaveLevel(terms.wave_id, terms.total, int(issued or 0))

    def configure_budget(self, template_id: int, budget_cents: int | None) -> BudgetLevel:
        reply = self._run("budget", template_id, NO_BUDGET if budget_cents is None else budget_cents)
        if reply[0] == ErrorCode.CONFLICT:
            raise FlashSaleError(
                ErrorCode.CONFLICT, f"budget {budget_cents} is below the {reply[1]} cents already spent"
            )
        return BudgetLevel(template_id, budget_cents, int(reply[1]))

    def claim(self, *, wave_id: int, user_id: str, request_id: str) -> ClaimDecision:
        reply = self._run("claim", wave_id, user_id, request_id, repr(self._clock()), new_hold_ids(1)[0])
        if reply[0] == "OK":
            return ClaimDecision(_coupon(reply[1]))
        if reply[0] == "REPLAY":
            return ClaimDecision(_coupon(reply[1]), replayed=True)
        return _REFUSED[reply[0]]

    def revoke(self, coupon_id: str) -> None:
        self._run("revoke", coupon_id)

    def _decided(self, reply: list[str], coupon_id: str, what: str) -> Coupon:
        if reply[0] != "OK":
            code = ErrorCode(reply[0])
            raise FlashSaleError(code, f"coupon {coupon_id!r} cannot be {what}: {code.value}")
        return _coupon(reply[1])

    def redeem(self, coupon_id: str, *, order_id: str, discount_cents: int) -> Coupon:
        reply = self._run("redeem", coupon_id, order_id, discount_cents, repr(self._clock()))
        return self._decided(reply, coupon_id, "redeemed")

    def restore(self, coupon_id: str, *, order_id: str) -> Coupon:
        reply = self._run("restore", coupon_id, order_id, repr(self._clock()))
        return self._decided(reply, coupon_id, "restored")

    def get(self, coupon_id: str) -> Coupon | None:
        rec = self.client.hget(f"{self.prefix}:coupons", coupon_id)
        return None if rec is None else _coupon(str(rec))

    def coupons_of(self, user_id: str) -> list[Coupon]:
        ids = self.client.lrange(f"{self.prefix}:u:{user_id}", 0, -1)
        if not ids:
            return []
        records = self.client.hmget(f"{self.prefix}:coupons", ids)
        return [_coupon(str(rec)) for rec in records if rec is not None]

    def wave_level(self, wave_id: int) -> WaveLevel:
        total, issued = self.client.hmget(f"{self.prefix}:w:{wave_id}", ["total", "issued"])
        if total is None:
            raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, f"no wave {wave_id}")
        return WaveLevel(wave_id, int(total), int(issued or 0))

    def budget_level(self, template_id: int) -> BudgetLevel:
        budget, spent = self.client.hmget(f"{self.prefix}:b:{template_id}", ["budget", "spent"])
        if spent is None:
            raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, f"no template {template_id}")
        return BudgetLevel(template_id, None if budget == NO_BUDGET else int(str(budget)), int(spent))

    def load(
        self,
        waves: Iterable[WaveTerms],
        budgets: Iterable[tuple[int, int | None]],
        coupons: Iterable[Coupon],
        *,
        only_if_empty: bool = False,
    ) -> bool:
        coupons = sorted(coupons, key=lambda c: c.claimed_at)
        issued = Counter(c.wave_id for c in coupons)
        claims: dict[int, Counter[str]] = defaultdict(Counter)
        spent: Counter[int] = Counter()
        for c in coupons:
            claims[c.wave_id][c.user_id] += 1
            if c.state is CouponState.REDEEMED:
                spent[c.template_id] += c.discount_cents
        state = {
            "waves": [
                {
                    "wave": t.wave_id,
                    "template": t.template_id,
                    "total": t.total,
                    "limit": t.per_user_limit,
                    "opens": repr(t.opens),
                    "closes": _closes(t),
                    "vfrom": repr(t.valid_from),
                    "vuntil": repr(t.valid_until),
                    "issued": issued[t.wave_id],
                    "claims": dict(claims[t.wave_id]),
                }
                for t in waves
            ],
            "budgets": [
                {"template": t, "budget": NO_BUDGET if b is None else b, "spent": spent[t]}
                for t, b in budgets
            ],
            "coupons": [_record(c) for c in coupons],
        }
        done = self._run("load", "1" if only_if_empty else "0", f"{self.prefix}:*", json.dumps(state))
        return bool(done)


def redis_coupon_ledger_from_url(url: str, clock: Clock) -> RedisCouponLedger:
    """Build a coupon ledger from `redis://host:port/db?prefix=NAME`; other options go to redis-py."""
    options, parts = take_options(url, {"prefix": "fc"})
    return RedisCouponLedger(node_client(parts), clock, prefix=options["prefix"])
