"""The HTTP buy path under uvicorn, and the bare FastAPI floor under the same workers.

The server runs with as many workers as there are cores; the load generator is a separate process
(`bench.loadgen`) on the same machine, so the two share the CPU, as they would on one box.
The buy path runs on the Redis ledger with orders in PostgreSQL, in a database created for the run.
Each row also gives the server's CPU per request: the user + system time of uvicorn's supervisor and
every process under it (the workers, whose order writers run on until the orders have landed), from
/proc around the load. That is what a request costs the server, whatever else the box runs, so it
tells changes apart when the throughput of a shared box does not.

`python -m bench --only http` runs just these rows: the floor first, then the buy path against it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

from bench.ledgers import redis_prefix
from bench.loadgen import SECRET_ENV
from bench.report import Result, Skipped
from bench.services import free_port, psycopg_url
from bench.workload import PER_USER_LIMIT, Check, Level, Run, Shape, check_sale
from flashsale.bootstrap import build
from flashsale.config import Settings
from flashsale.services.catalog import CatalogService

ROOT = Path(__file__).resolve().parents[1]  # where `bench` is importable from
CONNECTIONS = 64
WORKERS = max(2, os.cpu_count() or 2)
PERSIST_TIMEOUT_S = 60.0  # how long accepted orders may take to reach PostgreSQL after the last answer
BUY_PATH = "HTTP buy path: POST /purchases (redis ledger)"
FLOOR = "HTTP floor: bare FastAPI POST"


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """Return the CPU seconds used so far by `root` and every process under it (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu_seconds(pid)
        todo += children.get(pid, [])
    return total


class Server(NamedTuple):
    """A running uvicorn: its port and its supervisor's pid."""

    port: int
    pid: int


@contextlib.contextmanager
def uvicorn(
    target: str, env: dict[str, str], log: Path, *, factory: bool, workers: int = WORKERS
) -> Iterator[Server]:
    """Serve `target` with `workers` uvicorn workers on a free loopback port; yield where it runs."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--http", "httptools", "--no-access-log", "--log-level", "info"]
    cmd += ["--factory"] if factory else []
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        _wait_for_workers(proc, log, workers)
        yield Server(port, proc.pid)
    finally:
        proc.terminate()  # uvicorn's supervisor stops its workers on SIGTERM
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_workers(
    proc: subprocess.Popen[bytes], log: Path, workers: int, timeout_s: float = 120.0
) -> None:
    # Every worker must be up before the clock starts, or the first requests measure start-up.
    deadline = time.monotonic() + timeout_s
    while log.read_text(errors="replace").count("Application startup complete") < workers:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)


def _load(
    port: int,
    shape: Shape,
    item_ids: list[int],
    secret: str,
    workdir: Path,
    server_log: Path,
    *,
    connections: int = CONNECTIONS,
) -> tuple[Run, Counter[str]]:
    """Replay the shape's crowd from a separate load-generator process; return the run and the statuses."""
    seen = run_loadgen(port, shape, item_ids, secret, workdir, server_log, connections=connections)
    crowd = shape.crowd()
    run = Run(seen["seconds"], seen["latencies_ns"], [crowd[i] for i in seen["granted"]], shape.requests)
    return run, Counter(seen["statuses"])


def run_loadgen(
    port: int,
    shape: Shape,
    item_ids: list[int],
    secret: str,
    workdir: Path,
    server_log: Path,
    *,
    connections: int = CONNECTIONS,
    checkout: bool = False,
    coupon_wave: int | None = None,
) -> dict[str, Any]:
    """Run `bench.loadgen` in its own process (`checkout`: cart journeys) and return what it wrote.

    If the load generator fails (e.g. the server dropped connections), the error carries the end of
    the server's log, which is deleted with the run's directory.
    """
    result = workdir / f"loadgen-{secrets.token_hex(4)}.json"
    args = {
        "--port": port,
        "--requests": shape.requests,
        "--items": shape.items,
        "--item-ids": ",".join(map(str, item_ids)),
        "--connections": connections,
        "--key-prefix": f"{secrets.token_hex(4)}-",
        "--result": result,
    }
    flags = ["--checkout"] if checkout else []
    if coupon_wave is not None:
        flags += ["--coupon-wave", str(coupon_wave)]
    cmd = [sys.executable, "-m", "bench.loadgen", *flags, *(str(x) for pair in args.items() for x in pair)]
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, SECRET_ENV: secret}, stderr=subprocess.PIPE)
    if done.returncode != 0:
        raise RuntimeError(
            f"load generator failed ({done.returncode}): {done.stderr.decode(errors='replace')[-1500:]}\n"
            f"server log: {server_log.read_text(errors='replace')[-3000:]}"
        )
    seen: dict[str, Any] = json.loads(result.read_text())
    return seen


def _per_request_us(cpu_s: float, run: Run) -> float:
    return cpu_s / run.decisions * 1e6 if run.decisions else 0.0


def _statuses(statuses: Counter[str], expected: set[str]) -> str | None:
    unexpected = {s: n for s, n in statuses.items() if s not in expected}
    return f"unexpected HTTP statuses {unexpected}" if unexpected else None


class HttpSuite:
    """The floor, then the buy path on one hot item and on 100 items, against one Redis and PostgreSQL."""

    def __init__(self, redis_url: str, postgres_url: str, *, requests: int, target: float) -> None:
        self.redis_url = redis_url
        self.postgres_url = postgres_url
        self.requests = requests
        self.target = target
        self.floor: Result | None = None
        self.secret = secrets.token_urlsafe(32)

    def floor_step(self) -> Result:
        """Measure the bare FastAPI POST (same workers, same load generator, same crowd)."""
        shape = Shape(self.requests, 1)
        with tempfile.TemporaryDirectory(prefix="flashsale-bench-floor-") as tmp:
            workdir = Path(tmp)
            log = workdir / "floor.log"
            with uvicorn("bench.floor_app:app", dict(os.environ), log, factory=False) as server:
                before = tree_cpu_seconds(server.pid)
                run, statuses = _load(server.port, shape, [1], self.secret, workdir, log)
                cpu = _per_request_us(tree_cpu_seconds(server.pid) - before, run)
        problem = _statuses(statuses, {"201"})
        # The floor keeps no stock, so there is nothing to conserve: every request must simply succeed.
        check = Check(problem is None, problem or f"{statuses['201']} × 201; no stock in the floor app")
        how = f"{WORKERS} workers, {CONNECTIONS} conns; server CPU {cpu:,.0f} µs/request"
        self.floor = Result(FLOOR, "HTTP floor", "req/s", run, check, how)
        return self.floor

    def buy_step(self, shape: Shape) -> Result:
        """Measure POST /purchases end to end on the Redis ledger, then check the ledger and the orders."""
        with (
            tempfile.TemporaryDirectory(prefix="flashsale-bench-http-") as tmp,
            _sale_database(self.postgres_url) as database_url,
            redis_prefix(self.redis_url) as redis_url,
        ):
            workdir = Path(tmp)
            settings = self._settings(database_url, redis_url, workdir)
            item_ids = _seed(settings, shape)
            env = {**os.environ, **{f"FLASHSALE_{k.upper()}": str(v) for k, v in settings.items()}}
            app = "flashsale.api.main:serving_app_factory"  # what `flashsale serve` runs
            with uvicorn(app, env, workdir / "api.log", factory=True) as server:
                before = tree_cpu_seconds(server.pid)
                run, statuses = _load(server.port, shape, item_ids, self.secret, workdir, workdir / "api.log")
                # The servers' order writers must still run while the accepted orders land.
                landed = _await_orders(database_url, len(run.granted))
                cpu = _per_request_us(tree_cpu_seconds(server.pid) - before, run)
            check = _check_buy_path(settings, item_ids, run, statuses, landed)
        how = f"{WORKERS} workers, {CONNECTIONS} conns"
        if self.floor is not None and self.floor.rate:
            how += f", {run.decisions / run.seconds / self.floor.rate:.0%} of floor"
        how += f"; server CPU {cpu:,.0f} µs/request (orders written included)"
        return Result(BUY_PATH, shape.label, "req/s", run, check, how, self.target)

    def _settings(self, database_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
        """Return the server's Settings fields (FLASHSALE_<NAME> in its environment)."""
        return {
            "backend": "redis",
            "redis_url": redis_url,
            "database_url": database_url,
            "data_dir": str(workdir),
            "jwt_secret": self.secret,
            "admin_token": secrets.token_urlsafe(16),
            "payment_secret": secrets.token_urlsafe(16),
        }


@contextlib.contextmanager
def _sale_database(postgres_url: str) -> Iterator[str]:
    """Create a database for one buy-path run and drop it afterwards; yield its SQLAlchemy URL."""
    name = f"flashsale_bench_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = postgres_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _seed(settings: dict[str, str], shape: Shape) -> list[int]:
    """Create a campaign open now with one session and the shape's items; return their ids."""
    platform = build(Settings(_env_file=None, **settings))
    try:
        cat, now = platform.catalog, datetime.now(UTC)
        campaign = cat.create_campaign(
            name="bench", theme="bench", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1)
        )
        session = cat.create_session(
            campaign_id=campaign.id,
            name="bench",
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=6),
        )
        return seed_items(cat, session.id, shape)
    finally:
        platform.close()


def seed_items(cat: CatalogService, session_id: int, shape: Shape) -> list[int]:
    """Put the shape's items on sale in the session (one product each); return the item ids."""
    ids = []
    for n in shape.item_ids:
        product = cat.create_product(sku=f"BENCH-{n}", name=f"bench {n}", list_price_cents=1000, stock=10**6)
        item = cat.create_item(
            session_id=session_id,
            product_id=product.id,
            flash_price_cents=500,
            quota=shape.quota_per_item,
            per_user_limit=PER_USER_LIMIT,
        )
        ids.append(item.id)
    return ids


def _stored_units(database_url: str) -> int:
    with psycopg.connect(psycopg_url(database_url)) as conn:
        row = conn.execute("SELECT coalesce(sum(qty), 0) FROM orders").fetchone()
    return int(row[0]) if row else 0


class Landed(NamedTuple):
    """How many units PostgreSQL holds orders for, and how long after the last answer they got there."""

    units: int
    after_s: float


def _await_orders(database_url: str, granted: int) -> Landed:
    """Wait up to PERSIST_TIMEOUT_S for orders of `granted` units: they are written behind the answers."""
    started = time.monotonic()
    deadline = started + PERSIST_TIMEOUT_S
    while (stored := _stored_units(database_url)) < granted and time.monotonic() < deadline:
        time.sleep(0.05)
    return Landed(stored, time.monotonic() - started)


def rebuilt_levels(settings: dict[str, str], item_ids: list[int]) -> list[Level]:
    """The items' stock levels in a ledger built afresh from the stored orders, after a run."""
    platform = build(Settings(_env_file=None, **settings), migrate=False)
    try:
        levels = []
        for item in item_ids:
            lv = platform.ledger.stock(item)
            levels.append(Level(item, lv.quota, lv.available, lv.held, lv.sold))
        return levels
    finally:
        platform.close()


def _check_buy_path(
    settings: dict[str, str], item_ids: list[int], run: Run, statuses: Counter[str], landed: Landed
) -> Check:
    """Check the ledger's counters, the 201s against them, the per-user limit, and that orders were stored."""
    check = check_sale(rebuilt_levels(settings, item_ids), run)
    problem = _statuses(statuses, {"201", "409"})
    if landed.units != len(run.granted):
        problem = f"{landed.units} units ordered in PostgreSQL for {len(run.granted)} 201s"
    detail = (
        f"{check.detail}; {landed.units} units ordered in PostgreSQL, the last {landed.after_s:.1f} s "
        f"after the last answer; statuses {dict(statuses)}"
    )
    return Check(check.ok and problem is None, detail if problem is None else f"{problem}; {detail}")


def steps(
    redis_url: str | None, postgres_url: str | None, *, requests: int, target: float
) -> list[tuple[str, Callable[[], Result | Skipped]]]:
    """Return the floor and the two buy-path steps, or one skip when a service is missing."""
    if redis_url is None or postgres_url is None:
        return [("HTTP", lambda: Skipped(BUY_PATH, "needs both Redis and PostgreSQL"))]
    suite = HttpSuite(redis_url, postgres_url, requests=requests, target=target)
    return [
        ("HTTP floor", suite.floor_step),
        ("HTTP buy path / 1 hot item", lambda: suite.buy_step(Shape(requests, 1))),
        ("HTTP buy path / 100 items", lambda: suite.buy_step(Shape(requests, 100))),
    ]
