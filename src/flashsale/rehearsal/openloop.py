"""Open-loop load: arrivals start on a schedule, whatever the earlier ones are doing, and each answer
is timed from when its request was *meant* to go out.

A closed loop (each virtual user waits for its answer before the next request) slows down with
the server and so hides queueing ("coordinated omission"). Here a request that waited for a
connection, for the event loop or for the server's queue counts that wait in its latency.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]
# (seconds after the start, what to start: called with its intended clock time)
Arrival = tuple[float, Callable[[float], Coroutine[Any, Any, None]]]

OK = "ok"  # the outcome of an answer that did what was asked


@dataclass(frozen=True, slots=True)
class Sample:
    """One request: what it was, how it ended, when it was meant to go out and when its answer came."""

    kind: str
    outcome: str
    intended: float
    done: float

    @property
    def latency(self) -> float:
        return self.done - self.intended


@dataclass
class Recorder:
    """Every sample of a run, on one event loop (no lock needed)."""

    clock: Clock = time.perf_counter
    samples: list[Sample] = field(default_factory=list)

    def record(self, kind: str, outcome: str, intended: float) -> None:
        """Note an answer (or failure) that arrives now to a request meant for `intended`."""
        self.samples.append(Sample(kind, outcome, intended, self.clock()))


async def run_open_loop(
    arrivals: Iterable[Arrival], *, start: float, clock: Clock = time.perf_counter
) -> None:
    """Start each arrival at `start` + its offset (clock time) and wait for all of them to finish.

    Each arrival is started as its own task and handed its intended time, so a late wake-up of
    this loop delays the send but not the clock its latency is measured against.
    """
    tasks: list[asyncio.Task[None]] = []
    for offset, begin in sorted(arrivals, key=lambda a: a[0]):
        delay = start + offset - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(begin(start + offset)))
    await asyncio.gather(*tasks)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank p-th percentile (0 < p <= 100) of values sorted ascending; 0.0 if none."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency percentiles (seconds) of a set of samples, from their intended send times."""

    requests: int
    p50_s: float
    p90_s: float
    p99_s: float
    max_s: float

    @classmethod
    def of(cls, samples: Sequence[Sample]) -> LatencySummary:
        """Summarise the samples' latencies."""
        latencies = sorted(s.latency for s in samples)
        return cls(
            requests=len(latencies),
            p50_s=round(percentile(latencies, 50), 6),
            p90_s=round(percentile(latencies, 90), 6),
            p99_s=round(percentile(latencies, 99), 6),
            max_s=round(latencies[-1], 6) if latencies else 0.0,
        )


def outcomes(samples: Iterable[Sample]) -> dict[str, int]:
    """Count the samples by outcome, most frequent first."""
    return dict(Counter(s.outcome for s in samples).most_common())


def timeline(samples: Sequence[Sample]) -> list[dict[str, float]]:
    """Per second of intended send time (from the first), how many requests and their p50/p99:
    latency that grows second after second is a queue the server does not drain."""
    if not samples:
        return []
    first = min(s.intended for s in samples)
    seconds: dict[int, list[float]] = {}
    for s in samples:
        seconds.setdefault(int(s.intended - first), []).append(s.latency)
    rows = []
    for second in sorted(seconds):
        latencies = sorted(seconds[second])
        rows.append(
            {
                "second": second,
                "requests": len(latencies),
                "p50_s": round(percentile(latencies, 50), 6),
                "p99_s": round(percentile(latencies, 99), 6),
            }
        )
    return rows
