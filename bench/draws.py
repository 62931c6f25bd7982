"""Draws on one hot prize pool, beside the flash ledger's reserve on one hot item in the same run.

The crowd is the flash sale's (request i from user i // 3, three tries each), drawing from one pool
instead of buying one item: every user holds 2 draws (granted before the clock starts), so the
third try is refused NO_ENTITLEMENT as the flash sale's third try is refused LIMIT_EXCEEDED. The
pool has a scarce top prize (gone about halfway), a second prize with a daily cap, and
thanks-for-playing, so draws that land on a prize already gone are part of the run. The draw row's
`how` gives its rate over the flash ledger row measured just before it on the same engine and
threads.

The check reads the engine's own counters: no prize over its stock or today's cap, the engine's
awards no more than the draws it acknowledged, and for 500 sampled users the balance the engine
keeps equals 2 minus the draws they were told they made.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from bench.ledgers import bench_single, redis_prefix, redis_script_usec
from bench.report import Result
from bench.workload import TRIES_PER_USER, Check, Request, Run, Shape, replay_single
from flashsale.domain.draws import PoolTerms, PrizeTerms
from flashsale.draws import DrawLedger, MemoryDrawLedger, draw_ledger_from_url
from flashsale.ledger.memory import MemoryLedger
from flashsale.ledger.redis import redis_ledger_from_url

POOL = 1
DAY = "2026-11-11"
DRAWS_PER_USER = 2
BALANCE_SAMPLE = 500
HOT_POOL = "1 hot pool"


def open_pool(ledger: DrawLedger, shape: Shape) -> PoolTerms:
    """Configure the hot pool (sized from the crowd) and give every user their draws."""
    draws = shape.requests // TRIES_PER_USER * DRAWS_PER_USER
    terms = PoolTerms(
        POOL,
        (
            PrizeTerms(1, weight=1, stock=max(1, draws // 20)),
            PrizeTerms(2, weight=3, stock=max(1, draws // 2), daily_cap=max(1, draws // 2)),
        ),
        thanks_weight=4,
    )
    ledger.configure(terms)
    for user, _ in shape.buyers():
        ledger.grant(
            pool_id=POOL, user_id=user, source="free_daily", grant_key="bench",
            draws=DRAWS_PER_USER, day=DAY, daily_cap=1,
        )  # fmt: skip
    return terms


def check_pool(ledger: DrawLedger, shape: Shape, run: Run) -> Check:
    """No prize over its stock or cap, awards within the acknowledged draws, balances as the clients saw."""
    levels = ledger.levels(POOL, DAY)
    over = [lv.prize_id for lv in levels if not lv.within_limits]
    awarded = sum(lv.awarded for lv in levels)
    made = Counter(r.user_id for r in run.granted)
    users = [user for user, _ in shape.buyers()]
    sample = random.Random(0).sample(users, min(BALANCE_SAMPLE, len(users)))
    wrong = [u for u in sample if ledger.balance(POOL, u) != DRAWS_PER_USER - made[u]]
    detail = (
        f"{len(run.granted)} draws acknowledged, {awarded} prizes awarded "
        f"({', '.join(f'#{lv.prize_id} {lv.awarded}/{lv.stock}' for lv in levels)}); "
        f"max draws per user {max(made.values(), default=0)} (entitled {DRAWS_PER_USER}); "
        f"balances match for {len(sample)} sampled users"
    )
    problems = []
    if over:
        problems.append(f"prizes {over} over their stock or daily cap")
    if awarded > len(run.granted):
        problems.append(f"{awarded} prizes awarded for {len(run.granted)} draws")
    if max(made.values(), default=0) > DRAWS_PER_USER:
        problems.append("a user drew more than their entitlements")
    if wrong:
        problems.append(f"balances disagree with the draws for {wrong[:3]}")
    return Check(not problems, "; ".join([*problems, detail]))


def bench_draws(ledger: DrawLedger, shape: Shape, *, engine: str, threads: int, sample_every: int) -> Result:
    """Replay the crowd as draws on the hot pool (opened by `open_pool`), one `draw` call per request."""

    def decider() -> Callable[[Request], bool]:
        draw = ledger.draw
        return lambda r: draw(pool_id=POOL, user_id=r.user_id, request_id=r.request_id, day=DAY).drawn

    run = replay_single(shape.crowd(), threads=threads, decider=decider, sample_every=sample_every)
    how = f"{threads} thread{'s' if threads > 1 else ''}, 1 call/draw"
    return Result(engine, HOT_POOL, "draws/s", run, check_pool(ledger, shape, run), how)


def _beside(draws: Result, flash: Result) -> Result:
    ratio = draws.rate / flash.rate if flash.rate else 0.0
    return replace(
        draws, how=f"{draws.how}; {ratio:.2f}× the flash ledger's reserve (same engine and threads, this run)"
    )


def memory_steps(requests: int) -> list[tuple[str, Callable[[], Result]]]:
    """The in-process flash ledger's reserve, then the in-process draw ledger's draw, one thread each."""
    shape = Shape(requests, 1)
    measured: dict[str, Result] = {}

    def flash() -> Result:
        measured["flash"] = bench_single(
            MemoryLedger(time.time),
            shape,
            engine="flash ledger (memory), reserve",
            threads=1,
            sample_every=64,
        )
        return measured["flash"]

    def draws() -> Result:
        ledger = MemoryDrawLedger()
        open_pool(ledger, shape)
        result = bench_draws(ledger, shape, engine="draw ledger (memory), draw", threads=1, sample_every=64)
        return _beside(result, measured["flash"])

    return [("flash ledger (memory) / 1 hot item", flash), ("draw ledger (memory) / 1 hot pool", draws)]


def redis_steps(url: str, requests: int, threads: int) -> list[tuple[str, Callable[[], Result]]]:
    """The Redis flash ledger's reserve, then the Redis draw ledger's draw: a script call each."""
    shape = Shape(requests, 1)
    measured: dict[str, Result] = {}

    def with_cpu(result: Result, spent_usec: int) -> Result:
        per = spent_usec / result.run.decisions if result.run.decisions else 0.0
        return replace(result, how=f"{result.how}; Redis CPU {per:.1f} µs/decision")

    def flash() -> Result:
        with redis_prefix(url) as prefixed:
            ledger = redis_ledger_from_url(prefixed, time.time)
            try:
                before = redis_script_usec(url)
                result = bench_single(
                    ledger, shape, engine="flash ledger (redis), reserve", threads=threads, sample_every=1
                )
                measured["flash"] = with_cpu(result, redis_script_usec(url) - before)
            finally:
                ledger.close()
        return measured["flash"]

    def draws() -> Result:
        with redis_prefix(url) as prefixed:
            ledger = draw_ledger_from_url(prefixed)
            try:
                open_pool(ledger, shape)  # the grants are set-up: not in the script time below
                before = redis_script_usec(url)
                result = bench_draws(
                    ledger, shape, engine="draw ledger (redis), draw", threads=threads, sample_every=1
                )
                result = with_cpu(result, redis_script_usec(url) - before)
            finally:
                ledger.close()
        return _beside(result, measured["flash"])

    return [("flash ledger (redis) / 1 hot item", flash), ("draw ledger (redis) / 1 hot pool", draws)]
