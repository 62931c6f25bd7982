"""Redis ledgers for the Redis-engine tests: one fresh key prefix per ledger, deleted afterwards."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.ledger.redis import RedisLedger, redis_ledger_from_url
from tests.services import REDIS_CLUSTER_URL, REDIS_URL

LedgerMaker = Callable[..., RedisLedger]


def with_query(url: str, **options: object) -> str:
    """Add options to a URL's query, keeping whatever query it had."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), *((k, str(v)) for k, v in options.items())]
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextmanager
def redis_ledgers(url: str, clock: ManualClock) -> Iterator[LedgerMaker]:
    """Yield `make(prefix=None, buckets=1)`; every ledger made is closed and its keys deleted at exit."""
    made: list[RedisLedger] = []

    def make(*, prefix: str | None = None, buckets: int = 1) -> RedisLedger:
        ledger = redis_ledger_from_url(
            with_query(url, prefix=prefix or f"t-{uuid.uuid4().hex}", buckets=buckets), clock
        )
        made.append(ledger)
        return ledger

    try:
        yield make
    finally:
        for ledger in made:
            delete_keys_of(ledger)
            ledger.close()


def delete_keys_of(ledger: RedisLedger) -> None:
    """Delete every key under the ledger's prefix and the coupon ledger's beside it (on every master
    of a Cluster, one key a call)."""
    for prefix in (ledger.prefix, f"{ledger.prefix}-coupons", f"{ledger.prefix}-draws"):
        for key in list(ledger.client.scan_iter(match=f"{prefix}:*", count=1000)):
            ledger.client.delete(key)


def unindex(ledger: RedisLedger) -> None:
    """Leave the ledger as a deploy before its finished and sold indexes did: none, and no scan of them."""
    for g, prefix in enumerate(ledger._prefixes):
        done = ledger._shared[g][7]
        ledger.client.delete(done, f"{prefix}:sold", f"{prefix}:indexed")


def bucket_units(ledger: RedisLedger, item_id: int) -> list[int]:
    """Read the available units of each of the item's buckets straight from Redis."""
    book = f"{ledger.prefix}:{{i:{item_id}}}:book"
    buckets = int(ledger.client.hget(book, "buckets") or 0)
    first = int(ledger.client.hget(book, "avail") or 0)
    rest = [
        int(ledger.client.get(f"{ledger.prefix}:{{i:{item_id}:b{k}}}:avail") or 0) for k in range(1, buckets)
    ]
    return [first, *rest]


def redis_of(platform: Platform) -> RedisLedger:
    """The platform's ledger, which must be the Redis one."""
    ledger = platform.ledger
    assert isinstance(ledger, RedisLedger)
    return ledger


@contextmanager
def redis_platform(
    settings: Settings, clock: ManualClock, *, cluster: bool = False, **options: object
) -> Iterator[Platform]:
    """A platform on the Redis ledger under a fresh key prefix, whose keys are deleted afterwards.

    `cluster` puts it on the test Cluster (FLASHSALE_TEST_REDIS_CLUSTER_URL); `options` go to the URL.
    """
    server = REDIS_CLUSTER_URL if cluster else REDIS_URL
    assert server is not None
    url = with_query(server, prefix=f"t-{uuid.uuid4().hex}", **options)
    # On the Cluster, coupons and draws need one node: the single-node test Redis.
    promotions = REDIS_URL if cluster else None
    update = {"backend": "redis", "redis_url": url, "promotions_redis_url": promotions}
    plat = build(settings.model_copy(update=update), clock=clock)
    ledger = plat.ledger
    assert isinstance(ledger, RedisLedger)
    try:
        yield plat
    finally:
        delete_keys_of(ledger)
        plat.close()


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    """Poll `condition` until it holds or `timeout_s` passed (work in another thread or process); return it.

    The caller asserts what it waited for afterwards, so a timeout fails on the real check.
    """
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()
