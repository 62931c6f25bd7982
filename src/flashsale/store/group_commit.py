"""Group commit: units of work that arrive together share one transaction and one fsync.

SQLite has one write lock per database and, with `synchronous=FULL`, one fsync per commit. Units of
work from many threads (purchases, pays, cancels, expiries) therefore take turns on one write
connection. Each runs inside a SAVEPOINT of the connection's open transaction: its rollback undoes
only its own statements, and its commit releases the savepoint into the *group*. When the last
unit of the queue has had its turn (or the group is full), that unit commits the transaction for
the whole group; every member's `commit()` returns only after that commit reached the disk, and
raises if it failed. So each caller is answered after its own writes are durable, exactly as with
a transaction of its own, and a burst of N writes costs one fsync instead of N.

Members of a group read each other's writes before they are durable; that is the serial order the
turns define, and if the group's commit fails all of them fail together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

MAX_GROUP = 512  # units of work per transaction: bounds how long the first of a busy group waits


class _Group:
    """The members of one open transaction, and how its commit ended."""

    def __init__(self) -> None:
        self.members = 0
        self.committed = threading.Event()
        self.error: BaseException | None = None

    def wait(self) -> None:
        """Block until the group's transaction committed; raise if it did not."""
        self.committed.wait()
        if self.error is not None:
            raise RuntimeError("the group's commit failed; nothing of this unit of work was stored") from (
                self.error
            )


class GroupCommit:
    """One write connection that units of work take turns on; see the module doc."""

    def __init__(self, engine: Engine, *, max_group: int = MAX_GROUP) -> None:
        self._engine = engine
        self._max_group = max_group
        self._sessions = sessionmaker(join_transaction_mode="create_savepoint", expire_on_commit=False)
        self._turn = threading.Lock()  # held by the unit of work whose statements run now
        self._count = threading.Lock()  # guards _queued
        self._queued = 0  # units of work waiting for their turn
        self._holder: int | None = None  # thread id holding the turn, to refuse nesting
        self._conn: Connection | None = None
        self._group = _Group()

    def enter(self) -> Session:
        """Wait for the turn and return a session whose transaction is a savepoint of the group's."""
        if self._holder == threading.get_ident():
            # The outer unit of work holds the turn: waiting for it would wait forever.
            raise RuntimeError("a unit of work cannot open another one inside itself on this store")
        with self._count:
            self._queued += 1
        self._turn.acquire()
        with self._count:
            self._queued -= 1
        self._holder = threading.get_ident()
        try:
            if self._conn is None:
                self._conn = self._engine.connect()
            if not self._conn.in_transaction():
                self._conn.begin()
            return self._sessions(bind=self._conn)
        except BaseException:
            self._discard_connection(broken=True)
            self._release()
            raise

    def leave(self, committed: bool) -> Callable[[], None]:
        """End the caller's turn; return what to call to wait until its writes are durable.

        `committed` says the caller released its savepoint into the group. The caller that ends the
        queue (or fills the group) commits the group's transaction before giving up the turn.
        """
        group = self._group
        if committed:
            group.members += 1
        try:
            with self._count:
                last = self._queued == 0
            if last or group.members >= self._max_group:
                self._finish(group)
        finally:
            self._release()
        return group.wait if committed else _nothing

    def close(self) -> None:
        """Finish the open group and give the connection back (the platform is shutting down)."""
        with self._turn:
            self._finish(self._group)
            self._discard_connection()

    def _finish(self, group: _Group) -> None:
        """Commit the group's transaction (roll it back if nobody committed into it) and start a new group."""
        self._group = _Group()
        conn = self._conn
        try:
            if conn is not None and conn.in_transaction():
                if group.members:
                    conn.commit()
                else:
                    conn.rollback()  # frees SQLite's write lock for other processes between bursts
        except BaseException as exc:
            group.error = exc
            self._discard_connection(broken=True)
        finally:
            group.committed.set()

    def _discard_connection(self, *, broken: bool = False) -> None:
        """Give the connection up; a broken one is closed for good, which rolls back what is open."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if broken:
                conn.invalidate()
            conn.close()

    def _release(self) -> None:
        self._holder = None
        self._turn.release()


def _nothing() -> None:
    return None
