"""`flashsale report`: the post-campaign review as an HTML page with charts, JSON and CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import sessionmaker

from flashsale.cli.console import refuse
from flashsale.config import Settings
from flashsale.domain.errors import FlashSaleError
from flashsale.store import db as store_db

app = typer.Typer()


@app.command()
def report(
    campaign: Annotated[int, typer.Argument(help="The campaign's id.", min=1)],
    compare: Annotated[
        int | None, typer.Option(help="Another campaign's id: its KPIs beside these, with the change.", min=1)
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder to write into (default: DATA_DIR/reports/campaign-ID).")
    ] = None,
) -> None:
    """Write the campaign's review: review.html (KPIs, sessions, charts), review.json and kpis.csv.

    Reads the database only, so it is safe while a sale runs. KPIs: GMV (paid orders), orders and
    units sold, average order value, participants and buyers, conversion, expired and cancelled
    shares, refunds; per session and item; GMV per hour; each item's sell-out curve; the KPIs
    against the targets and each channel's budget, spend and ROI (targets.csv, channels.csv,
    goals.json), as entered with `flashsale plan`; and the load rehearsals (`flashsale
    rehearse`) whose results are in the same folder.
    """
    settings = Settings()
    url = settings.resolved_database_url()
    store_db.upgrade(url)
    engine = store_db.make_engine(url)
    reads = store_db.make_read_engine(url, engine)
    folder = out or settings.data_dir / "reports" / f"campaign-{campaign}"
    # Imported here: matplotlib takes ~0.6 s to import, which every other command would pay.
    from flashsale.reports.campaign import write_campaign_review

    try:
        page = write_campaign_review(sessionmaker(reads), campaign, folder, compare=compare)
    except FlashSaleError as exc:
        refuse(exc.message, code=1)
    finally:
        reads.dispose()
        engine.dispose()
    typer.echo(f"review written: {page}")
