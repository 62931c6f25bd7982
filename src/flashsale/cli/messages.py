"""`flashsale messages …`: run the sender; templates, members and opt-outs, waves, dry-runs, the log.

These commands open the database only (no ledger), so they run beside a serving process.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import sessionmaker

from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.domain.errors import FlashSaleError
from flashsale.messaging.service import Member, MessagingAdmin
from flashsale.messaging.store import Segment
from flashsale.messaging.templates import Template
from flashsale.messaging.wiring import dispatcher_for, policy_from
from flashsale.store import db as store_db

app = typer.Typer(help="Messages to shoppers: 催付 reminders and campaign waves.", no_args_is_help=True)


@contextmanager
def _admin() -> Iterator[MessagingAdmin]:
    settings = Settings()
    url = settings.resolved_database_url()
    store_db.upgrade(url)
    engine = store_db.make_engine(url)
    try:
        yield MessagingAdmin(sessionmaker(engine, expire_on_commit=False), policy_from(settings), time.time)
    except FlashSaleError as exc:
        refuse(f"{exc.code.value}: {exc.message}", code=2)
    finally:
        engine.dispose()


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
) -> None:
    """Send due messages until stopped (SIGTERM/Ctrl-C): 催付 from order events, waves, retries.

    Safe to kill at any moment: a message being sent when the sender died is sent again, under the
    same key, once its lease runs out (see docs/messaging.md for the exact guarantee).
    """
    settings = Settings()
    url = settings.resolved_database_url()
    store_db.upgrade(url)
    engine = store_db.make_engine(url)
    try:
        sender = dispatcher_for(settings, engine, time.time)
        if once:
            stats = sender.run_once()
            typer.echo(f"sent {stats.sent}, deferred {stats.deferred}, suppressed {stats.suppressed}")
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        sender.run_forever(stop, settings.messaging_poll_s)
    finally:
        engine.dispose()


@app.command("template")
def put_template(
    name: str,
    locale: str,
    subject: Annotated[str, typer.Option(help="Subject line (email); placeholders allowed.")],
    body: Annotated[str, typer.Option(help="Text with {name} {order_id} {item} {amount} {deadline}.")],
) -> None:
    """Store the text of template NAME in LOCALE."""
    with _admin() as admin:
        admin.put_template(Template(name, locale, subject, body))
    typer.echo(f"template {name} [{locale}] stored")


@app.command()
def templates() -> None:
    """List every template text (built-in ones included)."""
    table = Table("name", "locale", "subject", "body")
    with _admin() as admin:
        for t in admin.templates():
            table.add_row(t.name, t.locale, t.subject, t.body)
    Console().print(table)


@app.command()
def preview(name: str, locale: str = "zh-CN", tz: str | None = None) -> None:
    """Render template NAME with sample facts, as a shopper in LOCALE and TZ would read it."""
    with _admin() as admin:
        shown = admin.preview(name, locale, tz)
    typer.echo(f"{shown.subject}\n\n{shown.body}")


@app.command()
def member(
    user_id: str,
    name: str,
    email: str | None = None,
    phone: str | None = None,
    locale: str = "zh-CN",
    tz: str = "Asia/Shanghai",
) -> None:
    """Store how to reach member USER_ID."""
    with _admin() as admin:
        admin.put_member(Member(user_id, name, email, phone, locale, tz))
    typer.echo(f"member {user_id} stored")


@app.command("opt-out")
def opt_out(
    user_id: str, channel: str, undo: Annotated[bool, typer.Option("--undo", help="Opt back in.")] = False
) -> None:
    """Stop (or, with --undo, resume) messages to USER_ID on CHANNEL, from the next message on."""
    with _admin() as admin:
        admin.opt_out(user_id, channel, out=not undo)
    typer.echo(f"{user_id} {'opted back in to' if undo else 'opted out of'} {channel}")


@app.command("wave")
def add_wave(
    name: str,
    template: str,
    channel: str,
    send_at: Annotated[
        datetime, typer.Option(help="When, ISO 8601 with a zone.", formats=["%Y-%m-%dT%H:%M%z"])
    ],
    segment: Segment = Segment.ALL,
    item_id: Annotated[int | None, typer.Option(help="The item of --segment item_buyers.")] = None,
    category: Annotated[str | None, typer.Option(help="The category of --segment category_buyers.")] = None,
    coupon_template_id: Annotated[
        int | None, typer.Option(help="The coupon template of --segment coupon_holders.")
    ] = None,
) -> None:
    """Schedule a wave of TEMPLATE on CHANNEL to a segment at --send-at."""
    with _admin() as admin:
        wave = admin.schedule_wave(
            name=name,
            template=template,
            channel=channel,
            segment=segment,
            send_at=send_at,
            item_id=item_id,
            category=category,
            coupon_template_id=coupon_template_id,
        )
    typer.echo(f"wave {wave.id} scheduled for {wave.send_at.isoformat()}")


@app.command()
def waves() -> None:
    """List the waves."""
    table = Table("id", "name", "template", "channel", "segment", "send at", "status")
    with _admin() as admin:
        for w in admin.waves():
            target = next((t for t in (w.item_id, w.category, w.coupon_template_id) if t is not None), None)
            segment = w.segment if target is None else f"{w.segment} {target}"
            table.add_row(str(w.id), w.name, w.template, w.channel, segment, w.send_at.isoformat(), w.status)
    Console().print(table)


@app.command("dry-run")
def dry_run(wave_id: int) -> None:
    """Show who wave WAVE_ID would reach, with what text, and when (or why not)."""
    table = Table("member", "channel", "when", "to", "text or reason")
    with _admin() as admin:
        for p in admin.dry_run(wave_id):
            when = p.at.isoformat() if p.at is not None else "-"
            table.add_row(p.user_id, p.channel, when, p.address or "-", p.body or f"not sent: {p.reason}")
    Console().print(table)


@app.command()
def log(
    user_id: str | None = None, order_id: str | None = None, wave_id: int | None = None, limit: int = 50
) -> None:
    """Print the delivery log, newest first, and the count of messages by outcome."""
    table = Table("message", "key", "member", "channel", "attempt", "at", "outcome", "detail")
    with _admin() as admin:
        for d in admin.deliveries(user_id=user_id, order_id=order_id, wave_id=wave_id, limit=limit):
            table.add_row(
                str(d.message_id),
                d.key,
                d.user_id,
                d.channel,
                str(d.attempt),
                d.at.isoformat(),
                d.outcome,
                d.detail,
            )
        counts = admin.counts()
    console = Console()
    console.print(table)
    for outcome, count in counts.items():
        console.print(f"{outcome}: {count}")
