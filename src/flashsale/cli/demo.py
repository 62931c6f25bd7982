"""`flashsale demo`: a phone launch bought by a simulated crowd, on a throwaway embedded platform."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flashsale.cli.console import errors
from flashsale.cli.serve import serve
from flashsale.config import Settings
from flashsale.demo import DEFINITIONS, CrowdTooSmall, DemoOptions, DemoReport, run_demo
from flashsale.demo.crowd import basket_count
from flashsale.demo.group_deal import GROUP_DEFINITIONS, GroupAudit
from flashsale.demo.lucky_draw import DRAW_DEFINITIONS, DrawAudit
from flashsale.demo.promotions import PROMOTION_DEFINITIONS, PromotionAudit
from flashsale.domain.errors import ErrorCode
from flashsale.domain.group_buy import GroupStatus

app = typer.Typer()
DEFAULTS = DemoOptions()


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the crowd: who shops, for what, and how.")] = 1,
    shoppers: Annotated[int, typer.Option(min=1, help="Size of the crowd.")] = DEFAULTS.shoppers,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Keep the database here; it must not hold one yet.",
            show_default="a temporary dir, removed after",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Worker threads calling the order service at once.")
    ] = DEFAULTS.concurrency,
    quota_scale: Annotated[
        float, typer.Option(min=0.001, help="Scale every item's quota (for smaller crowds).")
    ] = DEFAULTS.quota_scale,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON, without progress.")
    ] = False,
    serve_after: Annotated[
        bool,
        typer.Option(
            "--serve", help="Afterwards, serve the demo's data (live board, API) until Ctrl-C, on --port."
        ),
    ] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of --serve.")] = 8000,
) -> None:
    """Run a flash sale against a concurrent simulated crowd and audit the books.

    Prints where the campaign's review is, and where to open the live board on the demo's data:
    with --serve right away, else with the `flashsale serve` command it prints (--data-dir keeps
    the data for it). Exits with 1 if anything was oversold or undersold, or the ledger and the
    database disagree.
    """
    if data_dir is not None and (data_dir / "flashsale.db").exists():
        raise typer.BadParameter(
            f"a database is there already, give an empty dir: {data_dir}", param_hint="--data-dir"
        )
    options = DemoOptions(seed=seed, shoppers=shoppers, concurrency=concurrency, quota_scale=quota_scale)
    with ExitStack() as stack:
        where = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flashsale-demo-")))
        progress = Progress(
            TextColumn("shoppers"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
            disable=as_json,
            transient=True,
        )
        task = progress.add_task("crowd", total=shoppers + basket_count(shoppers))
        try:
            with progress:
                report = run_demo(
                    where,
                    options,
                    on_progress=lambda: progress.advance(task),
                    review_dir=Settings().data_dir / "reports" / f"demo-seed-{seed}",
                )
        except CrowdTooSmall as exc:
            raise typer.BadParameter(str(exc), param_hint="--shoppers") from exc
        board = f"http://127.0.0.1:{port}/board"
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            console = Console()
            _print_report(console, report, data_dir)
            console.print(
                _where_the_board_is(board, data_dir, serving=serve_after), highlight=False, soft_wrap=True
            )
        if serve_after:
            if as_json:
                errors.print(f"live board: {board}", highlight=False)
            _serve_demo_data(where, port)
    if not report.ok:
        raise typer.Exit(1)


def _where_the_board_is(board: str, kept_in: Path | None, *, serving: bool) -> str:
    if serving:
        return f"live board of the demo's sale: [bold]{board}[/] (serving until Ctrl-C)"
    if kept_in is not None:
        return f"live board: run [bold]FLASHSALE_DATA_DIR={kept_in} flashsale serve[/], then open {board}"
    return (
        "live board: run the demo again with [bold]--serve[/] to open it at"
        f" {board} (or keep the data with --data-dir DIR, then FLASHSALE_DATA_DIR=DIR flashsale serve)"
    )


def _serve_demo_data(data_dir: Path, port: int) -> None:
    """Serve the demo's database as `flashsale serve` would, embedded, until Ctrl-C."""
    # The demo ran on the embedded engine in data_dir: no database or ledger set elsewhere applies.
    for name in ("FLASHSALE_DATABASE_URL", "FLASHSALE_BACKEND", "FLASHSALE_REDIS_URL"):
        os.environ.pop(name, None)
    os.environ["FLASHSALE_DATA_DIR"] = str(data_dir)
    serve(host="127.0.0.1", port=port, workers=1, access_log=False)


def _money(cents: int) -> str:
    yuan, fen = divmod(cents, 100)
    return f"{yuan:,}" if fen == 0 else f"{cents / 100:,.2f}"


def _print_report(console: Console, report: DemoReport, kept_in: Path | None) -> None:
    items = Table(
        title=f"Flash sale, seed {report.seed}: {report.shoppers:,} shoppers",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    items.add_column("item", no_wrap=True)
    for column in ("N", "quota", "sold", "held", "avail.", "released", "paid", "revenue ¥"):
        items.add_column(column, justify="right", no_wrap=True)
    for i in report.items:
        counts = (i.per_user_limit, i.quota, i.sold, i.held, i.available, i.released, i.paid_orders)
        items.add_row(i.name, *(f"{n:,}" for n in counts), _money(i.revenue_cents))
    totals = ("quota", "sold", "held", "available", "released", "paid_orders")
    items.add_row(
        "total",
        "",
        *(f"{report.total(n):,}" for n in totals),
        _money(report.total("revenue_cents")),
        style="bold",
    )
    console.print(items)
    console.print(
        "[dim]N: per-user limit · released: units cancelled or expired · paid: paid orders[/]",
        highlight=False,
    )

    tally = report.tally
    checks = Table.grid(padding=(0, 2))
    checks.add_column(justify="right", style="bold")
    checks.add_column()
    refusals = _codes(tally.refusals)
    rows = [
        ("rejections", refusals),
        (
            "replays",
            f"{tally.replays:,} ({tally.double_clicks:,} double clicks,"
            f" {tally.duplicate_orders} of them made two orders)",
        ),
        ("released", f"{tally.cancellations:,} orders cancelled, {tally.expired:,} unpaid holds expired"),
        ("催付", f"{_reminders(report.messages)} ({report.messages_seconds:.1f} s wall)"),
        ("oversell¹", _verdict(report.oversell)),
        ("undersell²", _verdict(report.undersell)),
        ("ledger = DB³", "[green]yes[/]" if report.ledger_agrees_with_db else "[red]NO[/]"),
        ("money nets⁴", "[green]yes[/]" if report.money_nets else "[red]NO[/]"),
        *(_promotion_rows(report.promotions, report.basket_seconds) if report.promotions else ()),
        *(_group_rows(report.groups, report.group_seconds) if report.groups else ()),
        *(_draw_rows(report.draw, report.draw_seconds) if report.draw else ()),
        (
            "pace",
            f"{report.decisions_per_s:,.0f} decisions/s, {report.orders_per_s:,.0f} orders/s"
            f" ({report.decisions:,} reserve calls in {report.crowd_seconds:.2f} s wall,"
            f" {report.crowd_cpu_seconds:.2f} s CPU, {report.concurrency} threads;"
            " the flash crowd's clicks only)",
        ),
        (
            "checkout pace",
            f"{report.checkouts_per_s:,.0f} pays and cancels/s ({tally.payments:,} pays,"
            f" {tally.cancellations:,} cancels and the expiry sweeps in {report.checkout_seconds:.2f} s wall,"
            " after the clicks)",
        ),
    ]
    if tally.failures:
        rows.append(("[red]failures[/]", ", ".join(f"{k} {n}" for k, n in tally.failures.items())))
    for label, value in rows:
        checks.add_row(label, value)
    console.print(checks)
    for mark, name in (("¹", "oversell"), ("²", "undersell"), ("³", "agreement"), ("⁴", "money")):
        console.print(f"[dim]{mark} {name}: {DEFINITIONS[name]}[/]", highlight=False)
    if report.promotions is not None:
        for mark, name in zip("⁵⁶⁷⁸", PROMOTION_DEFINITIONS, strict=True):
            console.print(f"[dim]{mark} {name}: {PROMOTION_DEFINITIONS[name]}[/]", highlight=False)
    # Numbered after the promotions' footnotes (⁵–⁸): the group deal's, then the draw's.
    for shown, marks, definitions in (
        (report.groups, ("⁹", "¹⁰", "¹¹"), GROUP_DEFINITIONS),
        (report.draw, ("¹²", "¹³", "¹⁴"), DRAW_DEFINITIONS),
    ):
        if shown is not None:
            for mark, name in zip(marks, definitions, strict=True):
                console.print(f"[dim]{mark} {name}: {definitions[name]}[/]", highlight=False)
    if report.review_path is not None:
        console.print(f"campaign review (KPIs, charts): [bold]{report.review_path}[/]", highlight=False)
    if kept_in is not None:
        console.print(f"[dim]database kept in {kept_in}[/]", highlight=False)


def _promotion_rows(audit: PromotionAudit, seconds: float) -> list[tuple[str, str]]:
    """The report's lines on the promotions around the flash sale: what happened, then the checks."""
    tally = audit.tally
    refused = _codes(tally.refusals)
    winners = " · ".join(f"#{w.slot} {w.user_id} ¥{_money(w.rebate_cents)}" for w in audit.winners)
    stock = ", ".join(f"{i.name} {i.sold:,}/{i.stock:,} sold" for i in audit.regular)
    retried = (
        f" ({tally.without_coupon:,} checked out again without the coupon)" if tally.without_coupon else ""
    )
    return [
        (
            "coupons",
            f"{audit.coupons_claimed:,} claimed, {audit.coupons_redeemed:,} redeemed,"
            f" {audit.coupons_given_back:,} given back (checkout cancelled or expired);"
            f" budget ¥{_money(audit.coupon_spent_cents)} spent of ¥{_money(audit.coupon_budget_cents)}",
        ),
        (
            "满减",
            f"¥{_money(audit.promotion_discount_cents)} off the checkouts kept"
            f" (budget ¥{_money(audit.promotion_spent_cents)} spent"
            f" of ¥{_money(audit.promotion_budget_cents)})",
        ),
        (
            "checkouts",
            f"{audit.checkouts_placed:,} placed, {audit.checkouts_paid:,} paid,"
            f" {audit.checkouts_cancelled:,} cancelled, {audit.checkouts_expired:,} expired"
            f" ({tally.double_clicks:,} double clicks, {tally.replays:,} replays,"
            f" {tally.duplicate_checkouts} of them made two checkouts); refused: {refused}{retried}",
        ),
        (
            "free orders",
            f"{winners or 'none'} ({len(audit.winners)} of {len(audit.free_order_ranks)} winning ranks"
            f" {', '.join(map(str, audit.free_order_ranks))}; {audit.free_order_paid:,} paid orders counted)",
        ),
        ("coupons once⁵", _yes(audit.coupons_redeemed_twice == 0)),
        ("budget = Σ kept⁶", _yes(audit.budget_mismatch_cents == 0)),
        (
            "cart stock⁷",
            f"{_yes(audit.cart_stock_conserved)} ({stock})",
        ),
        ("winners⁸", _yes(audit.free_orders_ok)),
        (
            "basket pace",
            f"{tally.shoppers:,} basket shoppers: {tally.checkout_calls:,} checkout"
            f" calls in {seconds:.1f} s wall (with their expiry; outside the flash pace)",
        ),
    ]


def _group_rows(audit: GroupAudit, seconds: float) -> list[tuple[str, str]]:
    """The report's lines on the group deal: groups filled and failed, then the checks (⁹–¹¹)."""
    tally = audit.tally
    refused = _codes(tally.join_refusals)
    return [
        (
            "group buy",
            f"{audit.item_name} in groups of {audit.size} at ¥{_money(audit.price_cents)}:"
            f" {tally.groups_opened:,} opened, {audit.count(GroupStatus.FILLED):,} filled,"
            f" {audit.count(GroupStatus.FAILED):,} failed (not filled in time); {audit.members:,} members,"
            f" {audit.paid:,} paid; {audit.refunds:,} refunds ¥{_money(audit.refunded_cents)};"
            f" joins refused: {refused}",
        ),
        ("groups⁹", _yes(audit.groups_ok)),
        ("failed groups¹⁰", f"{_yes(audit.failed_released)} (holds released, payments refunded)"),
        (
            "group stock¹¹",
            f"{_yes(audit.stock_conserved)} ({audit.item_name} {audit.sold:,}/{audit.stock:,} sold,"
            f" baskets included)",
        ),
        (
            "group pace",
            f"{tally.joins:,} seats taken, {tally.payments:,} payments in {seconds:.1f} s wall"
            " (with the settle; outside the flash pace)",
        ),
    ]


def _draw_rows(audit: DrawAudit, seconds: float) -> list[tuple[str, str]]:
    """The report's lines on the threshold draw: draws granted and spent, prizes, then the checks (¹²–¹⁴)."""
    tally = audit.tally
    prizes = ", ".join(f"{p.name} {p.awarded:,}/{p.stock:,}" for p in audit.prizes)
    refused = _codes(tally.refusals)
    return [
        (
            "draw",
            f"paid orders ≥ ¥{_money(audit.threshold_cents)}: {audit.draws_granted:,} draws granted"
            f" ({audit.grants:,} orders), {audit.awards:,} drawn, {audit.draws_left:,} left"
            f" ({tally.double_clicks:,} double clicks, {tally.replays:,} replays,"
            f" {tally.duplicate_awards} of them drew twice); refused: {refused}",
        ),
        ("prizes", f"awarded/stock: {prizes}; thanks for playing {audit.thanks:,}"),
        ("prize stock¹²", _yes(audit.within_stock)),
        ("awards once¹³", _yes(audit.awarded_once)),
        ("draws from orders¹⁴", _yes(audit.grants_ok)),
        (
            "draw pace",
            f"{tally.drawers:,} drawers: {tally.draw_calls:,} draw calls in {seconds:.1f} s wall"
            " (with the grants; after the sale)",
        ),
    ]


def _reminders(counts: dict[str, int]) -> str:
    """Say what became of the payment reminders: sent, held back (and why), cancelled by a payment."""
    held = {k.split(":", 1)[1]: n for k, n in counts.items() if k.startswith("suppressed:")}
    cancelled = sum(n for k, n in counts.items() if k.startswith("cancelled:"))
    why = ", ".join(f"{reason} {n:,}" for reason, n in sorted(held.items())) or "none"
    return (
        f"{counts.get('sent', 0):,} sent to the outbox, suppressed: {why};"
        f" {cancelled:,} cancelled (paid or closed meanwhile)"
    )


def _codes(counts: Mapping[ErrorCode, int]) -> str:
    """Refusals by code, as "CODE n, ..." in code order, or "none"."""
    return ", ".join(f"{code.value} {n:,}" for code, n in sorted(counts.items())) or "none"


def _yes(holds: bool) -> str:
    return "[green]yes[/]" if holds else "[red]NO[/]"


def _verdict(units: int) -> str:
    return f"[green]{units}[/]" if units == 0 else f"[red]{units:,} units[/]"
