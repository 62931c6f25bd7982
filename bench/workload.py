"""The sale every benchmark replays, the threaded drivers that replay it, and the conservation check.

Every engine sees the same crowd: request i comes from user i // 3 (three tries each, one unit a
try), users are spread round-robin over the items, each user may hold at most 2 units, and each
item's quota is half the requests it receives. So every run sells out, every engine grants the
same number of units, and the refusals are a mix of LIMIT_EXCEEDED (the third try of a user who got
two) and SOLD_OUT (everyone after the last unit).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

TRIES_PER_USER = 3
PER_USER_LIMIT = 2
FAR_FUTURE_S = 10 * 365 * 24 * 3600.0  # sale window and hold TTL: nothing may expire mid-run


class Request(NamedTuple):
    item_id: int
    user_id: str
    request_id: str


Decide = Callable[[Request], bool]
DecideMany = Callable[[Sequence[Request]], list[bool]]


@dataclass(frozen=True)
class Shape:
    """`requests` one-unit purchase attempts over `items` items (1 = a single hot item)."""

    requests: int
    items: int

    @property
    def label(self) -> str:
        return "1 hot item" if self.items == 1 else f"{self.items} items"

    @property
    def quota_per_item(self) -> int:
        return max(1, self.requests // (2 * self.items))

    @property
    def item_ids(self) -> range:
        return range(1, self.items + 1)

    def item_of(self, user: int) -> int:
        """Return the item user number `user` tries to buy (users are dealt round-robin)."""
        return user % self.items + 1

    def crowd(self) -> list[Request]:
        """Return every request in arrival order (a user's tries are adjacent)."""
        return [
            Request(self.item_of(i // TRIES_PER_USER), f"u{i // TRIES_PER_USER}", f"r{i}")
            for i in range(self.requests)
        ]

    def buyers(self) -> list[tuple[str, int]]:
        """Return every (user id, item id) of the crowd."""
        users = -(-self.requests // TRIES_PER_USER)
        return [(f"u{user}", self.item_of(user)) for user in range(users)]


@dataclass(frozen=True)
class Level:
    """One item's counters at the end of a run, whatever the engine calls them."""

    item_id: int
    quota: int
    available: int
    held: int
    sold: int


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


@dataclass(frozen=True)
class Run:
    """What a driver observed: wall time, sampled latencies, and which requests were granted."""

    seconds: float
    latencies_ns: list[int]
    granted: list[Request]
    decisions: int


def check_sale(
    levels: Iterable[Level],
    run: Run,
    *,
    per_user_totals: Counter[str] | None = None,
    user_limit_enforced: bool = True,
) -> Check:
    """Check conservation, agreement with what clients were told, sell-out and the per-user limit.

    `per_user_totals` is what the engine itself recorded per user (for the databases); without it
    the grants the clients received are counted instead.
    """
    levels = list(levels)
    broken = [
        lv.item_id
        for lv in levels
        if lv.available + lv.held + lv.sold != lv.quota or min(lv.available, lv.held, lv.sold) < 0
    ]
    committed = sum(lv.held + lv.sold for lv in levels)
    unsold = sum(lv.available for lv in levels)
    totals = per_user_totals if per_user_totals is not None else Counter(r.user_id for r in run.granted)
    worst = max(totals.values(), default=0)
    over = sum(1 for n in totals.values() if n > PER_USER_LIMIT)
    quota = sum(lv.quota for lv in levels)
    detail = (
        f"available {unsold} + held/sold {committed} == quota {quota} over {len(levels)} item(s); "
        f"{len(run.granted)} grants acknowledged; max per user {worst} (limit {PER_USER_LIMIT})"
    )
    problems = []
    if broken:
        problems.append(f"counters do not add up for items {broken[:5]}")
    if committed != len(run.granted):
        problems.append(f"engine holds {committed} units but clients were granted {len(run.granted)}")
    if unsold:
        problems.append(f"{unsold} units unsold although demand exceeded supply (undersell)")
    if over and user_limit_enforced:
        problems.append(f"{over} users over the limit")
    elif over:
        detail += f"; {over} users over the limit: this pattern has no per-user guard"
    if problems:
        return Check(False, "; ".join(problems) + f" ({detail})")
    return Check(True, detail)


def percentile_ms(samples_ns: list[int], fraction: float) -> float | None:
    """Return the nearest-rank percentile of nanosecond samples, in milliseconds."""
    if not samples_ns:
        return None
    ordered = sorted(samples_ns)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank] / 1e6


def _replay(
    crowd: Sequence[Request],
    threads: int,
    work: Callable[[Sequence[Request]], tuple[list[int], list[Request]]],
) -> Run:
    """Run `work` over `threads` interleaved stripes of the crowd, released together by a barrier."""
    barrier = threading.Barrier(threads + 1)
    outputs: list[tuple[list[int], list[Request]]] = []
    errors: list[BaseException] = []

    def worker(stripe: Sequence[Request]) -> None:
        barrier.wait()
        try:
            out = work(stripe)
        except BaseException as exc:  # surfaced below: a crashed worker must fail the run
            errors.append(exc)
            return
        outputs.append(out)

    pool = [threading.Thread(target=worker, args=(crowd[t::threads],)) for t in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    latencies = [ns for lat, _ in outputs for ns in lat]
    granted = [r for _, won in outputs for r in won]
    return Run(seconds, latencies, granted, len(crowd))


def replay_single(
    crowd: Sequence[Request], *, threads: int, decider: Callable[[], Decide], sample_every: int = 1
) -> Run:
    """Replay the crowd one call per request; time every `sample_every`-th call."""

    def work(stripe: Sequence[Request]) -> tuple[list[int], list[Request]]:
        decide, clock = decider(), time.perf_counter_ns
        latencies: list[int] = []
        granted: list[Request] = []
        won = granted.append
        for start in range(0, len(stripe), sample_every):
            chunk = stripe[start : start + sample_every]
            t0 = clock()
            if decide(chunk[0]):
                won(chunk[0])
            latencies.append(clock() - t0)
            for request in chunk[1:]:
                if decide(request):
                    won(request)
        return latencies, granted

    return _replay(crowd, threads, work)


def replay_batched(
    crowd: Sequence[Request], *, threads: int, batch: int, decider: Callable[[], DecideMany]
) -> Run:
    """Replay the crowd in batches of `batch` requests per call; a sample is one batch's round trip."""

    def work(stripe: Sequence[Request]) -> tuple[list[int], list[Request]]:
        decide, clock = decider(), time.perf_counter_ns
        latencies: list[int] = []
        granted: list[Request] = []
        for start in range(0, len(stripe), batch):
            chunk = stripe[start : start + batch]
            t0 = clock()
            verdicts = decide(chunk)
            latencies.append(clock() - t0)
            granted.extend(r for r, ok in zip(chunk, verdicts, strict=True) if ok)
        return latencies, granted

    return _replay(crowd, threads, work)
