"""The single-writer lease: an in-process ledger must be the only one deciding for its database.

Two processes with their own in-process ledgers over one database would each sell the whole quota.
So the embedded engine takes an exclusive lease at start-up and refuses to start without it: an
advisory lock on PostgreSQL, a lock file beside a SQLite database. Both vanish with the process,
so a kill -9 never leaves a stale lease behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

LEASE_KEY = 0x46534C45  # "FSLE": the advisory-lock id every flashsale process agrees on


class LeaseTaken(RuntimeError):
    """Another process already runs an in-process ledger on this database."""


class Lease(Protocol):
    def release(self) -> None: ...


class _FileLease:
    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise LeaseTaken(f"{path} is locked by another flashsale process") from None

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = -1


class _AdvisoryLease:
    def __init__(self, engine: Engine) -> None:
        self._conn: Connection | None = engine.connect()
        taken = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEASE_KEY}).scalar()
        self._conn.commit()
        if not taken:
            self.release()
            raise LeaseTaken("another flashsale process holds the ledger lease on this database")

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the session-level advisory lock ends with the connection
            self._conn = None


class _NoLease:
    def release(self) -> None:
        return None


def acquire_ledger_lease(engine: Engine) -> Lease:
    """Take the exclusive lease for an in-process ledger on `engine`'s database, or raise LeaseTaken."""
    url = make_url(str(engine.url))
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            return _NoLease()  # private to this process anyway
        return _FileLease(Path(f"{url.database}.ledger-lease"))
    if backend == "postgresql":
        return _AdvisoryLease(engine)
    raise LeaseTaken(f"the in-process ledger cannot guard a {backend} database; use SQLite or PostgreSQL")
