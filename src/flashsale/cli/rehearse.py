"""`flashsale rehearse`: the campaign's forecast traffic, at a multiple, against a running deployment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer

from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.rehearsal.operator import RehearsalRefused
from flashsale.rehearsal.run import RehearsalOptions, parse_load, rehearse

app = typer.Typer()


@app.command(name="rehearse")
def rehearse_command(
    campaign: Annotated[int, typer.Argument(help="The campaign's id.", min=1)],
    url: Annotated[str, typer.Option(help="Base URL of the running deployment, e.g. http://127.0.0.1:8000.")],
    load: Annotated[str, typer.Option(help="Multiple of the forecast traffic: 2x, 0.5x, 3.")] = "2x",
    from_campaign: Annotated[
        int | None, typer.Option(help="Take the forecast from this earlier campaign's orders.", min=1)
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the crowd and of the arrival times.")] = 1,
    connections: Annotated[int, typer.Option(min=1, help="Connections the load client may open.")] = 200,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for rehearsal-COPY.json (default: DATA_DIR/reports/campaign-ID)."),
    ] = None,
) -> None:
    """Rehearse a campaign: replay its forecast traffic at --load against --url, open loop, on a copy.

    The campaign is copied through the admin API ("[rehearsal] NAME", its own products), so real
    stock is untouched. Shoppers arrive on a schedule and behave as the demo's crowd (early clicks,
    double clicks, retries with the same Idempotency-Key, pays, cancels, walk-aways); every latency
    is measured from the request's intended send time. Prints throughput, p50/p99, errors by code
    and oversell/undersell read back from the ledger, and writes them to rehearsal-COPY.json, which
    `flashsale report` shows as a section. Needs the deployment's admin token and JWT secret
    (FLASHSALE_ADMIN_TOKEN, FLASHSALE_JWT_SECRET, or the data dir's secrets.json). Exits with 1 if
    the sale did not hold.
    """
    settings = Settings().with_secrets()
    assert settings.admin_token is not None and settings.jwt_secret is not None
    try:
        multiple = parse_load(load)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--load") from exc
    options = RehearsalOptions(
        url=url,
        campaign_id=campaign,
        admin_token=settings.admin_token,
        jwt_secret=settings.jwt_secret,
        load=multiple,
        seed=seed,
        from_campaign=from_campaign,
        connections=connections,
    )
    try:
        result = rehearse(options)
    except RehearsalRefused as exc:
        refuse(str(exc), code=1)
    except httpx.HTTPError as exc:
        refuse(f"cannot reach {url}: {exc}", code=1)
    folder = out or settings.data_dir / "reports" / f"campaign-{campaign}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rehearsal-{result.copy_campaign_id}.json"
    path.write_text(json.dumps(result.as_dict(), indent=2), encoding="utf-8")
    lat = result.latency
    errors = ", ".join(f"{code} {n:,}" for code, n in result.errors.items()) or "none"
    typer.echo(
        f"rehearsal of campaign {campaign} at {multiple:g}x on copy {result.copy_campaign_id}:"
        f" {result.shoppers:,} shoppers, {lat.requests:,} requests in {result.duration_s:.1f} s"
        f" ({result.throughput_rps:,.1f}/s)\n"
        f"latency from intended send: p50 {lat.p50_s * 1000:.1f} ms, p99 {lat.p99_s * 1000:.1f} ms,"
        f" max {lat.max_s * 1000:.1f} ms\n"
        f"errors by code: {errors}; faults: {result.faults}\n"
        f"oversell {result.oversell}, undersell {result.undersell}; the sale"
        f" {'held' if result.held else 'did NOT hold'}\n"
        f"written: {path}"
    )
    if not result.held:
        raise typer.Exit(1)
