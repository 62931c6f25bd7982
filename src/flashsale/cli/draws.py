"""`flashsale draws ...`: prize pools, prizes and scheduled draws, from the command line.

With the embedded default (the in-process ledger) these commands open the store as the server
does, so they run while no server does (the ledger's lease refuses them otherwise); with the Redis
backend they run beside the servers. Refusals print their code and exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from flashsale.api.draw_schemas import PrizeIn, RuleIn, ScheduledDrawIn, pool_out, schedule_out
from flashsale.bootstrap import Platform, build
from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.domain.draws import EntitlementRule, Game, PrizeKind
from flashsale.domain.errors import FlashSaleError
from flashsale.store.lease import LeaseTaken

app = typer.Typer(help="Lucky draws: prize pools, prizes, scheduled draws.", no_args_is_help=True)
out = Console()
T = TypeVar("T")


@contextmanager
def _platform() -> Iterator[Platform]:
    try:
        platform = build(Settings())
    except LeaseTaken as exc:
        refuse(f"{exc}: stop the server, or run these commands against the Redis backend", code=1)
    try:
        yield platform
    finally:
        platform.close()


def _run(call: Callable[[], T]) -> T:
    """Run a use case; a typed refusal or invalid input exits 1 with its reason, and changes nothing."""
    try:
        return call()
    except FlashSaleError as exc:
        refuse(f"{exc.code.value}: {exc.message}", code=1)
    except (ValidationError, ValueError) as exc:
        refuse(f"VALIDATION_ERROR: {exc}", code=1)


def _rule(text: str) -> EntitlementRule:
    """Parse SOURCE[:DRAWS[:DAILY_CAP[:MIN_ORDER_CENTS]]], e.g. `share:1:3` or `paid_order:2:5:150000`."""
    names = ("source", "draws", "daily_cap", "min_order_cents")
    parts = text.split(":")
    if len(parts) > len(names):
        raise ValueError(f"a rule is SOURCE[:DRAWS[:DAILY_CAP[:MIN_ORDER_CENTS]]], not {text!r}")
    fields = {
        name: (part if name == "source" else int(part)) for name, part in zip(names, parts, strict=False)
    }
    return EntitlementRule(**RuleIn.model_validate(fields, strict=False).model_dump())


@app.command("pools")
def list_pools() -> None:
    """List every prize pool with its rules."""
    with _platform() as platform:
        table = Table("id", "name", "game", "thanks weight", "rules")
        for pool in platform.draws.list_pools():
            rules = ", ".join(f"{r.source.value}×{r.draws} (≤{r.daily_cap}/day)" for r in pool.rules.values())
            table.add_row(str(pool.id), pool.name, pool.game.value, str(pool.thanks_weight), rules)
        out.print(table)


@app.command("show")
def show(pool_id: int) -> None:
    """Show a pool's prizes and how many of each were awarded, in total and today."""
    with _platform() as platform:
        view = _run(lambda: platform.draws.pool_view(pool_id))
        levels = {level.prize_id: level for level in view.levels}
        table = Table(
            "prize", "name", "kind", "weight", "stock", "awarded", f"today ({view.day})", "daily cap"
        )
        for p in view.prizes:
            level = levels[p.id]
            cap = "-" if p.daily_cap is None else str(p.daily_cap)
            row = (p.id, p.name, p.kind.value, p.weight, p.stock, level.awarded, level.awarded_today, cap)
            table.add_row(*map(str, row))
        out.print(table)


@app.command("create-pool")
def create_pool(
    name: str,
    game: Annotated[Game, typer.Option(help="How the pool is shown.")] = Game.LOTTERY,
    thanks_weight: Annotated[int, typer.Option(help="Odds weight of thanks for playing.")] = 0,
    utc_offset_min: Annotated[
        int, typer.Option(help="The pool's time zone; daily caps reset at its midnight.")
    ] = 480,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            help="SOURCE[:DRAWS[:DAILY_CAP[:MIN_ORDER_CENTS]]], repeatable: share:1:3, paid_order:1:5:150000"
        ),
    ] = None,
) -> None:
    """Create a prize pool with its entitlement rules; print it as JSON."""
    rules = _run(lambda: [_rule(text) for text in rule or ()])
    with _platform() as platform:
        pool = _run(
            lambda: platform.draws.create_pool(
                name=name, game=game, thanks_weight=thanks_weight, utc_offset_min=utc_offset_min, rules=rules
            )
        )
        typer.echo(pool_out(pool).model_dump_json(indent=2))


@app.command("add-prize")
def add_prize(
    pool_id: int,
    name: str,
    kind: Annotated[PrizeKind, typer.Option(help="coupon, goods or points.")],
    weight: Annotated[int, typer.Option(help="Odds weight.")],
    stock: Annotated[int, typer.Option(help="How many can be won in all.")],
    daily_cap: Annotated[int | None, typer.Option(help="How many can be won a day.")] = None,
    coupon_template: Annotated[int | None, typer.Option(help="coupon: the coupon template's id.")] = None,
    product: Annotated[int | None, typer.Option(help="goods: the product's id.")] = None,
    points: Annotated[int | None, typer.Option(help="points: how many.")] = None,
) -> None:
    """Add a prize to a pool; print it as JSON."""
    body = _run(
        lambda: PrizeIn.model_validate(
            {
                "name": name, "kind": kind, "weight": weight, "stock": stock, "daily_cap": daily_cap,
                "coupon_template_id": coupon_template, "product_id": product, "points": points,
            }
        )
    )  # fmt: skip
    with _platform() as platform:
        prize = _run(lambda: platform.draws.add_prize(pool_id, **body.model_dump()))
        typer.echo(
            json.dumps({"id": prize.id, "pool_id": prize.pool_id, "name": prize.name, "kind": prize.kind})
        )


@app.command("schedule")
def schedule(
    pool_id: int,
    prize_id: int,
    name: str,
    at: Annotated[
        datetime, typer.Option(help="When to draw, ISO 8601 with its zone: 2026-11-11T16:00:00+08:00.")
    ],
    winners: Annotated[int, typer.Option(help="How many winners.")],
    min_order_cents: Annotated[int, typer.Option(help="The least PAID order total that enters.")] = 0,
) -> None:
    """Plan a draw of N winners among the day's buyers over the threshold; print it as JSON."""
    body = _run(
        lambda: ScheduledDrawIn.model_validate(
            {
                "pool_id": pool_id, "prize_id": prize_id, "name": name, "run_at": at.isoformat(),
                "winners": winners, "min_order_cents": min_order_cents,
            },
            strict=False,
        )
    )  # fmt: skip
    with _platform() as platform:
        planned = _run(lambda: platform.draw_schedule.schedule(**body.model_dump()))
        typer.echo(schedule_out(planned).model_dump_json(indent=2))


@app.command("run-due")
def run_due() -> None:
    """Run every scheduled draw whose time has come; print each run's record."""
    with _platform() as platform:
        for ran in _run(platform.draw_schedule.run_due):
            typer.echo(schedule_out(ran).model_dump_json(indent=2))


@app.command("verify")
def verify(draw_id: int) -> None:
    """Recompute a scheduled draw's winners from its recorded seed and entrants; exit 1 if they differ."""
    with _platform() as platform:
        record = _run(lambda: platform.draw_schedule.get(draw_id))
    typer.echo(schedule_out(record).model_dump_json(indent=2))
    if not record.verified():
        refuse(
            f"scheduled draw {draw_id}: the recorded winners do not follow from its seed (or it has not run)",
            code=1,
        )
