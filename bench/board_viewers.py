"""The buy path on the embedded default, alone and with 500 live-board viewers, in alternating pairs.

The same purchase crowd as in the read-flood bench (one hot item, 16 connections) on a fresh
one-worker server (SQLite file + in-process ledger), first alone, then while `bench.flood --stream`
holds 500 `GET /board/events` streams open, reading every event (100 sessions in the catalogue, so
the whole board is about 40 kB). The pair is repeated (five times at full size), because on a
shared two-core box one run's throughput swings more than the effect measured; each pair's second
row gives its throughput, p99 and p50 as ratios to its first (target: the buy path slows by less
than 10 %), the server's CPU per purchase in both (the worker's user + system time from /proc
around the load: what the viewers cost the one worker, whatever else the box runs), and the
medians of those ratios over the pairs so far.
The check is read_flood's: conservation after rebuilding the ledger from the stored orders, every
purchase answered 201 or 409, every stream 200.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from bench.http import _load
from bench.read_flood import BOARD_VIEWERS, ENGINE, ReadFloodSuite
from bench.report import Result, Skipped
from bench.workload import Run

THROUGHPUT_TARGET = 0.9  # with viewers, the buy path keeps at least 90 % of its throughput
SCENARIO = "board viewers"


def server_pid(port: int) -> int | None:
    """Return the pid of the uvicorn process serving `port` (Linux /proc), or None."""
    needle = f"--port\0{port}\0".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    return None


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds a process has used so far."""
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BoardViewersSuite(ReadFloodSuite):
    """Pairs of runs, alone then with viewers; each run also notes the server's CPU per purchase."""

    def __init__(self, *, requests: int) -> None:
        super().__init__(requests=requests)
        self.cpu_us: float | None = None  # server CPU per purchase in the last run
        self.alone_cpu_us: float | None = None  # the same in the last run without viewers
        self.pairs: list[tuple[float, float, float]] = []  # with/without: throughput, p99, server CPU

    def _buy(
        self, port: int, item_ids: list[int], workdir: Path, log: Path, connections: int
    ) -> tuple[Run, Counter[str]]:
        pid = server_pid(port)
        before = cpu_seconds(pid) if pid is not None else None
        run, statuses = _load(port, self.shape, item_ids, self.secret, workdir, log, connections=connections)
        if pid is not None and before is not None and run.decisions:
            self.cpu_us = (cpu_seconds(pid) - before) / run.decisions * 1e6
        return run, statuses

    def alone_step(self, round_no: int) -> Result:
        """The purchases with no viewers; the next step compares itself with this one."""
        result = self.quiet_step()
        self.quiet = replace(
            result,
            engine=f"{ENGINE}, alone (pair {round_no})",
            scenario=SCENARIO,
            how=f"{result.how}{self._cpu()}",
        )
        self.alone_cpu_us = self.cpu_us
        return self.quiet

    def viewers_step(self, round_no: int) -> Result:
        """The same purchases with 500 viewers; ratios to this pair's first row."""
        result = self.flooded_step(BOARD_VIEWERS)
        quiet = self.quiet
        how = f"{result.how}{self._cpu()}"
        measured = quiet is not None and quiet.rate and quiet.p99_ms and result.p99_ms
        if quiet is not None and measured and self.alone_cpu_us and self.cpu_us:
            assert quiet.p99_ms is not None and result.p99_ms is not None
            cpu = self.cpu_us / self.alone_cpu_us
            self.pairs.append((result.rate / quiet.rate, result.p99_ms / quiet.p99_ms, cpu))
            rate, p99, cpus = (statistics.median(column) for column in zip(*self.pairs, strict=True))
            how += (
                f"; server CPU per purchase {cpu:.2f}× alone's; median of {len(self.pairs)} pair(s): "
                f"throughput {rate:.2f}× (target ≥ {THROUGHPUT_TARGET:.2f}×), p99 {p99:.2f}×, "
                f"server CPU per purchase {cpus:.2f}×"
            )
        return replace(
            result, engine=f"{ENGINE}, with 500 board viewers (pair {round_no})", scenario=SCENARIO, how=how
        )

    def _cpu(self) -> str:
        return f"; server CPU {self.cpu_us:,.0f} µs/purchase" if self.cpu_us is not None else ""


def steps(*, requests: int, rounds: int) -> list[tuple[str, Callable[[], Result | Skipped]]]:
    """Alternate the buy path alone and with 500 viewers, `rounds` times, in one run."""
    suite = BoardViewersSuite(requests=requests)
    pairs: list[tuple[str, Callable[[], Result | Skipped]]] = []
    for n in range(1, rounds + 1):
        pairs += [
            (f"board viewers / buy path alone ({n})", partial(suite.alone_step, n)),
            (f"board viewers / buy path with 500 viewers ({n})", partial(suite.viewers_step, n)),
        ]
    return pairs
