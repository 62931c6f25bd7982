"""The engines a platform runs on, and how the shared `platform` fixture builds on each.

The shared `platform` fixture (tests/conftest.py) builds on SQLite + the in-process ledger unless the
test, its class or its module is marked `engines`: then it runs once per engine named there, all
of them when none is named.

    pytestmark = pytest.mark.engines()  # a module on every engine
    @pytest.mark.engines(SQLITE, reason="opens the file with sqlite3")  # one test on fewer

The order path's modules run on all three. Modules of the features around it (cart, coupons,
draws, group buy, referral, plans) run on the two ends, `sqlite+memory` and `postgres+redis`, to
keep the suite's time in check: PostgreSQL with the in-process ledger writes through the same
order path the order path's modules already run on it.

The engines:
  sqlite+memory    the embedded default: a SQLite file in tmp_path, the in-process ledger.
  postgres+memory  the in-process ledger on a fresh PostgreSQL database (marked `postgres`).
  postgres+redis   the Redis ledger under a fresh key prefix, orders written behind by the order
                   writer, on a fresh PostgreSQL database (marked `postgres` and `redis`).
  postgres+redis-cluster  the same on the test Redis Cluster (marked `postgres` and `redis_cluster`);
                   only for tests that name it.
Each param carries its service markers, so tests/services.py skips it when the server is absent,
and under FLASHSALE_TEST_REQUIRE_SERVICES=1 fails it instead.

Every PostgreSQL database is copied from one template migrated once per run (CREATE DATABASE …
TEMPLATE is a file copy; migrating each database afresh costs far more), and dropped afterwards.
Under pytest-xdist "once per run" is once per worker: each worker process has its own session and so
its own template, named for the worker (`fs_tpl_gw0_…`). PostgreSQL refuses to copy a template while
another session is connected to it: only its own worker connects to a template, to migrate it before
the first copy, and it copies one database at a time, so no copy ever finds the template in use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy.engine import make_url

from flashsale.bootstrap import Platform, build, order_writer_for
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.store import db as store_db

SQLITE = "sqlite+memory"
POSTGRES = "postgres+memory"
POSTGRES_REDIS = "postgres+redis"
POSTGRES_REDIS_CLUSTER = "postgres+redis-cluster"

# engine -> the service markers its param carries
ENGINES: dict[str, tuple[pytest.MarkDecorator, ...]] = {
    SQLITE: (),
    POSTGRES: (pytest.mark.postgres,),
    POSTGRES_REDIS: (pytest.mark.postgres, pytest.mark.redis),
    POSTGRES_REDIS_CLUSTER: (pytest.mark.postgres, pytest.mark.redis_cluster),
}
# run only where a test names them: the Cluster engine is for the tests of the Cluster's own paths
BY_NAME_ONLY = (POSTGRES_REDIS_CLUSTER,)
# engines with the in-process ledger: a purchase writes its order row before it is answered
# (the Redis engine answers first and its order writer stores the row behind)
IN_PROCESS = (SQLITE, POSTGRES)


def engine_params(names: Sequence[str] = ()) -> list[pytest.ParameterSet]:
    """One `pytest.param` per engine named (all when none is), with its service markers."""
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise ValueError(f"unknown engine(s) {unknown}; known: {list(ENGINES)}")
    chosen = names or [name for name in ENGINES if name not in BY_NAME_ONLY]
    return [pytest.param(name, id=name, marks=ENGINES[name]) for name in chosen]


def uses_postgres(engine: str) -> bool:
    return engine.startswith("postgres")


class PostgresDatabases:
    """Fresh databases on the test server, each a copy of one template migrated on first use."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._template: str | None = None

    @contextmanager
    def fresh(self) -> Iterator[str]:
        """Yield the URL of a new, migrated database; drop it afterwards."""
        from tests.integration.servers import database_name, fresh_postgres_database

        if self._template is None:
            with ExitStack() as stack:
                url = stack.enter_context(fresh_postgres_database(name=database_name("fs_tpl")))
                store_db.upgrade(url)
                self._stack.enter_context(stack.pop_all())  # kept (and dropped) until `close`
            self._template = make_url(url).database
        with fresh_postgres_database(template=self._template) as url:
            yield url

    def close(self) -> None:
        self._stack.close()
        self._template = None


@contextmanager
def platform_on(
    engine: str, settings: Settings, clock: ManualClock, databases: PostgresDatabases | None = None
) -> Iterator[Platform]:
    """Build a platform on `engine` (see the module docstring); close it and drop its data afterwards."""
    from tests.integration.redis_support import redis_platform  # imports the optional redis client

    with ExitStack() as stack:
        if uses_postgres(engine):
            assert databases is not None, "a PostgreSQL engine needs the run's PostgresDatabases"
            url = stack.enter_context(databases.fresh())
            settings = settings.model_copy(update={"database_url": url})
        if engine in (POSTGRES_REDIS, POSTGRES_REDIS_CLUSTER):
            yield stack.enter_context(
                redis_platform(settings, clock, cluster=engine == POSTGRES_REDIS_CLUSTER)
            )
            return
        plat = build(settings, clock=clock)
        stack.callback(plat.close)
        yield plat


def drain_orders(platform: Platform) -> None:
    """With the Redis ledger, let the order writer store what was bought so far.

    The Redis engine answers a purchase from the ledger and writes its order row behind (the
    writer is not running under `open_api`); the in-process engines write the row before answering.
    """
    if platform.orders.write_behind:
        order_writer_for(platform).drain()
