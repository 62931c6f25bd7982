"""The migrations build exactly the tables the code declares (store/tables.py), on SQLite, and carry
the data they reshape."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.orm import Session

from flashsale.store import db as store_db
from flashsale.store import repositories as repo
from flashsale.store.tables import Base
from tests.integration.servers import fresh_postgres_database


def test_the_migrations_have_one_head_and_build_the_declared_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    heads = ScriptDirectory.from_config(store_db.alembic_config(url)).get_heads()
    assert len(heads) == 1, f"the migrations fork: heads {heads}"
    store_db.upgrade(url)
    engine = store_db.make_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], diff


def marks_after_0019(url: str) -> None:
    """Migration 0019 keys the marks by (item, bucket): each item's mark becomes its bucket 0's, and a
    downgrade gives bucket 0's back as the items' marks."""
    store_db.upgrade(url, "0018")
    engine = store_db.make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO ledger_marks (item_id, seq, order_id) VALUES (7, 41, 'h41')"))
        store_db.upgrade(url)
        with Session(engine) as db:
            assert repo.ledger_marks(db) == {(7, 0): 41}
            repo.raise_ledger_marks(db, {(7, 1): (5, "h5"), (7, 0): (40, "h40")})  # 40: lowers nothing
            db.commit()
            assert repo.ledger_mark_orders(db) == {(7, 0): (41, "h41"), (7, 1): (5, "h5")}
        command.downgrade(store_db.alembic_config(url), "0018")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT item_id, seq, order_id FROM ledger_marks")).all() == [
                (7, 41, "h41")
            ]
    finally:
        engine.dispose()


def test_the_marks_migrate_to_bucket_0_and_back_on_sqlite(tmp_path: Path) -> None:
    marks_after_0019(f"sqlite:///{tmp_path / 'marks.db'}")


@pytest.mark.postgres
def test_the_marks_migrate_to_bucket_0_and_back_on_postgresql() -> None:
    with fresh_postgres_database() as url:
        marks_after_0019(url)
