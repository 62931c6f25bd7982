"""The migrations build exactly the tables the code declares (store/tables.py), on SQLite."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from flashsale.store import db as store_db
from flashsale.store.tables import Base


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
