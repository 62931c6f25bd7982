"""Engines and schema migrations for the system of record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from flashsale.store.group_commit import GroupCommit

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; a SQLite file gets WAL, full fsync and a busy timeout, and its folder."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own BEGIN handling defers locks; take the write lock at BEGIN instead, so
        # two writers queue on busy_timeout rather than failing mid-transaction.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # a paid order must survive power loss
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_read_engine(url: str, writes: Engine) -> Engine:
    """Return an engine for reads that never wait for, nor take, the write lock.

    On a SQLite file: a second engine whose transactions begin DEFERRED and whose connections are
    read-only; in WAL mode such a reader sees the last commit while a writer holds the lock
    (`make_engine` begins IMMEDIATE, so a read there queues behind every purchase). Elsewhere
    (PostgreSQL, where readers never block on writers; SQLite in memory, which is per connection)
    the write engine itself.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return writes
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        dbapi_conn.execute("PRAGMA query_only=ON")

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        # DEFERRED: the transaction only reads, so the queries of one refresh see one snapshot.
        conn.exec_driver_sql("BEGIN")

    return engine


def group_commit(url: str, engine: Engine) -> GroupCommit | None:
    """Return the group commit every unit of work goes through where the store has one writer.

    SQLite has one write lock per database: writers in this process take turns on one connection
    and share commits (store/group_commit.py); other processes still queue on its busy timeout.
    PostgreSQL takes concurrent writers, each with a transaction of its own.
    """
    return GroupCommit(engine) if make_url(url).get_backend_name() == "sqlite" else None


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at `url` up to `revision` (creates the SQLite file on first run)."""
    make_engine(url).dispose()  # creates the folder of a SQLite file
    command.upgrade(alembic_config(url), revision)
