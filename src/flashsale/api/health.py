"""Health for load balancers: `GET /healthz` (the process serves) and `GET /readyz` (it can serve a sale).

`/healthz` does no I/O: a failing one means the process is stuck or gone, and a restart is the cure.
`/readyz` asks what a purchase needs, each check in a thread of its own small pool (a dependency
that hangs ties up those threads, never the ones the buy path runs on) and bounded by
`FLASHSALE_READY_TIMEOUT_S`:
- `store`: the database answers `SELECT 1` (on the read engine, which never queues behind SQLite's
  writer);
- `ledger`: the Redis ledger answers PING (the in-process ledger is always there);
- `order_writer` (Redis ledger only): the purchases that wait for the order writer, unread or read
  but not yet committed, are at most `FLASHSALE_READY_MAX_WRITER_LAG`.
Any failure answers 503 with `Retry-After` and a body naming each failing check, so a load balancer
routes around the process while it cannot sell, without restarting it. Neither route needs a token,
and neither is on the buy path's way: they are plain routes, matched after the shop's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ResponseError
from sqlalchemy import Engine, text

from flashsale.bootstrap import Platform
from flashsale.config import Settings
from flashsale.ledger import ledger_from_url
from flashsale.ledger.contract import Ledger, PurchaseStream
from flashsale.logs import fields
from flashsale.store import db as store_db

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5  # about one load-balancer probe interval: the soonest a retry could see a change
LAG_COUNT_CAP = 100_000  # a backlog counted entry by entry reads as at most this
CHECK_THREADS = 3  # one per check (store, ledger, order_writer), so one slow check delays no other


@dataclass(frozen=True)
class Check:
    """The outcome of one readiness check: its name, whether it passed, and what it saw."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class WriterBacklog:
    """Purchases the Redis ledger granted that are not yet orders in the database."""

    lag: int  # appended to the stream, not yet read by any order writer
    pending: int  # read by an order writer, not yet committed and acknowledged

    @property
    def total(self) -> int:
        return self.lag + self.pending


def writer_backlog(stream: PurchaseStream) -> WriterBacklog:
    """Read the order writers' backlog on the purchase stream from Redis (XINFO GROUPS), slowest group first.

    Before any writer created its consumer group, every entry of the stream is waiting. On a Redis
    Cluster (one stream per slot group) the backlogs of all streams are added up.
    """
    backlogs = [_stream_backlog(stream.client, key) for key in stream.every_key]
    return WriterBacklog(lag=sum(b.lag for b in backlogs), pending=sum(b.pending for b in backlogs))


def _stream_backlog(client: Any, key: str) -> WriterBacklog:
    try:
        groups: list[dict[str, Any]] = client.xinfo_groups(key)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():  # nothing was ever bought
            return WriterBacklog(lag=0, pending=0)
        raise
    if not groups:
        return WriterBacklog(lag=int(client.xlen(key)), pending=0)
    backlogs = [
        WriterBacklog(lag=_group_lag(client, key, group), pending=int(group["pending"])) for group in groups
    ]
    return max(backlogs, key=lambda backlog: backlog.total)


def _group_lag(client: Any, key: str, group: dict[str, Any]) -> int:
    # Redis reports no lag when its counters cannot give it (entries were deleted from the stream,
    # or a Redis before 7.0): the entries after the group's last delivered one are then counted,
    # up to a cap that keeps one probe cheap whatever the backlog.
    if group.get("lag") is not None:
        return int(group["lag"])
    newer = client.xrange(key, min=f"({group['last-delivered-id']}", max="+", count=LAG_COUNT_CAP)
    return len(newer)


async def preflight(settings: Settings) -> list[Check]:
    """Run the readiness checks on the store and ledger the settings name, before any platform is built.

    Nothing is migrated and no lease is taken: the server that follows does both.
    """
    url = settings.resolved_database_url()
    writes = store_db.make_engine(url)  # never connected here: only the read engine is asked
    reads = store_db.make_read_engine(url, writes)
    ledger = ledger_from_url(settings.ledger_url(), time.time)
    try:
        readiness = Readiness(
            store=reads,
            ledger=ledger,
            max_writer_lag=settings.ready_max_writer_lag,
            timeout_s=settings.ready_timeout_s,
        )
        return await readiness.run()
    finally:
        readiness.close()
        ledger.close()
        reads.dispose()
        writes.dispose()


class WriterBehind(Exception):
    """The order writer's backlog is over the readiness bound."""


class Readiness:
    """The checks behind `/readyz`, also run by `flashsale serve` before it listens."""

    def __init__(self, *, store: Engine, ledger: Ledger, max_writer_lag: int, timeout_s: float) -> None:
        self.store = store
        self.ledger = ledger
        self.max_writer_lag = max_writer_lag
        self.timeout_s = timeout_s
        self._threads = ThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="flashsale-readyz")

    @classmethod
    def of(cls, platform: Platform) -> Readiness:
        """Build the checks of a running platform, bounded by its settings."""
        return cls(
            store=platform.read_engine,
            ledger=platform.ledger,
            max_writer_lag=platform.settings.ready_max_writer_lag,
            timeout_s=platform.settings.ready_timeout_s,
        )

    async def run(self) -> list[Check]:
        """Run every check at once, each in a thread and bounded by `timeout_s`."""
        probes: dict[str, Callable[[], str]] = {"store": self._store, "ledger": self._ledger}
        if self.ledger.purchase_stream() is not None:
            probes["order_writer"] = self._order_writer
        return list(await asyncio.gather(*(self._bounded(name, probe) for name, probe in probes.items())))

    def close(self) -> None:
        """Let the checks' threads go; one stuck on a dead server ends when its driver gives up."""
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _bounded(self, name: str, probe: Callable[[], str]) -> Check:
        running = asyncio.get_running_loop().run_in_executor(self._threads, probe)
        try:
            detail = await asyncio.wait_for(running, self.timeout_s)
        except TimeoutError:
            return Check(name, False, f"no answer within {self.timeout_s:g} s")
        except WriterBehind as exc:
            return Check(name, False, str(exc))
        except Exception as exc:  # whatever the driver raises, the check failed
            # The answer is public: it names the failure, the log keeps the driver's message
            # (which may carry host names and ports).
            log.warning(
                "readiness check failed", extra=fields(check=name, error=f"{type(exc).__name__}: {exc}")
            )
            return Check(name, False, type(exc).__name__)
        return Check(name, True, detail)

    def _store(self) -> str:
        with self.store.connect() as conn:
            conn.execute(text("SELECT 1"))
        return f"{self.store.dialect.name} answers"

    def _ledger(self) -> str:
        stream = self.ledger.purchase_stream()
        if stream is None:
            return "in-process"
        stream.client.ping()
        return "redis answers"

    def _order_writer(self) -> str:
        stream = self.ledger.purchase_stream()
        assert stream is not None  # the check is only run for an engine with a stream
        backlog = writer_backlog(stream)
        detail = f"{backlog.lag} unread + {backlog.pending} pending, bound {self.max_writer_lag}"
        if backlog.total > self.max_writer_lag:
            raise WriterBehind(detail)
        return detail


class CheckOut(BaseModel):
    ok: bool
    detail: str


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadinessOut(BaseModel):
    """Every check by name; `failing` lists those that did not pass (empty when ready)."""

    status: Literal["ready", "not ready"]
    checks: dict[str, CheckOut]
    failing: list[str]


router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> dict[str, str]:
    """Answer 200 while the process serves requests: for liveness probes (restart when it fails)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "Not ready: `failing` names the checks"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Answer 200 when the store, the ledger and the order writer can serve a sale, else 503 and why.

    For load balancers: route traffic only to processes that answer 200 here.
    """
    readiness: Readiness = request.app.state.readiness
    checks = await readiness.run()
    failing = [c.name for c in checks if not c.ok]
    body = ReadinessOut(
        status="not ready" if failing else "ready",
        checks={c.name: CheckOut(ok=c.ok, detail=c.detail) for c in checks},
        failing=failing,
    )
    headers = {"Cache-Control": "no-store"}
    if failing:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return JSONResponse(body.model_dump(), status_code=503 if failing else 200, headers=headers)
