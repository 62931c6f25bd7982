"""`flashsale db`: the system of record's schema and location."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from flashsale.config import Settings
from flashsale.store import db as store_db

app = typer.Typer(help="The database: schema migrations and where it lives.", no_args_is_help=True)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Alembic revision to migrate to.")] = "head",
) -> None:
    """Migrate the schema (creating the SQLite file on first run)."""
    url = Settings().resolved_database_url()
    store_db.upgrade(url, revision)
    typer.echo(f"{_shown(url)} is at revision {revision}")


@app.command()
def url() -> None:
    """Print the database URL in use, password hidden."""
    typer.echo(_shown(Settings().resolved_database_url()))
