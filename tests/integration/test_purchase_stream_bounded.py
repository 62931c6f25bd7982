"""The purchase stream stays bounded: after a long run it holds only what some group has not acknowledged.

Purchases are decided in batches by the Redis ledger (`buy_many` → one `reserve_many` script call
per batch) while two order writers drain the stream into PostgreSQL and trim it as they go. 20,000
purchases by default on one node, 5,000 over three slot groups' streams on the Cluster; the full
100,000 each with FLASHSALE_STRESS=full (see docs/architecture.md). Writers trim only entries every
group acknowledged, and acknowledge only after the commit that stored them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from flashsale.bootstrap import Platform, order_writer_for
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.ledger.redis import RedisLedger
from flashsale.services.orders import Buy, Purchase
from flashsale.store.tables import OrderRow
from tests import engines
from tests.factories import open_sale, stress_size
from tests.integration.redis_support import redis_of, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.stress]

PURCHASES = stress_size(20_000, 100_000)
CLUSTER_PURCHASES = stress_size(5_000, 100_000)
BATCH = 500  # purchases per buy_many: what the checkout batches when a crowd arrives at once
# After the last upkeep nothing is pending: the stream keeps its last delivered entry only.
BOUND = 1


@pytest.fixture
def platform(
    settings: Settings, clock: ManualClock, postgres_databases: engines.PostgresDatabases
) -> Iterator[Platform]:
    """The scale-out stack: the Redis ledger (fresh key prefix) and a fresh PostgreSQL database."""
    with engines.platform_on(engines.POSTGRES_REDIS, settings, clock, postgres_databases) as plat:
        yield plat


def stored_ids(platform: Platform) -> set[str]:
    with platform.deps.uow() as uow:
        return set(uow.db.scalars(select(OrderRow.id)))


def pending(ledger: RedisLedger, group: str) -> int:
    return int(ledger.client.xpending(ledger.stream_key, group)["pending"])


def test_the_stream_is_trimmed_to_what_was_acknowledged_after_a_long_run(
    platform: Platform, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = redis_of(platform)
    item_id = open_sale(platform, quota=PURCHASES, per_user_limit=1, payment_window_s=3600)
    clock.advance(1)
    writers = [order_writer_for(platform) for _ in range(2)]
    for n, writer in enumerate(writers):
        writer.consumer = f"writer-{n}"
        writer.start()
    granted: set[str] = set()
    longest = 0
    try:
        for start in range(0, PURCHASES, BATCH):
            answers = platform.orders.buy_many(
                [Buy(f"u{n}", item_id, 1, "k") for n in range(start, min(start + BATCH, PURCHASES))]
            )
            granted |= {a.order.id for a in answers if isinstance(a, Purchase)}
            longest = max(longest, ledger.client.xlen(ledger.stream_key))
        wait_until(lambda: len(stored_ids(platform)) == PURCHASES, timeout_s=600)
        # Writers keep passing while idle, and every few passes trim.
        wait_until(lambda: ledger.client.xlen(ledger.stream_key) <= BOUND, timeout_s=30)
    finally:
        for writer in writers:
            writer.stop()
    group = writers[0].group

    assert len(granted) == PURCHASES
    assert stored_ids(platform) == granted
    assert pending(ledger, group) == 0
    length = ledger.client.xlen(ledger.stream_key)
    assert length <= BOUND
    trimmed = sum(w.stats.trimmed for w in writers)
    assert trimmed == PURCHASES - length
    assert sum(w.stats.written for w in writers) == PURCHASES
    with capsys.disabled():
        print(
            f"\n[purchase stream, {PURCHASES} purchases] longest seen {longest}, after the run {length}, "
            f"trimmed {trimmed} by {sum(w.stats.trimmed > 0 for w in writers)} writers"
        )


@pytest.fixture
def cluster_platform(
    settings: Settings, clock: ManualClock, postgres_databases: engines.PostgresDatabases
) -> Iterator[Platform]:
    """The scale-out stack on the Redis Cluster: one purchase stream per slot group."""
    with engines.platform_on(engines.POSTGRES_REDIS_CLUSTER, settings, clock, postgres_databases) as plat:
        yield plat


@pytest.mark.redis_cluster
def test_every_slot_groups_stream_is_trimmed_after_a_run_on_the_cluster(
    cluster_platform: Platform, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = cluster_platform
    ledger = redis_of(platform)
    # Three items (ids 1..3 on a fresh database), so three slot groups' streams fill at once.
    share = -(-CLUSTER_PURCHASES // 3)
    items = [open_sale(platform, quota=share, per_user_limit=1, payment_window_s=3600) for _ in range(3)]
    assert len({ledger.group_of_item(i) for i in items}) == 3
    clock.advance(1)
    writers = [order_writer_for(platform) for _ in range(2)]
    for n, writer in enumerate(writers):
        writer.consumer = f"writer-{n}"
        writer.start()

    def lengths() -> list[int]:
        return [ledger.client.xlen(key) for key in ledger.stream_keys]

    granted: set[str] = set()
    try:
        for start in range(0, CLUSTER_PURCHASES, BATCH):
            end = min(start + BATCH, CLUSTER_PURCHASES)
            buys = [Buy(f"u{n}", items[n % 3], 1, "k") for n in range(start, end)]
            granted |= {a.order.id for a in platform.orders.buy_many(buys) if isinstance(a, Purchase)}
        wait_until(lambda: len(stored_ids(platform)) == CLUSTER_PURCHASES, timeout_s=600)
        wait_until(lambda: max(lengths()) <= BOUND, timeout_s=30)
    finally:
        for writer in writers:
            writer.stop()

    assert len(granted) == CLUSTER_PURCHASES
    assert stored_ids(platform) == granted
    assert max(lengths()) <= BOUND
    trimmed = sum(w.stats.trimmed for w in writers)
    assert trimmed == CLUSTER_PURCHASES - sum(lengths())
    with capsys.disabled():
        print(f"\n[purchase streams, Cluster, {CLUSTER_PURCHASES} purchases] after the run {lengths()}")
