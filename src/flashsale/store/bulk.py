"""Multi-row inserts at the driver, for the hot inserts of a batch on SQLite (orders, outbox events).

SQLAlchemy's executemany processes every row's parameters in Python (a dict per row, the compiled
statement's parameter map, each value's type processor through its machinery): on the embedded
default that was most of the cost of recording a batch of orders. Here a batch goes as one
`INSERT … VALUES (…), (…), …` per chunk on the session's own DBAPI connection, so inside its
transaction (or the group commit's savepoint), and each value is converted by its column's own bind
processor for the engine's dialect (UTCDateTime's check and conversion, JSON's serializer): the rows
stored are exactly those the ORM or Core would store (tests/integration/test_bulk_insert.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

# SQLite allows 32,766 parameters in a statement (3.32 and later): a chunk stays far below it, and
# keeps the statement cache to a few texts per table (a full chunk, and one per remainder size).
CHUNK_ROWS = 256


def insert_rows(
    db: Session,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    ignore_duplicates: bool = False,
    returning: str | None = None,
) -> list[Any]:
    """Insert `rows` (values in the order of `columns`) into `table` on `db`'s SQLite connection.

    With `ignore_duplicates`, a row clashing with a unique key is skipped (ON CONFLICT DO NOTHING).
    With `returning`, return that column of the rows inserted (in no particular order); else [].
    """
    connection = db.connection()
    dialect = connection.dialect
    if dialect.name != "sqlite":
        raise ValueError(f"driver-level inserts are for SQLite, not {dialect.name}")
    binds = _binders(dialect, table, tuple(columns))
    values = [
        [v if bind is None or v is None else bind(v) for bind, v in zip(binds, row, strict=True)]
        for row in rows
    ]
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    returned: list[Any] = []
    try:
        for start in range(0, len(values), CHUNK_ROWS):
            chunk = values[start : start + CHUNK_ROWS]
            sql = _statement(table.name, tuple(columns), len(chunk), ignore_duplicates, returning)
            cursor.execute(sql, [v for row in chunk for v in row])
            if returning is not None:
                returned.extend(r[0] for r in cursor.fetchall())
    finally:
        cursor.close()
    return returned


Binder = Callable[[Any], Any] | None


@lru_cache(maxsize=64)
def _binders(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> tuple[Binder, ...]:
    """Each column's bind processor for the dialect (None where values pass as they are)."""
    return tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns)


@lru_cache(maxsize=256)
def _statement(
    table: str, columns: tuple[str, ...], rows: int, ignore_duplicates: bool, returning: str | None
) -> str:
    one = "(" + ", ".join("?" * len(columns)) + ")"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * rows)}"
    if ignore_duplicates:
        sql += " ON CONFLICT DO NOTHING"
    if returning is not None:
        sql += f" RETURNING {returning}"
    return sql
