"""The benchmarks `--only` can name, their sizes (full and quick), and the services each needs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from bench import (
    board_viewers,
    checkout,
    cluster,
    draws,
    embedded,
    http,
    pays,
    postgres,
    read_flood,
    waiting_room,
)
from bench.coupons import bench_claims, redis_coupon_ledger
from bench.ledgers import bench_batched, bench_single, redis_ledger, redis_script_usec
from bench.report import Result, Skipped
from bench.workload import Shape
from flashsale.coupons import MemoryCouponLedger
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
    checkout: int  # the crowd of the buy-path row; a third as many shoppers check out a 3-line cart
    draws_memory: int  # draws on one hot pool (and reserves on one hot item beside them), in process
    draws_redis: int  # the same on Redis, one script call each
    coupons: int  # coupon claims on one hot wave, per engine
    room_shoppers: int  # shoppers waiting in a room beside the buy path (read_flood's purchases)
    board_viewers: int  # purchases per run of the board-viewers pairs (alone, with 500 viewers)
    board_rounds: int  # how many such pairs
    pays: int  # orders paid one by one, then in pay_many batches, on the embedded default


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
    checkout=3_000,
    draws_memory=300_000,
    draws_redis=30_000,
    coupons=30_000,
    room_shoppers=10_000,
    board_viewers=12_000,
    board_rounds=5,
    pays=3_000,
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
    checkout=300,
    draws_memory=10_000,
    draws_redis=1_000,
    coupons=2_000,
    room_shoppers=300,
    board_viewers=300,
    board_rounds=1,
    pays=200,
)

NEEDS: dict[str, set[str]] = {
    "baseline-a": {"postgres"},
    "baseline-b": {"postgres"},
    "memory": set(),
    "redis": {"redis"},
    "redis-cluster": set(),  # an existing Cluster only (FLASHSALE_BENCH_REDIS_CLUSTER_URL): skipped without
    "http": {"redis", "postgres"},
    "read-flood": set(),  # the embedded default: SQLite file + in-process ledger
    "embedded": set(),  # the same, at 20, 200 and 400 connections against a one-worker floor
    "checkout": set(),  # a 3-line cart checkout on the embedded default beside its flash buy path
    "draws": {"redis"},  # draws on one hot pool beside the flash ledger; in process always, Redis if there
    "coupons": set(),  # coupon claims on one hot wave: in process, and on Redis when there is one
    "waiting-room": set(),  # the embedded buy path beside a waiting room's crowd
    "board-viewers": set(),  # the embedded buy path alone and with 500 live-board viewers, in pairs
    "pays": set(),  # pay one by one against pay_many batches, on the embedded default
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


def _draws(ctx: Context) -> list[Step]:
    steps: list[Step] = list(draws.memory_steps(ctx.profile.draws_memory))
    if ctx.redis_url is None:
        name = "draw ledger (redis)"
        return [
            *steps,
            (name, _skip(name, "no Redis (set FLASHSALE_BENCH_REDIS_URL or install redis-server)")),
        ]
    return steps + draws.redis_steps(ctx.redis_url, ctx.profile.draws_redis, REDIS_SINGLE_THREADS)


def _coupons(ctx: Context) -> list[Step]:
    """Claims on one hot wave: the in-process coupon ledger, and the Redis one when the run has Redis."""
    shape = Shape(ctx.profile.coupons, 1)
    memory = partial(
        bench_claims,
        MemoryCouponLedger(time.time),
        shape,
        engine="coupon ledger, memory",
        threads=1,
        sample_every=64,
    )
    steps: list[Step] = [(f"coupon ledger, memory / {shape.label}", memory)]
    if ctx.redis_url is None:
        return steps
    redis_url = ctx.redis_url

    def on_redis() -> Result:
        with redis_coupon_ledger(redis_url) as ledger:
            before = redis_script_usec(redis_url)
            result = bench_claims(
                ledger, shape, engine="coupon ledger, redis", threads=REDIS_SINGLE_THREADS, sample_every=1
            )
            spent = redis_script_usec(redis_url) - before
        per_claim = spent / result.run.decisions if result.run.decisions else 0.0
        return replace(result, how=f"{result.how}; Redis CPU {per_claim:.1f} µs/decision")

    return [*steps, (f"coupon ledger, redis / {shape.label}", on_redis)]


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
    if name == "redis-cluster":
        return cluster.steps(requests=ctx.profile.redis_batched)
    if name == "read-flood":
        return read_flood.steps(requests=ctx.profile.read_flood)
    if name == "embedded":
        return embedded.steps(requests=ctx.profile.embedded)
    if name == "checkout":
        return checkout.steps(requests=ctx.profile.checkout)
    if name == "draws":
        return _draws(ctx)
    if name == "coupons":
        return _coupons(ctx)
    if name == "board-viewers":
        return board_viewers.steps(requests=ctx.profile.board_viewers, rounds=ctx.profile.board_rounds)
    if name == "pays":
        return pays.steps(requests=ctx.profile.pays)
    if name == "waiting-room":
        return waiting_room.steps(requests=ctx.profile.read_flood, shoppers=ctx.profile.room_shoppers)
    return http.steps(ctx.redis_url, ctx.postgres_url, requests=ctx.profile.http, target=HTTP_TARGET)
