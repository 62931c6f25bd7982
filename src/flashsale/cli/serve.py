"""`flashsale serve`: run the HTTP API under uvicorn.

uvicorn runs on uvloop with the httptools parser (uvicorn[standard], a dependency), the fastest loop
and parser it has; the access log (one line per request) can be turned off for a sale. The protocol
is uvicorn's httptools one plus read deadlines (`flashsale.api.serving`), so slow clients are dropped.
"""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from flashsale.api.serving import guarded_http
from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.store.lease import LeaseTaken

app = typer.Typer()
APP_FACTORY = "flashsale.api.main:serving_app_factory"


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
            envvar="FLASHSALE_ACCESS_LOG", help="Log every request; off saves CPU on the buy path at peak."
        ),
    ] = True,
) -> None:
    """Serve the shop, admin and board API (configured by FLASHSALE_* variables)."""
    settings = Settings()
    if workers > 1 and settings.backend == "memory":
        # Each process would rebuild its own in-process ledger and sell the whole quota again.
        refuse(
            f"--workers {workers} with the in-process ledger (FLASHSALE_BACKEND=memory): each worker"
            " would keep its own stock counters and they would oversell. Use --workers 1, or a shared"
            " ledger (FLASHSALE_BACKEND=redis).",
            code=2,
        )
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
            # The edge a slow or greedy client meets: deadlines on reading a request, an idle
            # keep-alive limit, 503 beyond max_connections, and the accept queue's length.
            http=guarded_http(settings),  # type: ignore[arg-type]  # uvicorn calls it like a class
            timeout_keep_alive=settings.keep_alive_s,
            limit_concurrency=settings.max_connections,
            backlog=settings.listen_backlog,
        )
    except LeaseTaken as exc:
        refuse(f"{exc}: a server or a demo already runs the in-process ledger on this database", code=1)
