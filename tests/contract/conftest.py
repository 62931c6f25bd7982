"""One ledger suite, every engine: the `ledger` fixture runs each contract test once per engine.

The Redis engine runs once plain, once with each item's stock split over four buckets (a different
code path: rebalancing), once on a Redis Cluster (items in slot groups, see
flashsale.ledger.redis) and once there with every item spread over three slot groups; its params
are marked `redis` (`redis_cluster`), so tests/conftest.py skips them when FLASHSALE_TEST_REDIS_URL
(FLASHSALE_TEST_REDIS_CLUSTER_URL) is not set, and fails them instead under
FLASHSALE_TEST_REQUIRE_SERVICES=1. An engine that fails to build fails the test: it never skips.
Every ledger it builds gets a fresh key prefix (`?prefix=t-<uuid>`), whose keys are deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from flashsale.clock import ManualClock
from flashsale.domain.sale import ItemTerms
from flashsale.ledger import Ledger, ledger_from_url
from flashsale.ledger.redis import RedisLedger
from tests.factories import terms
from tests.integration.redis_support import delete_keys_of
from tests.services import REDIS_CLUSTER_URL, REDIS_URL

ENGINES = [
    pytest.param("memory://", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("redis?buckets=4", id="redis-buckets", marks=pytest.mark.redis),
    # Three slot groups: tags g0, g1, g2 hash to slots 9454, 13519 and 1196, one on each master of a
    # 3-master Cluster made by `redis-cli --cluster create`; items 1 and 2 are in different groups.
    pytest.param("redis-cluster?groups=3", id="redis-cluster", marks=pytest.mark.redis_cluster),
    # Every item in three buckets, one in each slot group (so on each master), decided apart and
    # refilled by transfers (see flashsale.ledger.redis_spread).
    pytest.param(
        "redis-cluster?groups=3&spread=3", id="redis-cluster-spread", marks=pytest.mark.redis_cluster
    ),
]

LedgerFactory = Callable[[ManualClock], Ledger]


def with_query(url: str, *options: tuple[str, str]) -> str:
    """Add options to a URL's query, keeping whatever query it had."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode([*parse_qsl(parts.query), *options])))


def delete_prefixes(prefixes: list[str]) -> None:
    """Delete every key under these prefixes on the single-node test Redis (other ledgers' suites)."""
    import redis  # only the Redis engines need the client

    assert REDIS_URL is not None
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for prefix in prefixes:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


def server_url(engine: str) -> str:
    """The test server an engine param runs on (the Cluster's URL for `redis-cluster`)."""
    url = REDIS_CLUSTER_URL if engine.startswith("redis-cluster") else REDIS_URL
    assert url is not None
    return url


@pytest.fixture(params=ENGINES)
def make_ledger(request: pytest.FixtureRequest) -> Iterator[LedgerFactory]:
    """Yield a builder of empty ledgers of one engine; each Redis ledger gets its own key prefix."""
    engine: str = request.param
    on_redis = engine.startswith("redis")
    built: list[Ledger] = []

    def build(clock: ManualClock) -> Ledger:
        url = engine
        if on_redis:
            prefix = ("prefix", f"t-{uuid.uuid4().hex}")
            url = with_query(server_url(engine), *parse_qsl(urlsplit(engine).query), prefix)
        ledger = ledger_from_url(url, clock)  # an engine that cannot be built fails the test
        built.append(ledger)
        return ledger

    build(ManualClock())  # fails here, at set-up, when the engine cannot be built
    yield build
    for ledger in built:
        if isinstance(ledger, RedisLedger):
            delete_keys_of(ledger)
        # Network engines hold connection pools; an unclosed pool would warn (warnings are errors).
        close = getattr(ledger, "close", None)
        if close is not None:
            close()


@pytest.fixture
def ledger(make_ledger: LedgerFactory, clock: ManualClock) -> Ledger:
    """An empty ledger on the manual clock, which stands at T0 (the session opens)."""
    return make_ledger(clock)


@pytest.fixture
def item(ledger: Ledger) -> ItemTerms:
    """Item 1 configured on the ledger: 10 units, 2 per user, a ten-minute session from T0."""
    item_terms = terms(1, quota=10, per_user_limit=2)
    ledger.configure(item_terms)
    return item_terms
