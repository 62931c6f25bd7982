"""`flashsale plan`: enter a campaign's traffic forecast, KPI targets and channels through the admin API
of a running deployment (what `flashsale rehearse` and `flashsale report` read)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from flashsale.cli.console import refuse
from flashsale.config import Settings

app = typer.Typer(help="A campaign's plan: forecast, targets, channels (admin API).", no_args_is_help=True)

Campaign = Annotated[int, typer.Argument(help="The campaign's id.", min=1)]
Url = Annotated[str, typer.Option(help="Base URL of the deployment.")]
DEFAULT_URL = "http://127.0.0.1:8000"
CHANNEL_FIELDS = ("name", "budget_cents", "spend_cents", "attributed_orders", "attributed_gmv_cents")


def _put(url: str, path: str, body: dict[str, Any]) -> Any:
    token = Settings().with_secrets().admin_token
    try:
        response = httpx.put(f"{url}{path}", json=body, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        refuse(f"cannot reach {url}: {exc}", code=1)
    if not response.is_success:
        refuse(f"{response.status_code} {response.text[:500]}", code=1)
    return response.json()


def _pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise typer.BadParameter(f"{value!r}: give {what}", param_hint="ENTRIES")
        pairs.append((key.strip(), rest.strip()))
    return pairs


@app.command()
def forecast(
    campaign: Campaign,
    entries: Annotated[list[str], typer.Argument(help="SESSION_ID=SHOPPERS/SPAN_S, e.g. 3=5000/60.")],
    url: Url = DEFAULT_URL,
) -> None:
    """Enter how many shoppers each session expects, arriving over how many seconds from its open."""
    sessions = []
    for session, rest in _pairs(entries, "SESSION_ID=SHOPPERS/SPAN_S"):
        shoppers, _, span = rest.partition("/")
        if not (session.isdigit() and shoppers.isdigit() and span.isdigit()):
            raise typer.BadParameter(
                f"{session}={rest}: give SESSION_ID=SHOPPERS/SPAN_S", param_hint="ENTRIES"
            )
        sessions.append({"session_id": int(session), "shoppers": int(shoppers), "span_s": int(span)})
    typer.echo(
        json.dumps(_put(url, f"/admin/campaigns/{campaign}/forecast", {"sessions": sessions}), indent=2)
    )


@app.command()
def targets(
    campaign: Campaign,
    entries: Annotated[
        list[str], typer.Argument(help="KPI=VALUE: money in cents, shares as 0..1, e.g. gmv_cents=50000000.")
    ],
    url: Url = DEFAULT_URL,
) -> None:
    """Replace the campaign's KPI targets (gmv_cents, orders_paid, units_sold, aov_cents, participants,
    buyers, orders_placed, conversion, expired_share, cancelled_share, refunded_cents)."""
    body: dict[str, float | int] = {}
    for kpi, value in _pairs(entries, "KPI=VALUE"):
        try:
            body[kpi] = int(value) if value.isdigit() else float(value)
        except ValueError as exc:
            raise typer.BadParameter(f"{kpi}={value}: not a number", param_hint="ENTRIES") from exc
    typer.echo(json.dumps(_put(url, f"/admin/campaigns/{campaign}/targets", body), indent=2))


@app.command()
def channels(
    campaign: Campaign,
    table: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help=f"CSV with a header: {', '.join(CHANNEL_FIELDS)} (money in cents).",
        ),
    ],
    url: Url = DEFAULT_URL,
) -> None:
    """Replace the campaign's channels: budget, actual spend, and the paid orders and GMV attributed."""
    with table.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    try:
        body = [{"name": row["name"], **{k: int(row[k]) for k in CHANNEL_FIELDS[1:]}} for row in rows]
    except (KeyError, ValueError) as exc:
        raise typer.BadParameter(f"{table}: {exc}: every row needs {', '.join(CHANNEL_FIELDS)}") from exc
    typer.echo(json.dumps(_put(url, f"/admin/campaigns/{campaign}/channels", {"channels": body}), indent=2))
