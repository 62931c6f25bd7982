"""The benchmarks `--only` can name, their sizes (full and quick), and the services each needs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from bench import embedded, http, postgres, read_flood, waiting_room
from bench.ledgers import bench_batched, bench_single, redis_ledger, redis_script_usec
from bench.report import Result, Skipped
from bench.workload import Shape
from flashsale.ledger.memory import MemoryLedger
from flashsale.ledger.redis import RedisLedger
from flashsale.ledger.redis_batching import BatchingReserver

Step = tuple[str, Callable[[], Result | Skipped]]

# Targets we promised; printed beside the figures, never used to pass or fail a run.
MEMORY_TARGET = 300_000
REDIS_BATCHED_TARGET = 150_000
HTTP_TARGET = 10_000

REDIS_SINGLE_THREADS = 8
REDIS_BATCH_THREADS = 4
REDIS_CALLER_THREADS = 32  # concurrent single callers whose calls the BatchingReserver coalesces
BATCH = 64


@dataclass(frozen=True)
class Profile:
    """Requests per scenario for each engine, sized so a step takes seconds, not minutes, on 2 cores."""

    name: str
    pg: int
    memory: int
    redis_single: int
    redis_batched: int
    redis_coalesced: int
    http: int
    read_flood: int  # purchases replayed once alone and once under the GET /sessions flood
    embedded: int  # purchases per crowd size on the embedded default
    room_shoppers: int  # shoppers waiting in a room beside the buy path (read_flood's purchases)


def shapes(requests: int) -> list[Shape]:
    """Return the two scenarios every engine runs: one hot item, and 100 items."""
    return [Shape(requests, 1), Shape(requests, 100)]


FULL = Profile(
    "full",
    pg=6_000,
    memory=600_000,
    redis_single=30_000,
    redis_batched=150_000,
    redis_coalesced=30_000,
    http=10_000,
    read_flood=4_000,
    embedded=8_000,
    room_shoppers=10_000,
)
QUICK = Profile(
    "quick",
    pg=400,
    memory=30_000,
    redis_single=2_000,
    redis_batched=10_000,
    redis_coalesced=2_000,
    http=600,
    read_flood=300,
    embedded=400,
    room_shoppers=300,
)

NEEDS: dict[str, set[str]] = {
    "baseline-a": {"postgres"},
    "baseline-b": {"postgres"},
    "memory": set(),
    "redis": {"redis"},
    "http": {"redis", "postgres"},
    "read-flood": set(),  # the embedded default: SQLite file + in-process ledger
    "embedded": set(),  # the same, at 20, 200 and 400 connections against a one-worker floor
    "waiting-room": set(),  # the embedded buy path beside a waiting room's crowd
}


@dataclass(frozen=True)
class Context:
    profile: Profile
    postgres_url: str | None
    redis_url: str | None


def _skip(engine: str, reason: str) -> Callable[[], Skipped]:
    return lambda: Skipped(engine, reason)


def _baseline(ctx: Context, name: str, bench: Callable[[str, Shape], Result]) -> list[Step]:
    if ctx.postgres_url is None:
        return [(name, _skip(name, "no PostgreSQL (set FLASHSALE_BENCH_POSTGRES_URL or install postgresql)"))]
    return [(f"{name} / {s.label}", partial(bench, ctx.postgres_url, s)) for s in shapes(ctx.profile.pg)]


def _memory(ctx: Context) -> list[Step]:
    steps: list[Step] = []
    for shape in shapes(ctx.profile.memory):
        single = partial(
            bench_single,
            MemoryLedger(time.time),
            shape,
            engine="memory ledger, reserve",
            threads=1,
            sample_every=64,
            target=MEMORY_TARGET,
        )
        batched = partial(
            bench_batched,
            MemoryLedger(time.time),
            shape,
            engine="memory ledger, reserve_many",
            threads=1,
            batch=BATCH,
        )
        steps += [(f"memory ledger, reserve / {shape.label}", single)]
        steps += [(f"memory ledger, reserve_many / {shape.label}", batched)]
    return steps


def _on_redis(url: str, bench: Callable[[RedisLedger], Result]) -> Result:
    """Run `bench` on a fresh Redis ledger and add the server's script CPU per decision to its row."""
    with redis_ledger(url) as ledger:
        before = redis_script_usec(url)
        result = bench(ledger)
        spent = redis_script_usec(url) - before
    per_decision = spent / result.run.decisions if result.run.decisions else 0.0
    return replace(result, how=f"{result.how}; Redis CPU {per_decision:.1f} µs/decision")


def _redis_single(shape: Shape, ledger: RedisLedger) -> Result:
    return bench_single(
        ledger, shape, engine="redis ledger, 1 script/request", threads=REDIS_SINGLE_THREADS, sample_every=1
    )


def _redis_batched(shape: Shape, ledger: RedisLedger) -> Result:
    return bench_batched(
        ledger,
        shape,
        engine="redis ledger, reserve_many",
        threads=REDIS_BATCH_THREADS,
        batch=BATCH,
        target=REDIS_BATCHED_TARGET if shape.items == 1 else None,
    )


def _redis_coalesced(shape: Shape, ledger: RedisLedger) -> Result:
    result = bench_single(
        ledger,
        shape,
        engine="redis ledger, BatchingReserver",
        threads=REDIS_CALLER_THREADS,
        sample_every=1,
        via=BatchingReserver(ledger, max_batch=BATCH),
        target=REDIS_BATCHED_TARGET if shape.items == 1 else None,
    )
    return replace(result, how=f"{result.how}, coalesced ≤ {BATCH}")


def _redis(ctx: Context) -> list[Step]:
    if ctx.redis_url is None:
        name = "redis ledger"
        return [(name, _skip(name, "no Redis (set FLASHSALE_BENCH_REDIS_URL or install redis-server)"))]
    p = ctx.profile
    runs = (
        ("1 script/request", _redis_single, p.redis_single),
        ("reserve_many", _redis_batched, p.redis_batched),
        ("BatchingReserver", _redis_coalesced, p.redis_coalesced),
    )
    return [
        (f"redis ledger, {label} / {shape.label}", partial(_on_redis, ctx.redis_url, partial(bench, shape)))
        for label, bench, requests in runs
        for shape in shapes(requests)
    ]


def steps_for(name: str, ctx: Context) -> list[Step]:
    """Return the labelled steps of one benchmark."""
    if name == "baseline-a":
        return _baseline(ctx, "baseline A", postgres.bench_mall)
    if name == "baseline-b":
        return _baseline(ctx, "baseline B", postgres.bench_saleor)
    if name == "memory":
        return _memory(ctx)
    if name == "redis":
        return _redis(ctx)
    if name == "read-flood":
        return read_flood.steps(requests=ctx.profile.read_flood)
    if name == "embedded":
        return embedded.steps(requests=ctx.profile.embedded)
    if name == "waiting-room":
        return waiting_room.steps(requests=ctx.profile.read_flood, shoppers=ctx.profile.room_shoppers)
    return http.steps(ctx.redis_url, ctx.postgres_url, requests=ctx.profile.http, target=HTTP_TARGET)
