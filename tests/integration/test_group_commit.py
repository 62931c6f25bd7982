"""Group commit on SQLite (store/group_commit.py): units of work that queue together share one
commit, each is answered only once that commit is durable, and each keeps its own rollback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import sessionmaker

from flashsale.store.db import make_engine
from flashsale.store.group_commit import GroupCommit
from flashsale.store.uow import UnitOfWork

QUEUED = 10


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'group.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    yield engine
    engine.dispose()


@pytest.fixture
def group(engine: Engine) -> Iterator[GroupCommit]:
    group = GroupCommit(engine)
    yield group
    group.close()


def stored(engine: Engine) -> set[int]:
    """What another connection sees: only what was committed."""
    with engine.connect() as conn:
        return set(conn.scalars(text("SELECT n FROM t")))


def queue_behind_a_stalled_unit(
    engine: Engine, group: GroupCommit, work: dict[int, bool]
) -> tuple[list[int], dict[int, BaseException]]:
    """Run one unit of work per key of `work` (True: insert and commit; False: insert and roll back),
    all of them queued behind the first, which waits until every other one is waiting for its turn.
    Return the order in which commits returned and the errors raised."""
    sessions = sessionmaker(engine)
    first, *rest = work
    go = threading.Event()
    answered: list[int] = []
    errors: dict[int, BaseException] = {}

    def unit(n: int) -> None:
        try:
            with UnitOfWork(sessions, group) as uow:
                uow.db.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
                if n == first:
                    go.wait(10)
                if work[n]:
                    uow.commit()
                    answered.append(n)
        except BaseException as exc:  # reported to the test
            errors[n] = exc

    threads = [threading.Thread(target=unit, args=(n,)) for n in work]
    threads[0].start()
    while group._holder is None:  # the first holds the turn
        time.sleep(0.001)
    for t in threads[1:]:
        t.start()
    while group._queued < len(rest):  # everyone else waits for it
        time.sleep(0.001)
    go.set()
    for t in threads:
        t.join(10)
    return answered, errors


def count_commits(engine: Engine) -> list[int]:
    commits = [0]

    def on_commit(_conn: Any) -> None:
        commits[0] += 1

    event.listen(engine, "commit", on_commit)
    return commits


def test_units_queued_together_share_one_commit(engine: Engine, group: GroupCommit) -> None:
    commits = count_commits(engine)
    answered, errors = queue_behind_a_stalled_unit(engine, group, dict.fromkeys(range(QUEUED + 1), True))
    assert not errors
    assert sorted(answered) == list(range(QUEUED + 1))
    assert stored(engine) == set(range(QUEUED + 1))
    assert commits[0] == 1  # eleven units of work, one transaction, one fsync


def test_a_rolled_back_unit_undoes_only_its_own_writes(engine: Engine, group: GroupCommit) -> None:
    work = {n: n % 3 != 1 for n in range(QUEUED + 1)}  # every third one rolls back
    answered, errors = queue_behind_a_stalled_unit(engine, group, work)
    assert not errors
    assert stored(engine) == {n for n, commit in work.items() if commit} == set(answered)


def test_nothing_is_answered_before_the_group_commit_and_a_failed_one_fails_every_member(
    engine: Engine, group: GroupCommit
) -> None:
    def refuse(_conn: Any) -> None:
        raise OSError("disk full")

    event.listen(engine, "commit", refuse)
    try:
        answered, errors = queue_behind_a_stalled_unit(engine, group, dict.fromkeys(range(QUEUED + 1), True))
    finally:
        event.remove(engine, "commit", refuse)
    assert answered == []
    assert sorted(errors) == list(range(QUEUED + 1))
    assert stored(engine) == set()
    # The store works again afterwards: the failed connection was replaced.
    with UnitOfWork(sessionmaker(engine), group) as uow:
        uow.db.execute(text("INSERT INTO t (n) VALUES (99)"))
        uow.commit()
    assert stored(engine) == {99}


def test_a_unit_of_work_inside_another_is_refused_not_deadlocked(engine: Engine, group: GroupCommit) -> None:
    sessions = sessionmaker(engine)
    with UnitOfWork(sessions, group), pytest.raises(RuntimeError, match="inside itself"):
        UnitOfWork(sessions, group).__enter__()
