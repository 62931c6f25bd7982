"""`flashsale serve`: run the HTTP API under uvicorn.

uvicorn runs on uvloop with the httptools parser (uvicorn[standard], a dependency), the fastest loop
and parser it has; the request log (one line per request) can be turned off for a sale. The protocol
is uvicorn's httptools one plus read deadlines (`flashsale.api.serving`), so slow clients are dropped.

Before it listens, `serve` runs the readiness checks of `/readyz` on the configured store and
ledger and logs each outcome; if either cannot be reached it refuses to start (exit 1), instead of
listening while every purchase would fail. An order writer's backlog is only logged: the writers
started with the server catch up.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
import uvicorn

from flashsale.api.health import preflight
from flashsale.api.metrics import MULTIPROC_DIR
from flashsale.api.serving import guarded_http
from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.logs import fields, logging_config
from flashsale.store.lease import LeaseTaken

app = typer.Typer()
APP_FACTORY = "flashsale.api.main:serving_app_factory"
REQUIRED_AT_START = ("store", "ledger")

log = logging.getLogger("flashsale.serve")


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="FLASHSALE_HOST", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(envvar="FLASHSALE_PORT", min=0, max=65535, help="TCP port; 0 picks a free one.")
    ] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes; more than one needs a shared ledger engine.")
    ] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            envvar="FLASHSALE_ACCESS_LOG",
            help="Log every request and purchase decision; off saves CPU on the buy path at peak.",
        ),
    ] = True,
) -> None:
    """Serve the shop, admin and board API (configured by FLASHSALE_* variables)."""
    settings = Settings()
    log_config = logging_config(json_lines=settings.log_json)
    logging.config.dictConfig(log_config)
    if workers > 1 and settings.backend == "memory":
        # Each process would rebuild its own in-process ledger and sell the whole quota again.
        refuse(
            f"--workers {workers} with the in-process ledger (FLASHSALE_BACKEND=memory): each worker"
            " would keep its own stock counters and they would oversell. Use --workers 1, or a shared"
            " ledger (FLASHSALE_BACKEND=redis).",
            code=2,
        )
    _check_readiness(settings)
    # Read by the app in every worker process: its request lines replace uvicorn's access log.
    os.environ["FLASHSALE_ACCESS_LOG"] = "true" if access_log else "false"
    try:
        with _metrics_across_workers(workers):
            uvicorn.run(
                APP_FACTORY,
                factory=True,
                host=host,
                port=port,
                workers=workers,
                access_log=False,
                log_config=log_config,
                # The edge a slow or greedy client meets: deadlines on reading a request, an idle
                # keep-alive limit, 503 beyond max_connections, and the accept queue's length.
                http=guarded_http(settings),  # type: ignore[arg-type]  # uvicorn calls it like a class
                timeout_keep_alive=settings.keep_alive_s,
                limit_concurrency=settings.max_connections,
                backlog=settings.listen_backlog,
            )
    except LeaseTaken as exc:
        refuse(f"{exc}: a server or a demo already runs the in-process ledger on this database", code=1)


def _check_readiness(settings: Settings) -> None:
    """Log every readiness check; refuse to start when the store or the ledger cannot be reached."""
    checks = asyncio.run(preflight(settings))
    for check in checks:
        level = logging.INFO if check.ok else logging.WARNING
        log.log(level, "readiness", extra=fields(check=check.name, ok=check.ok, detail=check.detail))
    down = [c for c in checks if c.name in REQUIRED_AT_START and not c.ok]
    if down:
        what = ", ".join(f"{c.name} ({c.detail})" for c in down)
        refuse(
            f"cannot start: {what} not reachable; check FLASHSALE_DATABASE_URL, FLASHSALE_BACKEND and"
            " FLASHSALE_REDIS_URL (the log above has the driver's error)",
            code=1,
        )


@contextmanager
def _metrics_across_workers(workers: int) -> Iterator[None]:
    """With several workers, have each count into files that any worker's scrape adds up.

    A scrape reaches whichever worker accepts the connection; without this it would see that
    worker's counters only. The spawned workers inherit the variable and prometheus-client reads it
    when they import it; the files go when the server stops. A directory set by the operator is
    used as it is (it must be empty when the server starts).
    """
    if workers == 1 or os.environ.get(MULTIPROC_DIR):
        yield
        return
    path = tempfile.mkdtemp(prefix="flashsale-metrics-")
    os.environ[MULTIPROC_DIR] = path
    try:
        yield
    finally:
        del os.environ[MULTIPROC_DIR]
        shutil.rmtree(path, ignore_errors=True)
