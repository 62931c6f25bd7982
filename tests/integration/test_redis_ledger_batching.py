"""Batches: `reserve_many` answers as single calls do, and the BatchingReserver keeps every rule.

The crowd runs are the point of batching: a thousand threads at once on a small quota, coalesced
into a few script calls, must still sell exactly the quota, keep every user within the limit,
grant no request id twice and put each granted hold on the purchase stream once.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator, Sequence

import pytest

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode
from flashsale.ledger import Decision, Ledger, MemoryLedger
from flashsale.ledger.redis import MAX_SCRIPT_BATCH, RedisLedger
from flashsale.ledger.redis_batching import BatchingReserver
from tests.factories import Request, crowd, single_unit_buyers, stress_size, terms
from tests.integration.redis_support import REDIS_URL, LedgerMaker, redis_ledgers

LIMIT = 2
Row = tuple[int, str, int, str]


@pytest.fixture
def make(clock: ManualClock) -> Iterator[LedgerMaker]:
    assert REDIS_URL is not None  # a test using this fixture is marked redis
    with redis_ledgers(REDIS_URL, clock) as make:
        yield make


def open_items(ledger: Ledger, quota: int) -> None:
    for item_id in (1, 2):
        ledger.configure(terms(item_id, quota=quota, per_user_limit=LIMIT))


def mixed_requests(rng: random.Random) -> list[Row]:
    """A crowd split over two items, plus keys reused across items and quantities (mismatches)."""
    rows = [(rng.choice((1, 2)), c.user_id, c.qty, c.request_id) for c in crowd(rng, buyers=500, limit=LIMIT)]
    reused = [(3 - item, user, qty, key) for item, user, qty, key in rng.sample(rows, 20)]
    bigger = [(item, user, qty + 1, key) for item, user, qty, key in rng.sample(rows, 20)]
    rows += reused + bigger + [(7, "nobody", 1, "k")]
    rng.shuffle(rows)
    return rows


def answers(decisions: Sequence[Decision]) -> list[tuple[object, ...]]:
    """What a caller sees of each decision, without the engine-made hold ids."""
    return [
        (d.code, d.replayed, None if d.hold is None else (d.hold.qty, d.hold.expires_at, d.hold.state))
        for d in decisions
    ]


@pytest.mark.redis
@pytest.mark.parametrize("buckets", [1, 3])
@pytest.mark.parametrize("batch", [1, 37, MAX_SCRIPT_BATCH + 100])
def test_reserve_many_answers_exactly_as_one_call_after_another(
    make: LedgerMaker, clock: ManualClock, buckets: int, batch: int
) -> None:
    rows = mixed_requests(random.Random(batch))
    single, batched, memory = make(buckets=buckets), make(buckets=buckets), MemoryLedger(clock)
    for ledger in (single, batched, memory):
        open_items(ledger, quota=150)

    one_by_one = [single.reserve(item_id=i, user_id=u, qty=q, request_id=k) for i, u, q, k in rows]
    in_batches = [d for n in range(0, len(rows), batch) for d in batched.reserve_many(rows[n : n + batch])]

    assert answers(in_batches) == answers(one_by_one) == answers(memory.reserve_many(rows))
    for ledger in (single, batched):
        assert [ledger.stock(i) for i in (1, 2)] == [memory.stock(i) for i in (1, 2)]
        assert ledger.client.xlen(ledger.stream_key) == sum(d.granted and not d.replayed for d in one_by_one)


class RecordingLedger(MemoryLedger):
    """The in-process engine, noting the size of every batch it is sent."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.batches: list[int] = []

    def reserve_many(
        self, requests: Sequence[tuple[int, str, int, str]], *, checked: bool = False
    ) -> list[Decision]:
        self.batches.append(len(requests))
        return super().reserve_many(requests, checked=checked)


def storm(reserver: BatchingReserver, clicks: Sequence[Request], item_id: int = 1) -> list[Decision]:
    """Start one thread per click, release them together through a barrier, return their answers."""
    out: list[Decision | None] = [None] * len(clicks)
    gate = threading.Barrier(len(clicks), timeout=120)

    def click(n: int, req: Request) -> None:
        gate.wait()
        out[n] = reserver.reserve(
            item_id=item_id, user_id=req.user_id, qty=req.qty, request_id=req.request_id
        )

    threads = [threading.Thread(target=click, args=pair) for pair in enumerate(clicks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(d is not None for d in out), "a buyer thread died"
    return [d for d in out if d is not None]


def assert_fair_sale(
    ledger: Ledger, clicks: Sequence[Request], decisions: Sequence[Decision], quota: int
) -> None:
    """Exactly the quota sold, limits kept, each key granted once, refusals only for the right reasons."""
    fresh = [d.hold for d in decisions if d.hold is not None and not d.replayed]
    per_user = Counter()
    for hold in fresh:
        per_user[hold.user_id] += hold.qty
    level = ledger.stock(1)
    assert level.conserved and level.available == 0 and sum(per_user.values()) == level.held == quota
    assert max(per_user.values()) <= LIMIT
    assert all(ledger.used_by(1, user) == units for user, units in per_user.items())
    assert len({(h.user_id, h.request_id) for h in fresh}) == len(fresh)
    refused = {d.code for d in decisions if d.hold is None}
    assert refused <= {ErrorCode.SOLD_OUT, ErrorCode.INSUFFICIENT_STOCK, ErrorCode.LIMIT_EXCEEDED}
    assert len(decisions) == len(clicks)


def test_concurrent_calls_are_coalesced_into_bounded_batches(clock: ManualClock) -> None:
    ledger = RecordingLedger(clock)
    ledger.configure(terms(1, quota=50, per_user_limit=LIMIT))
    clicks = crowd(random.Random(1), buyers=300, limit=LIMIT)

    # A long linger lets each leader wait for a full batch however slowly the threads get going.
    decisions = storm(BatchingReserver(ledger, max_batch=16, linger_s=0.5), clicks)

    assert_fair_sale(ledger, clicks, decisions, quota=50)
    assert sum(ledger.batches) == len(clicks)
    assert max(ledger.batches) <= 16
    assert len(ledger.batches) <= len(clicks) // 4


@pytest.mark.redis
@pytest.mark.parametrize("linger_s", [0.0, 0.001])
def test_a_crowd_of_threads_through_the_batching_reserver_sells_exactly_the_quota(
    make: LedgerMaker, linger_s: float
) -> None:
    buyers = stress_size(1000, 5000)
    clicks = crowd(random.Random(buyers), buyers=buyers, limit=LIMIT)
    quota = min(50, single_unit_buyers(clicks))
    ledger = make(buckets=4)
    ledger.configure(terms(1, quota=quota, per_user_limit=LIMIT))

    decisions = storm(BatchingReserver(ledger, linger_s=linger_s), clicks)

    assert len(clicks) >= 1000
    assert_fair_sale(ledger, clicks, decisions, quota)
    granted = {d.hold.hold_id for d in decisions if d.hold is not None}
    stream = ledger.client.xrange(ledger.stream_key)
    assert sorted(fields["hold_id"] for _id, fields in stream) == sorted(granted)


@pytest.mark.redis
@pytest.mark.stress
def test_many_rounds_of_crowds_keep_conservation_and_limits(make: LedgerMaker) -> None:
    ledger: RedisLedger = make()
    reserver = BatchingReserver(ledger)
    for round_no in range(stress_size(2, 10)):
        clicks = crowd(
            random.Random(round_no), buyers=stress_size(1000, 5000), limit=LIMIT, prefix=f"r{round_no}-"
        )
        quota = min(50, single_unit_buyers(clicks))
        ledger.restore([terms(1, quota=quota, per_user_limit=LIMIT)], [])  # a fresh sale each round
        assert_fair_sale(ledger, clicks, storm(reserver, clicks), quota)
