"""`flashsale expire`, `reconcile`, `pauses`, `write-orders`, `forget-finished`: background jobs by hand."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table
from sqlalchemy.exc import OperationalError

from flashsale.bootstrap import Platform, build, order_writer_for
from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.jobs.order_writer import backoff_s
from flashsale.services.fence import DEFAULT_LEASE_S
from flashsale.services.reconcile import ItemDrift, Reconciler, ReportFormat, render_report
from flashsale.services.retention import HOUR_S
from flashsale.store.lease import LeaseTaken

app = typer.Typer()


@app.command()
def expire() -> None:
    """Expire every unpaid hold past its payment window; print how many."""
    try:
        platform = build(Settings())
    except LeaseTaken as exc:
        refuse(f"{exc}: the running server's own expiry job sweeps already", code=1)
    try:
        expired = 0
        while swept := platform.orders.expire_due():
            expired += swept
    finally:
        platform.close()
    typer.echo(f"{expired} holds expired")


@app.command("forget-finished")
def forget_finished(
    older_than_hours: float | None = typer.Option(
        None,
        "--older-than-hours",
        min=0.0,
        help="Forget holds finished at least this long ago (default: FLASHSALE_LEDGER_RETENTION_HOURS).",
    ),
) -> None:
    """Forget finished holds (released, refunded, expired) and their request keys from the ledger,
    and paid ones older than FLASHSALE_LEDGER_SOLD_RETENTION_HOURS.

    Their orders stay in the database and answer a retried Idempotency-Key (and a refund); held
    holds are kept. Every server does this periodically (FLASHSALE_LEDGER_RETENTION_INTERVAL_S); run it
    by hand against a Redis ledger. On the in-process ledger the server's own job does it (or
    POST /admin/ledger/retention).
    """
    settings = Settings()
    try:
        platform = build(settings)
    except LeaseTaken as exc:
        refuse(f"{exc}: the running server's retention job forgets its own ledger's holds", code=1)
    try:
        retention = platform.retention
        if older_than_hours is not None:
            retention.keep_s = older_than_hours * HOUR_S
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress:
            progress.add_task("forgetting finished holds", total=None)
            done = retention.forget_finished()
    finally:
        platform.close()
    typer.echo(
        f"{done.forgotten} finished holds forgotten ({done.written} orders written first),"
        f" {done.sold} sold holds forgotten"
    )


def _platform(why_refused: str, *, read_only: bool = False) -> Platform:
    try:
        return build(Settings(), migrate=not read_only, read_only=read_only)
    except LeaseTaken as exc:
        refuse(f"{exc}: {why_refused}", code=1)


@app.command()
def reconcile(
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Report drift only; change nothing (no pause, no rebuild, no writes: purchases still in the"
        " stream, not yet written by an order writer, are not seen).",
    ),
    lease: float = typer.Option(
        DEFAULT_LEASE_S,
        envvar="FLASHSALE_RECONCILE_LEASE_S",
        min=1.0,
        help="Seconds the pause lasts at most if this command dies; renewed while it works.",
    ),
    report_path: str | None = typer.Option(
        None,
        "--report",
        help="Also write every acknowledged order the repair touched (id, user, item, request id, what"
        " happened) to this file.",
    ),
    report_format: str = typer.Option("json", "--format", help="Format of --report: json or csv."),
) -> None:
    """Compare the ledger with the stored orders, report drift, and repair it (pausing the sale briefly).

    Run it after a Redis restart or failover; it is safe on a live sale. While it repairs, every
    item is paused under a lease: purchases and payments are answered 503 with Retry-After, and
    the lease ends by itself if the command is killed (see `flashsale pauses`). Exits 1 if drift
    remains, if an item's paid orders exceed its quota (refund by hand), or if it could not pause;
    exits 3 if it took acknowledged orders away (cancelled to fit, or granted twice for one key:
    every one is printed and in --report), so scripts cannot miss shoppers to tell.
    """
    if report_format not in ("json", "csv"):
        refuse(f"--format must be json or csv, not {report_format!r}", code=2)
    fmt: ReportFormat = "csv" if report_format == "csv" else "json"
    platform = _platform(
        "the running server rebuilt its in-process ledger from the orders at start", read_only=dry_run
    )
    try:
        drain = order_writer_for(platform).drain if platform.orders.write_behind and not dry_run else None
        report = Reconciler(platform.orders, drain=drain, lease_s=lease).run(repair=not dry_run)
    except FlashSaleError as exc:
        if exc.code not in (ErrorCode.SALE_PAUSED, ErrorCode.CONFLICT):
            raise
        refuse(
            f"{exc.message} (another reconcile or rebuild holds the pause, or this one outlived it)", code=1
        )
    finally:
        platform.close()
    console = Console()
    console.print(_drift_table("found", report.items))
    if report.repaired:
        console.print(_drift_table("after repair", report.after))
        console.print(f"items paused for {report.paused_s:.3f} s")
    for kind, count in report.kinds().items():
        console.print(f"{kind}: {count}")
    for item_id, units in report.over_quota.items():
        console.print(
            f"[red]item {item_id}: paid orders take {units} units, over its quota: refund by hand[/]"
        )
    for a in report.affected:
        line = f"order {a.order_id} (user {a.user_id}, item {a.item_id}): {a.what} {a.detail}"
        console.print(line.rstrip())
    if report_path is not None:
        Path(report_path).write_text(render_report(report, fmt))
    remaining = report.after if report.repaired else report.items
    if report.over_quota or not all(d.clean for d in remaining):
        raise typer.Exit(1)
    if report.taken_away:
        raise typer.Exit(3)


@app.command()
def pauses(
    resume: bool = typer.Option(False, "--resume", help="End every pause now (the operator's override)."),
) -> None:
    """List the items whose ledger is paused (by a reconcile or a rebuild) and until when; --resume ends them.

    A pause ends by itself when its lease runs out; `--resume` is for not waiting. Resuming while a
    reconcile is still working makes its rebuild refuse (it checks its lease), so nothing is torn.
    """
    platform = _platform("the running server's in-process ledger cannot be paused from here", read_only=True)
    try:
        paused = platform.ledger.pauses()
        now = platform.deps.clock()
        for item_id, pause in sorted(paused.items()):
            typer.echo(f"item {item_id}: paused for {pause.until - now:.1f} s more (lease {pause.token})")
        if resume and paused:
            platform.ledger.resume(paused, token=None)
            typer.echo(f"resumed {len(paused)} items")
        elif not paused:
            typer.echo("no item is paused")
    finally:
        platform.close()


def _drift_table(title: str, drifts: list[ItemDrift]) -> Table:
    table = Table(title=f"ledger vs database, {title}")
    for column in (
        "item",
        "quota",
        "ledger sold",
        "db sold",
        "ledger held",
        "db held",
        "orders missing in db",
        "holds missing in ledger",
        "state mismatches",
        "clean",
    ):
        table.add_column(column, justify="right")
    for d in drifts:
        table.add_row(
            str(d.item_id),
            str(d.ledger.quota),
            str(d.ledger.sold),
            str(d.stored_sold),
            str(d.ledger.held),
            str(d.stored_held),
            str(len(d.orders_missing_in_db)),
            str(len(d.holds_missing_in_ledger)),
            str(len(d.state_mismatches)),
            "yes" if d.clean else "[red]no[/]",
        )
    return table


@app.command("write-orders")
def write_orders(
    batch: int = typer.Option(500, min=1, help="Purchases written per transaction."),
    claim_idle_ms: int = typer.Option(
        30_000, min=1, help="Claim entries a crashed writer left unacked this long."
    ),
    forget_idle_ms: int = typer.Option(
        600_000, min=1, help="Remove writers idle this long with nothing pending from the group."
    ),
) -> None:
    """Write orders from the Redis ledger's purchase stream into the database until stopped (SIGTERM/Ctrl-C).

    `flashsale serve` runs a writer in every worker already; run more here for throughput. Each
    writer also trims the stream to what every consumer group acknowledged. A vanished stream or
    group is created again, and Redis or database outages are waited out; neither stops it.
    """
    settings = Settings()
    if settings.backend != "redis":
        refuse("the in-process ledger records orders itself; set FLASHSALE_BACKEND=redis", code=2)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    platform = _build_when_reachable(settings, stop)
    if platform is None:  # stopped before Redis and the database were both there
        return
    try:
        writer = order_writer_for(platform)
        writer.batch, writer.claim_idle_ms, writer.forget_idle_ms = batch, claim_idle_ms, forget_idle_ms
        writer.run_forever(stop)
        typer.echo(f"{writer.stats.written} orders written, {writer.stats.duplicates} already stored")
    finally:
        platform.close()


def _build_when_reachable(settings: Settings, stop: threading.Event) -> Platform | None:
    """Build the platform once Redis and the database answer, or return None if stopped first.

    A writer started while either is down waits for it (with the writer's backoff) instead of
    exiting, which under a supervisor would be a crash loop for as long as the outage lasts.
    """
    failures = 0
    while not stop.is_set():
        try:
            return build(settings)
        except (RedisConnectionError, RedisTimeoutError, OperationalError) as exc:
            failures += 1
            if failures == 1:
                typer.echo(f"waiting for Redis and the database: {exc}", err=True)
            stop.wait(backoff_s(failures))
    return None
