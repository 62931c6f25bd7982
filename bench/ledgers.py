"""Our stock ledger engines through the public contract: single `reserve` calls, and batches."""

from __future__ import annotations

import random
import secrets
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import redis as redis_client

from bench.report import Result
from bench.workload import (
    FAR_FUTURE_S,
    PER_USER_LIMIT,
    Check,
    Decide,
    DecideMany,
    Level,
    Request,
    Run,
    Shape,
    check_sale,
    replay_batched,
    replay_single,
)
from flashsale.domain.sale import ItemTerms
from flashsale.ledger.contract import Decision, Ledger
from flashsale.ledger.redis import RedisLedger, redis_ledger_from_url

USED_BY_SAMPLE = 500  # users whose count is read back from the engine and compared with the grants


def open_sale(ledger: Ledger, shape: Shape) -> None:
    """Configure every item of the shape as on sale now, with holds that outlive the run."""
    now = time.time()
    for item in shape.item_ids:
        ledger.configure(
            ItemTerms(
                item,
                shape.quota_per_item,
                PER_USER_LIMIT,
                opens_at=now - 60,
                closes_at=now + FAR_FUTURE_S,
                hold_ttl_s=FAR_FUTURE_S,
            )
        )


class Reserver(Protocol):
    """Anything with the ledger's `reserve`: a ledger, or a BatchingReserver in front of one."""

    def reserve(self, *, item_id: int, user_id: str, qty: int, request_id: str) -> Decision: ...


def single_decider(reserver: Reserver) -> Decide:
    """Return a decide function making one `reserve` call per request."""
    reserve = reserver.reserve

    def decide(r: Request) -> bool:
        return reserve(item_id=r.item_id, user_id=r.user_id, qty=1, request_id=r.request_id).hold is not None

    return decide


def batch_decider(ledger: Ledger) -> DecideMany:
    """Return a decide function making one `reserve_many` call per batch of requests."""
    reserve_many = ledger.reserve_many

    def decide(batch: Sequence[Request]) -> list[bool]:
        decisions = reserve_many([(r.item_id, r.user_id, 1, r.request_id) for r in batch])
        return [d.hold is not None for d in decisions]

    return decide


def check_ledger(ledger: Ledger, shape: Shape, run: Run) -> Check:
    """Check the sale on the engine's own counters, and a sample of its per-user counts."""
    levels = []
    for item in shape.item_ids:
        lv = ledger.stock(item)
        levels.append(Level(item, lv.quota, lv.available, lv.held, lv.sold))
    check = check_sale(levels, run)
    granted = Counter(r.user_id for r in run.granted)
    buyers = shape.buyers()
    sample = random.Random(0).sample(buyers, min(USED_BY_SAMPLE, len(buyers)))
    wrong = [u for u, item in sample if ledger.used_by(item, u) != granted[u]]
    if wrong:
        return Check(
            False, f"engine's per-user counts disagree with the grants for {wrong[:3]}; {check.detail}"
        )
    return Check(check.ok, f"{check.detail}; used_by matches grants for {len(sample)} sampled users")


def bench_single(
    ledger: Ledger,
    shape: Shape,
    *,
    engine: str,
    threads: int,
    sample_every: int,
    target: float | None = None,
    via: Reserver | None = None,
) -> Result:
    """Replay the crowd with one `reserve` call per request, on `ledger` or through `via` in front of it."""
    open_sale(ledger, shape)
    reserver = via or ledger
    run = replay_single(
        shape.crowd(), threads=threads, decider=lambda: single_decider(reserver), sample_every=sample_every
    )
    how = f"{threads} thread{'s' if threads > 1 else ''}, 1 call/request"
    return Result(engine, shape.label, "decisions/s", run, check_ledger(ledger, shape, run), how, target)


def bench_batched(
    ledger: Ledger, shape: Shape, *, engine: str, threads: int, batch: int, target: float | None = None
) -> Result:
    """Replay the crowd on `ledger` with one `reserve_many` call per `batch` requests."""
    open_sale(ledger, shape)
    run = replay_batched(shape.crowd(), threads=threads, batch=batch, decider=lambda: batch_decider(ledger))
    how = f"{threads} thread{'s' if threads > 1 else ''}, reserve_many × {batch}"
    return Result(engine, shape.label, "decisions/s", run, check_ledger(ledger, shape, run), how, target)


@contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    """Yield `url` with a fresh key prefix; delete every key under that prefix afterwards."""
    prefix = f"bench-{secrets.token_hex(4)}"
    try:
        yield f"{url}?prefix={prefix}"
    finally:
        with redis_client.Redis.from_url(url) as client:
            for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                client.unlink(key)


@contextmanager
def redis_ledger(url: str) -> Iterator[RedisLedger]:
    """Yield a Redis ledger under a fresh key prefix, deleting its keys afterwards."""
    with redis_prefix(url) as prefixed:
        ledger = redis_ledger_from_url(prefixed, time.time)
        try:
            yield ledger
        finally:
            ledger.close()


def redis_script_usec(url: str) -> int:
    """Return the server CPU microseconds spent in scripts so far (INFO commandstats)."""
    with redis_client.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{cmd}", {}).get("usec", 0)) for cmd in ("eval", "evalsha"))
