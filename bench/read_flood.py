"""The buy path on the embedded default, alone and under a flood of anonymous `GET /sessions`.

`GET /sessions` needs no token, so anyone can send it as fast as they like. This measures what such
a flood does to buyers: the same purchase crowd is replayed over HTTP against a fresh embedded
server each time (SQLite file + in-process ledger, one uvicorn worker: the engine allows no more),
first alone, then while a separate process (`bench.flood`) keeps a flood's connections busy
with `GET /sessions` (answered from memory by `PublicReadFastPath`, which `create_app` installs in
front of the framework), then, for reference, with GETs of a missing page (the cheapest request the
framework itself answers), and with 500 live-board viewers holding `GET /board/events` open (one
shared build a second pushed to each). Each flooded row reports its p99, p50 and throughput as ratios to
the first row's, from the same run. The catalogue holds 100 sessions, so each GET /sessions returns a
real page.

The check after each run rebuilds the ledger from the stored orders (what a restart does) and
requires the usual conservation, every purchase answered 201 or 409, and every flood request its
expected status: a GET /sessions that got a 503 (e.g. "database is locked") fails the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from bench.http import ROOT, _load, _statuses, rebuilt_levels, seed_items, uvicorn
from bench.loadgen import SECRET_ENV
from bench.report import Result, Skipped
from bench.workload import Check, Run, Shape, check_sale
from flashsale.bootstrap import build
from flashsale.config import Settings

BUY_CONNECTIONS = 16
SESSIONS = 100  # one open with the crowd's item, the rest upcoming with one item each
P99_TARGET = 2.0  # the flood may at most double the buyers' p99
ENGINE = "HTTP buy path, embedded (SQLite + in-process ledger)"
SCENARIO = "read flood"
SERVING_APP = "flashsale.api.main:serving_app_factory"  # what `flashsale serve` runs


@dataclass(frozen=True)
class Flood:
    """What the flood process saw: requests, seconds and statuses."""

    requests: int
    seconds: float
    statuses: dict[str, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class FloodKind:
    """A flood to measure: the path every connection GETs, the status it must get ("200|429": either),
    a label; with `stream`, each connection holds one event stream open (a live-board viewer) instead."""

    path: str
    status: str
    label: str
    connections: int = 32  # 32 flooders keep one worker's event loop busy
    stream: bool = False
    # Called with the server's settings once the store is seeded; returns more `bench.flood` arguments
    # (the waiting room's bench seeds its room item here and names it).
    prepare: Callable[[dict[str, str]], list[str]] | None = None

    @property
    def unit(self) -> str:
        return "events/s" if self.stream else "GET/s"


SESSIONS_FLOOD = FloodKind("/sessions", "200", "GET /sessions")
# The reference: a flood of the cheapest request the app answers (routing misses, 404 body), which
# shows what any flood does to a one-worker server sharing two cores with its clients.
NOT_FOUND_FLOOD = FloodKind("/no-such-page", "404", "GET of a missing page (404), for reference")
# The live board's viewers: one shared build a second, pushed to each (target: buyers lose < 10 %).
BOARD_VIEWERS = FloodKind(
    "/board/events", "200", "500 live-board viewers (SSE)", connections=500, stream=True
)


@contextlib.contextmanager
def flooding(
    port: int, workdir: Path, kind: FloodKind, extra: list[str], env: dict[str, str]
) -> Iterator[Callable[[], Flood]]:
    """Run `bench.flood` against `port` until the block ends; yield a getter for what it saw."""
    result = workdir / f"flood-{secrets.token_hex(4)}.json"
    cmd = [sys.executable, "-m", "bench.flood", "--port", str(port), "--path", kind.path]
    cmd += ["--connections", str(kind.connections), "--result", str(result)]
    cmd += ["--stream"] if kind.stream else []
    cmd += extra
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    # The clock must start with the flood already running on every connection.
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"flood did not start: {proc.communicate()[1][-1500:]}")
    try:
        yield lambda: Flood(**json.loads(result.read_text()))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"flood failed ({proc.returncode}): {err[-1500:]}")


class ReadFloodSuite:
    """The buy path alone, then under each flood; the flooded rows carry their ratios to the first."""

    def __init__(self, *, requests: int) -> None:
        self.shape = Shape(requests, 1)
        self.secret = secrets.token_urlsafe(32)
        self.quiet: Result | None = None

    def quiet_step(self) -> Result:
        """Measure the purchases with no other traffic."""
        run, check, _ = self._run(None)
        how = f"1 worker, {BUY_CONNECTIONS} conns, no flood"
        self.quiet = Result(f"{ENGINE}, alone", SCENARIO, "req/s", run, check, how)
        return self.quiet

    def flooded_step(self, kind: FloodKind) -> Result:
        """Measure the same purchases while `kind.connections` connections flood `kind.path`."""
        run, check, flood = self._run(kind)
        assert flood is not None
        how = (
            f"1 worker, {BUY_CONNECTIONS} conns + {kind.connections} conns flooding {kind.path} "
            f"({flood.rate:,.0f} {kind.unit})"
        )
        if "|" in kind.status:  # more than one status is right: say how many of each
            how += " (" + ", ".join(f"{n:,} × {s}" for s, n in sorted(flood.statuses.items())) + ")"
        flooded = Result(f"{ENGINE}, flooded by {kind.label}", SCENARIO, "req/s", run, check, how)
        if self.quiet is None:
            return flooded
        return replace(flooded, how=f"{how}; {ratios(self.quiet, flooded)}")

    def _run(
        self,
        kind: FloodKind | None,
        connections: int = BUY_CONNECTIONS,
        extra_settings: dict[str, str] | None = None,
    ) -> tuple[Run, Check, Flood | None]:
        with tempfile.TemporaryDirectory(prefix="flashsale-bench-flood-") as tmp:
            workdir = Path(tmp)
            settings = self._settings(workdir) | (extra_settings or {})
            item_ids = _seed(settings, self.shape)
            extra = kind.prepare(settings) if kind is not None and kind.prepare is not None else []
            # Only our settings: a FLASHSALE_DATABASE_URL or FLASHSALE_BACKEND from the caller would
            # point the server at another store.
            env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
            env |= {f"FLASHSALE_{k.upper()}": v for k, v in settings.items()}
            log = workdir / "api.log"
            flood: Flood | None = None
            with uvicorn(SERVING_APP, env, log, factory=True, workers=1) as (port, _):
                if kind is not None:
                    flood_env = {**os.environ, SECRET_ENV: self.secret}
                    with flooding(port, workdir, kind, extra, flood_env) as seen:
                        run, statuses = self._buy(port, item_ids, workdir, log, connections)
                    flood = seen()
                else:
                    run, statuses = self._buy(port, item_ids, workdir, log, connections)
            return run, _check(settings, item_ids, run, statuses, kind, flood), flood

    def _buy(
        self, port: int, item_ids: list[int], workdir: Path, log: Path, connections: int
    ) -> tuple[Run, Counter[str]]:
        return _load(port, self.shape, item_ids, self.secret, workdir, log, connections=connections)

    def _settings(self, workdir: Path) -> dict[str, str]:
        return {
            "backend": "memory",
            "database_url": f"sqlite:///{workdir / 'flashsale.db'}",
            "data_dir": str(workdir),
            "jwt_secret": self.secret,
            "admin_token": secrets.token_urlsafe(16),
            "payment_secret": secrets.token_urlsafe(16),
        }


def ratios(quiet: Result, flooded: Result) -> str:
    """Describe the flooded run against the quiet one: p99, p50 and throughput ratios."""

    def times(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}×" if a is not None and b else "—"

    p99 = times(flooded.p99_ms, quiet.p99_ms)
    return (
        f"with/without: p99 {p99} (target ≤ {P99_TARGET:.0f}×), p50 {times(flooded.p50_ms, quiet.p50_ms)}, "
        f"throughput {times(flooded.rate, quiet.rate)}"
    )


def _seed(settings: dict[str, str], shape: Shape) -> list[int]:
    """Create SESSIONS sessions, the first open now with the shape's items; return those items' ids."""
    platform = build(Settings(_env_file=None, **settings))
    try:
        cat, now = platform.catalog, datetime.now(UTC)
        campaign = cat.create_campaign(
            name="bench", theme="bench", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=2)
        )
        windows = [("open", now - timedelta(minutes=1), now + timedelta(hours=6))]
        windows += [
            (
                f"later {n}",
                now + timedelta(hours=6, minutes=10 * n),
                now + timedelta(hours=6, minutes=10 * n + 5),
            )
            for n in range(1, SESSIONS)
        ]
        first, *later = cat.create_sessions(campaign.id, windows)
        ids = seed_items(cat, first.id, shape)
        shown = cat.create_product(sku="SHOWN", name="on show later", list_price_cents=2000, stock=10**6)
        for session in later:
            cat.create_item(session_id=session.id, product_id=shown.id, flash_price_cents=900, quota=100)
        return ids
    finally:
        platform.close()


def _check(
    settings: dict[str, str],
    item_ids: list[int],
    run: Run,
    statuses: Counter[str],
    kind: FloodKind | None,
    flood: Flood | None,
) -> Check:
    """Rebuild the ledger from the stored orders and check it, the purchase statuses and the flood's."""
    check = check_sale(rebuilt_levels(settings, item_ids), run)
    problem = _statuses(statuses, {"201", "409"})
    detail = f"{check.detail}; ledger rebuilt from the stored orders; statuses {dict(statuses)}"
    if kind is not None and flood is not None:
        unexpected = {s: n for s, n in flood.statuses.items() if s not in kind.status.split("|")}
        problem = problem or (f"the flood got {unexpected}" if unexpected else None)
        seen = "events" if kind.stream else "× GET"
        detail += f"; flood: {flood.requests:,} {seen} {kind.path}, statuses {flood.statuses}"
    return Check(check.ok and problem is None, detail if problem is None else f"{problem}; {detail}")


def steps(*, requests: int) -> list[tuple[str, Callable[[], Result | Skipped]]]:
    """Return the quiet step and the flooded ones; each flooded one reports its ratios to the quiet one."""
    suite = ReadFloodSuite(requests=requests)
    return [
        ("read flood / buy path alone", suite.quiet_step),
        *(
            (
                f"read flood / buy path + {kind.connections} conns of {kind.label}",
                partial(suite.flooded_step, kind),
            )
            for kind in (SESSIONS_FLOOD, NOT_FOUND_FLOOD, BOARD_VIEWERS)
        ),
    ]
