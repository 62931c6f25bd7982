"""`flashsale coupons ...`: templates, waves, runs of single-use codes (CSV), budgets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flashsale.bootstrap import Platform, build
from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.domain.coupons import CouponKind, CouponTemplate, CouponWave
from flashsale.domain.errors import FlashSaleError
from flashsale.domain.promotions import Tier
from flashsale.services.coupons import codes_csv, load_coupon_ledger
from flashsale.store.lease import LeaseTaken

app = typer.Typer(help="Coupons and red packets: templates, waves, single-use codes.", no_args_is_help=True)

Moment = Annotated[str, typer.Option(help="ISO 8601 with a zone, e.g. 2026-10-10T00:00:00+08:00.")]


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        refuse(f"{text!r} is not an ISO 8601 time", code=2)
    if moment.tzinfo is None:
        refuse(f"{text!r} needs a zone (e.g. +08:00)", code=2)
    return moment


def _tier(text: str) -> Tier:
    threshold, _, off = text.partition(":")
    if not (threshold.isdigit() and off.isdigit()):
        refuse(f"tier {text!r} must be THRESHOLD_CENTS:OFF_CENTS, e.g. 30000:3000", code=2)
    return Tier(int(threshold), int(off))


def _platform() -> Platform:
    """The platform, or a refusal while a server on the in-process ledger runs (it would miss the change)."""
    try:
        return build(Settings())
    except LeaseTaken as exc:
        refuse(f"{exc}: use the admin API (/admin/coupon-*) while the server runs", code=1)


@app.command()
def template(
    name: Annotated[str, typer.Argument(help="Shown to shoppers, e.g. 满300减30.")],
    kind: Annotated[CouponKind, typer.Option(help="amount, percent or threshold (满减).")],
    valid_from: Moment,
    valid_until: Moment,
    off_cents: Annotated[int, typer.Option(help="amount: cents off.", min=0)] = 0,
    percent: Annotated[int, typer.Option(help="percent: percent off (8折 is 20).", min=0, max=100)] = 0,
    tier: Annotated[
        list[str] | None, typer.Option(help="threshold: THRESHOLD:OFF in cents, repeatable.")
    ] = None,
    min_spend_cents: Annotated[int, typer.Option(min=0)] = 0,
    cap_cents: Annotated[int | None, typer.Option(min=1)] = None,
    category: Annotated[list[str] | None, typer.Option(help="Scope: a category, repeatable.")] = None,
    product: Annotated[list[int] | None, typer.Option(help="Scope: a product id, repeatable.")] = None,
    budget_cents: Annotated[int | None, typer.Option(help="Most it may take off in total.", min=0)] = None,
    group: Annotated[str | None, typer.Option(help="Coupons of one group do not stack.")] = None,
) -> None:
    """Create a coupon or red packet template; print its id."""
    try:
        draft = CouponTemplate(
            id=0,
            name=name,
            kind=kind,
            valid_from=_moment(valid_from),
            valid_until=_moment(valid_until),
            off_cents=off_cents,
            percent=percent,
            tiers=tuple(_tier(t) for t in tier or ()),
            min_spend_cents=min_spend_cents,
            cap_cents=cap_cents,
            categories=frozenset(category) if category else None,
            product_ids=frozenset(product) if product else None,
            budget_cents=budget_cents,
            group=group,
        )
    except ValueError as exc:
        refuse(str(exc), code=2)
    platform = _platform()
    try:
        created = platform.coupons.create_template(draft)
    finally:
        platform.close()
    typer.echo(f"template {created.id} created")


@app.command()
def templates() -> None:
    """List every template with its budget and what redeemed coupons took off it."""
    platform = _platform()
    try:
        rows = platform.coupons.templates()
    finally:
        platform.close()
    table = Table("id", "name", "kind", "valid until", "budget", "spent")
    for t, level in rows:
        budget = "-" if t.budget_cents is None else str(t.budget_cents)
        table.add_row(
            str(t.id), t.name, t.kind.value, t.valid_until.isoformat(), budget, str(level.spent_cents)
        )
    Console().print(table)


def _wave(
    template_id: int, starts_at: str, total: int, per_user_limit: int, ends_at: str | None
) -> CouponWave:
    try:
        return CouponWave(
            0, template_id, _moment(starts_at), total, per_user_limit, _moment(ends_at) if ends_at else None
        )
    except ValueError as exc:
        refuse(str(exc), code=2)


TemplateId = Annotated[int, typer.Argument(help="The template's id.", min=1)]
Total = Annotated[int, typer.Option(help="Coupons (codes) handed out at most.", min=1)]
PerUser = Annotated[int, typer.Option(help="Coupons of it one shopper may claim.", min=1)]
EndsAt = Annotated[str | None, typer.Option(help="When claims stop (ISO 8601); none: while coupons last.")]


@app.command()
def wave(
    template_id: TemplateId,
    starts_at: Moment,
    total: Total,
    per_user_limit: PerUser = 1,
    ends_at: EndsAt = None,
) -> None:
    """Open a wave of a template: `total` coupons from `starts_at` (shoppers: POST /coupons/claims)."""
    platform = _platform()
    try:
        view = platform.coupons.create_wave(_wave(template_id, starts_at, total, per_user_limit, ends_at))
    except FlashSaleError as exc:
        refuse(exc.message, code=1)
    finally:
        platform.close()
    typer.echo(f"wave {view.wave.id} created")


@app.command()
def codes(
    template_id: TemplateId,
    starts_at: Moment,
    total: Total,
    out: Annotated[
        Path, typer.Option(help="CSV file to write (code, wave_id, template_id, valid_until, claimed_by).")
    ],
    per_user_limit: PerUser = 1,
    ends_at: EndsAt = None,
) -> None:
    """Make a run of single-use codes of a template and write them as CSV (for SMS or print)."""
    platform = _platform()
    try:
        view, _ = platform.coupons.create_codes(_wave(template_id, starts_at, total, per_user_limit, ends_at))
        out.write_text(codes_csv(platform.coupons.codes(view.wave.id)))
    except FlashSaleError as exc:
        refuse(exc.message, code=1)
    finally:
        platform.close()
    typer.echo(f"{total} codes of wave {view.wave.id} written to {out}")


@app.command()
def export(
    wave_id: Annotated[int, typer.Argument(help="The code run's wave id.", min=1)],
    out: Annotated[Path, typer.Option(help="CSV file to write.")],
) -> None:
    """Write a run's codes as CSV again, with who claimed each so far."""
    platform = _platform()
    try:
        out.write_text(codes_csv(platform.coupons.codes(wave_id)))
    except FlashSaleError as exc:
        refuse(exc.message, code=1)
    finally:
        platform.close()
    typer.echo(f"codes of wave {wave_id} written to {out}")


@app.command()
def reload() -> None:
    """Replace the coupon ledger's state with the store's (a Redis that lost writes; see the log).

    Run it while no claims are made: a claim decided but not yet stored when the reload runs is
    forgotten by the ledger. The in-process ledger is rebuilt at every start and needs no reload.
    """
    platform = _platform()
    try:
        load_coupon_ledger(platform.deps, platform.coupons.ledger, only_if_empty=False)
    finally:
        platform.close()
    typer.echo("coupon ledger reloaded from the store")
