"""The embedded default's buy path over HTTP at 20, 200 and 400 connections, against the bare floor.

`flashsale serve` on the embedded default (SQLite file + in-process ledger) runs one worker: the
engine allows no more. So the floor here is the bare FastAPI POST on one worker too, at 200
connections, and each buy-path row says what share of it the buy path reaches. The 400-connection
row also gives its throughput against the 20-connection row's: a collapse under a crowd shows there.
A last row runs the 200-connection crowd with admission's rate limits counted (none refused).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.http import _load, _statuses, uvicorn
from bench.read_flood import ENGINE, ReadFloodSuite
from bench.report import Result, Skipped
from bench.workload import Check, Shape

FLOOR_CONNECTIONS = 200
CONNECTIONS = (20, 200, 400)
SCENARIO = "embedded crowd"
FLOOR = "HTTP floor: bare FastAPI POST, 1 worker"
FLOOR_SHARE_TARGET = 0.5  # the buy path should reach half the floor
# Admission on, generous enough that nothing is refused: the row measures what counting costs.
RATE_LIMITS = {
    "rate_limit_purchase_per_shopper": "100/second",
    "rate_limit_purchase_per_client": "1000000/minute",  # the whole crowd comes from 127.0.0.1
}
LIMITED_CONNECTIONS = 200


class EmbeddedSuite:
    """The one-worker floor, then the embedded buy path at each crowd size (fresh server each)."""

    def __init__(self, *, requests: int) -> None:
        self.requests = requests
        self.buys = ReadFloodSuite(requests=requests)
        self.floor: Result | None = None
        self.rates: dict[int, float] = {}

    def floor_step(self) -> Result:
        """Measure the bare FastAPI POST on one worker with the same load generator and crowd."""
        shape = Shape(self.requests, 1)
        with tempfile.TemporaryDirectory(prefix="flashsale-bench-floor1-") as tmp:
            log = Path(tmp) / "floor.log"
            with uvicorn("bench.floor_app:app", dict(os.environ), log, factory=False, workers=1) as (port, _):
                run, statuses = _load(
                    port, shape, [1], self.buys.secret, Path(tmp), log, connections=FLOOR_CONNECTIONS
                )
        problem = _statuses(statuses, {"201"})
        check = Check(problem is None, problem or f"{statuses['201']} × 201; no stock in the floor app")
        self.floor = Result(FLOOR, SCENARIO, "req/s", run, check, f"1 worker, {FLOOR_CONNECTIONS} conns")
        return self.floor

    def buy_step(self, connections: int) -> Result:
        """Measure POST /purchases on the embedded default with `connections` concurrent clients."""
        run, check, _ = self.buys._run(None, connections)
        self.rates[connections] = run.decisions / run.seconds
        how = f"1 worker, {connections} conns"
        if self.floor is not None and self.floor.rate:
            share = self.rates[connections] / self.floor.rate
            how += f", {share:.0%} of floor (target ≥ {FLOOR_SHARE_TARGET:.0%})"
        if connections == max(CONNECTIONS) and min(CONNECTIONS) in self.rates:
            how += f", {self.rates[connections] / self.rates[min(CONNECTIONS)]:.0%} of the 20-conn rate"
        return Result(f"{ENGINE}, crowd", SCENARIO, "req/s", run, check, how)

    def limited_step(self) -> Result:
        """The 200-connection crowd again with per-shopper and per-address rate limits counted."""
        run, check, _ = self.buys._run(None, LIMITED_CONNECTIONS, RATE_LIMITS)
        how = f"1 worker, {LIMITED_CONNECTIONS} conns, rate limits on (none refused)"
        unlimited = self.rates.get(LIMITED_CONNECTIONS)
        if unlimited:
            how += f", {run.decisions / run.seconds / unlimited:.0%} of the same crowd without (target ≥ 90%)"
        return Result(f"{ENGINE}, crowd", SCENARIO, "req/s", run, check, how)


def steps(*, requests: int) -> list[tuple[str, Callable[[], Result | Skipped]]]:
    """Return the floor step and one buy-path step per crowd size."""
    suite = EmbeddedSuite(requests=requests)
    return [
        ("embedded / floor, 1 worker", suite.floor_step),
        *((f"embedded / buy path, {n} conns", lambda n=n: suite.buy_step(n)) for n in CONNECTIONS),
        ("embedded / buy path, rate limits on", suite.limited_step),
    ]
