"""The waiting room's line (services/waiting_room.py `Line`), one suite on both engines: in process and
in Redis. It admits in exactly the recorded order for a seed (the early crowd shuffled, later arrivals
first come first served), keeps one's place on a refresh, never gives a place or a window twice under
a crowd of threads (in Redis: through two clients, as two workers would), and admits nobody once closed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from redis import Redis

from flashsale.domain.admission import arrival_order
from flashsale.services.waiting_room import Line, MemoryLine, RedisLine
from tests.factories import release_together
from tests.services import REDIS_URL

OPENS_AT = 1_000_000.0
ITEM = 7

LineFactory = Callable[[], Line]


@pytest.fixture(
    params=[pytest.param("memory", id="memory"), pytest.param("redis", id="redis", marks=pytest.mark.redis)]
)
def lines(request: pytest.FixtureRequest) -> Iterator[LineFactory]:
    """Yield a maker of views of one empty line: in Redis each view is a client of its own (a worker)."""
    if request.param == "memory":
        line = MemoryLine()
        yield lambda: line
        return
    assert REDIS_URL is not None
    prefix = f"t-{uuid.uuid4().hex}"
    clients: list[Redis] = []

    def make() -> Line:
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        clients.append(client)
        return RedisLine(client, prefix)

    try:
        yield make
    finally:
        keys = list(clients[0].scan_iter(match=f"{prefix}:*", count=1000)) if clients else []
        if keys:
            clients[0].delete(*keys)
        for client in clients:
            client.close()


def admit_one_by_one(line: Line, now: float, count: int) -> list[str]:
    """Admit with room for one window of one second at a time: the admission order, one shopper a step."""
    order: list[str] = []
    for step in range(count):
        order += line.advance(ITEM, now + step, capacity=1, window_s=1.0)
    return order


def test_the_room_admits_in_exactly_the_recorded_order_for_a_seed(lines: LineFactory) -> None:
    line = lines()
    early = [f"early{n}" for n in range(200)]
    random.Random(1).shuffle(early)  # the order they arrived in: it must not matter
    for n, shopper in enumerate(early):
        assert line.join(ITEM, shopper, OPENS_AT - 100 + n * 0.1, OPENS_AT)
    assert line.advance(ITEM, OPENS_AT - 1, 10, 60.0) == []  # nobody is admitted before the open
    assert not line.join(ITEM, "late0", OPENS_AT, OPENS_AT)  # after the open: open the room first
    line.open(ITEM, OPENS_AT, seed=42)
    line.open(ITEM, OPENS_AT + 1, seed=43)  # a second open (another worker) changes nothing
    late = [f"late{n}" for n in range(50)]
    for shopper in late:
        assert line.join(ITEM, shopper, OPENS_AT + 1, OPENS_AT)

    admitted = admit_one_by_one(line, OPENS_AT + 2, len(early) + len(late) + 5)

    record = line.record(ITEM)
    assert record.seed == 42
    assert list(record.early) == arrival_order(early, 42)
    assert admitted == list(record.line) == arrival_order(early, 42) + late
    assert admitted[:200] != sorted(early)  # shuffled indeed (a 1-in-200! chance to be sorted)


def test_the_order_depends_on_the_seed_not_on_the_arrival_order(lines: LineFactory) -> None:
    crowd = [f"s{n}" for n in range(100)]
    assert arrival_order(crowd, 5) == arrival_order(list(reversed(crowd)), 5)
    assert arrival_order(crowd, 5) != arrival_order(crowd, 6)
    line = lines()
    for shopper in reversed(crowd):
        line.join(ITEM, shopper, OPENS_AT - 1, OPENS_AT)
    line.open(ITEM, OPENS_AT, seed=5)
    assert admit_one_by_one(line, OPENS_AT, 100) == arrival_order(crowd, 5)


def test_a_refresh_keeps_ones_place_and_windows_end(lines: LineFactory) -> None:
    line = lines()
    line.open(ITEM, OPENS_AT, seed=1)
    for shopper in ("a", "b", "c"):
        line.join(ITEM, shopper, OPENS_AT, OPENS_AT)
    line.join(ITEM, "a", OPENS_AT + 5, OPENS_AT)  # a refresh
    assert [line.spot(ITEM, s, OPENS_AT).place for s in ("a", "b", "c")] == [0, 1, 2]
    assert line.advance(ITEM, OPENS_AT, capacity=2, window_s=10.0) == ["a", "b"]
    assert line.advance(ITEM, OPENS_AT + 9, capacity=2, window_s=10.0) == []  # both windows live
    assert line.spot(ITEM, "a", OPENS_AT + 9).window_ends_at == OPENS_AT + 10
    assert line.advance(ITEM, OPENS_AT + 10, capacity=2, window_s=10.0) == ["c"]  # theirs ended
    gone = line.spot(ITEM, "a", OPENS_AT + 10)
    assert gone.window_ends_at is None and gone.place is not None and gone.place < gone.head
    line.join(ITEM, "a", OPENS_AT + 11, OPENS_AT)  # joining again does not give a new place
    assert line.spot(ITEM, "a", OPENS_AT + 11).place == 0


def test_a_closed_room_admits_nobody(lines: LineFactory) -> None:
    line = lines()
    line.open(ITEM, OPENS_AT, seed=1)
    line.join(ITEM, "a", OPENS_AT, OPENS_AT)
    line.close(ITEM)
    assert line.advance(ITEM, OPENS_AT, capacity=5, window_s=10.0) == []
    assert line.spot(ITEM, "a", OPENS_AT).closed


def test_a_crowd_joining_and_advancing_at_once_gets_one_place_each_and_capacity_windows(
    lines: LineFactory,
) -> None:
    """40 threads (two views of the line: two workers in Redis) each join 25 shoppers and advance the
    line after every join, all released together. Every shopper gets exactly one place, the places are
    0..999, and exactly `capacity` windows were handed out, each once."""
    views = [lines(), lines()]
    views[0].open(ITEM, OPENS_AT, seed=1)
    capacity = 300

    def crowd(n: int) -> list[str]:
        view = views[n % 2]
        admitted: list[str] = []
        for k in range(25):
            view.join(ITEM, f"t{n}-{k}", OPENS_AT, OPENS_AT)
            admitted += view.advance(ITEM, OPENS_AT, capacity, 60.0)
        return admitted

    batches = release_together([partial(crowd, n) for n in range(40)])
    admitted = [shopper for batch in batches for shopper in batch]
    assert len(admitted) == len(set(admitted)) == capacity
    places = [views[0].spot(ITEM, f"t{n}-{k}", OPENS_AT).place for n in range(40) for k in range(25)]
    assert sorted(p for p in places if p is not None) == list(range(1000))
    line = views[1].record(ITEM).line
    assert admitted != [] and set(admitted) == set(line[:capacity])  # admitted from the head, in order
