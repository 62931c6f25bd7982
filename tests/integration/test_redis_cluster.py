"""The Redis ledger on a 3-master Redis Cluster: batches split by slot group, one purchase stream per
group, every group's orders written, and a sale set up over HTTP on an empty database.

The contract suite runs on the Cluster too (tests/contract, engine `redis-cluster`); these tests
cover what only a Cluster has: several slot groups, several streams, the Cluster client.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import partial

import pytest
from sqlalchemy import func, select

from flashsale.api.health import WriterBacklog, writer_backlog
from flashsale.bootstrap import Platform, order_writer_for
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.ledger.redis import ClusterNeedsClusterURL, RedisLedger
from flashsale.services.admission import Admission, RateLimits, admission_storage, parse_limits
from flashsale.services.fence import rebuild_lost_ledger
from flashsale.services.orders import Buy
from flashsale.store.tables import OrderRow
from tests.conftest import Sale
from tests.engines import POSTGRES_REDIS_CLUSTER
from tests.factories import release_together, terms
from tests.integration.redis_support import delete_keys_of, redis_ledgers, redis_of, wait_until, with_query
from tests.services import REDIS_CLUSTER_URL

pytestmark = pytest.mark.redis_cluster


@pytest.fixture
def ledger(clock: ManualClock) -> Iterator[RedisLedger]:
    """A Cluster ledger with the default slot groups, under a fresh prefix."""
    assert REDIS_CLUSTER_URL is not None
    with redis_ledgers(REDIS_CLUSTER_URL, clock) as make:
        yield make()


def stream_items(ledger: RedisLedger, group: int) -> list[int]:
    """The item ids of the entries in one slot group's purchase stream."""
    return [int(fields["item_id"]) for _, fields in ledger.client.xrange(ledger.stream_keys[group])]


def test_a_batch_over_items_of_several_groups_is_decided_per_group_and_answered_in_request_order(
    ledger: RedisLedger,
) -> None:
    items = (1, 2, 3, 17)  # 1 and 17 share a group of 16; 2 and 3 have their own
    for item_id in items:
        ledger.configure(terms(item_id, quota=3, per_user_limit=1))
    batch = [(items[n % 4], f"u{n // 4}", 1, f"k{n % 4}") for n in range(20)]  # 5 users per item, quota 3

    decisions = ledger.reserve_many(batch)

    for (item_id, user_id, _, _), decision in zip(batch, decisions, strict=True):
        if decision.hold is not None:
            assert (decision.hold.item_id, decision.hold.user_id) == (item_id, user_id)
    # per item, the first three users in request order got the units
    assert [d.granted for d in decisions] == [n < 12 for n in range(20)]
    assert {ledger.group_of_item(i) for i in items} == {1, 2, 3}
    assert sorted(stream_items(ledger, 1)) == [1, 1, 1, 17, 17, 17]
    assert stream_items(ledger, 2) == [2, 2, 2] and stream_items(ledger, 3) == [3, 3, 3]
    # hold ids are drawn in their item's group, so settling one goes straight to its slot
    for d in decisions:
        if d.hold is not None:
            assert ledger.group_of_hold(d.hold.hold_id) == ledger.group_of_item(d.hold.item_id)
            assert ledger.confirm(d.hold.hold_id).state.value == "sold"
    assert [ledger.stock(i).sold for i in items] == [3, 3, 3, 3]


@pytest.mark.engines(POSTGRES_REDIS_CLUSTER)
def test_a_crowd_buying_items_of_two_groups_gets_the_quotas_and_one_writer_stores_every_order(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    ledger = redis_of(platform)
    phone, buds = sale.phone_id, sale.earbuds_id
    assert ledger.group_of_item(phone) != ledger.group_of_item(buds)
    clock.set(clock() + 1)

    def attempt(item_id: int, n: int) -> str:
        try:
            return platform.orders.buy(Buy(f"u{n}", item_id, 1, f"k{item_id}")).order.id
        except FlashSaleError as refused:
            assert refused.code is ErrorCode.SOLD_OUT
            return ""

    answers = release_together([partial(attempt, item, n) for n in range(40) for item in (phone, buds)])
    bought = [order_id for order_id in answers if order_id]

    stream = ledger.purchase_stream()
    assert writer_backlog(stream).lag == 30  # /readyz and /metrics add up every group's stream
    writer = order_writer_for(platform)
    assert len(writer.streams) == ledger.groups
    writer.drain()
    assert writer_backlog(stream) == WriterBacklog(lag=0, pending=0)

    with platform.deps.uow() as uow:
        stored = set(uow.db.scalars(select(OrderRow.id)))
        count = uow.db.scalar(select(func.count()).select_from(OrderRow))
    assert len(bought) == 30 and set(bought) == stored and count == 30  # quotas 10 and 20
    for item_id, quota in ((phone, 10), (buds, 20)):
        level = ledger.stock(item_id)
        assert level.conserved and (level.held, level.available) == (quota, 0)
        assert stream_items(ledger, ledger.group_of_item(item_id)) == [item_id] * quota


def test_rate_limits_count_on_the_cluster_shared_by_every_admission_built_from_the_url() -> None:
    assert REDIS_CLUSTER_URL is not None
    url = with_query(REDIS_CLUSTER_URL, prefix=f"t-{uuid.uuid4().hex}")
    limits = RateLimits(purchase_per_shopper=parse_limits("2/minute"))
    storages = [admission_storage(url) for _ in range(2)]  # two workers
    workers = [Admission(limits, storage) for storage in storages]
    try:
        workers[0].admit_purchase("ann", None)
        workers[1].admit_purchase("ann", None)
        with pytest.raises(FlashSaleError) as refused:
            workers[0].admit_purchase("ann", None)
        assert refused.value.code is ErrorCode.RATE_LIMITED
        workers[1].admit_purchase("bob", None)  # another shopper's count is their own
    finally:
        storages[0].reset()


def test_a_plain_redis_url_naming_a_cluster_node_is_refused_with_what_to_write_instead(
    clock: ManualClock,
) -> None:
    assert REDIS_CLUSTER_URL is not None
    plain = REDIS_CLUSTER_URL.replace("redis+cluster://", "redis://")
    with redis_ledgers(plain, clock) as make:
        ledger = make()
        with pytest.raises(ClusterNeedsClusterURL, match=r"redis\+cluster://"):
            ledger.configure(terms(1, quota=3))


def _stored_orders(platform: Platform) -> int:
    with platform.deps.uow() as uow:
        return int(uow.db.scalar(select(func.count()).select_from(OrderRow)) or 0)


@pytest.mark.engines(POSTGRES_REDIS_CLUSTER)
def test_a_running_writer_waiting_on_one_stream_at_a_time_stores_purchases_of_every_group(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    writer = order_writer_for(platform)
    writer.start()
    try:
        clock.set(clock() + 1)
        for n in range(5):
            for item_id in (sale.phone_id, sale.earbuds_id):
                platform.orders.buy(Buy(f"u{n}", item_id, 1, f"k{item_id}"))
        assert wait_until(lambda: _stored_orders(platform) == 10, timeout_s=30)
    finally:
        writer.stop()
    assert not writer.running


@pytest.mark.engines(POSTGRES_REDIS_CLUSTER)
def test_a_cluster_that_came_back_empty_is_rebuilt_with_its_holds_request_keys_and_claims(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    ledger = redis_of(platform)
    clock.set(clock() + 1)
    bought = {
        (n, item_id): platform.orders.buy(Buy(f"u{n}", item_id, 1, f"k{item_id}")).order.id
        for n in range(4)
        for item_id in (sale.phone_id, sale.earbuds_id)
    }
    order_writer_for(platform).drain()
    levels = [ledger.stock(i) for i in (sale.phone_id, sale.earbuds_id)]
    delete_keys_of(ledger)  # every master lost the ledger (restarted empty)

    assert rebuild_lost_ledger(platform.deps)

    assert [ledger.stock(i) for i in (sale.phone_id, sale.earbuds_id)] == levels
    replay = platform.orders.buy(Buy("u0", sale.phone_id, 1, f"k{sale.phone_id}"))
    assert replay.order.id == bought[0, sale.phone_id]
    with pytest.raises(FlashSaleError) as refused:  # the key's claim came back too: another item's
        platform.orders.buy(Buy("u0", sale.earbuds_id, 1, f"k{sale.phone_id}"))
    assert refused.value.code is ErrorCode.IDEMPOTENCY_MISMATCH
