"""The order writer: every accepted purchase becomes exactly one order, whatever was redelivered;
it outlives its stream vanishing, and keeps the stream and its group small."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from flashsale.bootstrap import Platform, order_writer_for
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.ledger.redis import RedisLedger
from flashsale.services.orders import Buy
from flashsale.store import repositories as repo
from flashsale.store.tables import EventRow, OrderRow
from tests.conftest import Sale
from tests.integration.redis_support import redis_of, redis_platform, wait_until

pytestmark = pytest.mark.redis


@pytest.fixture(
    params=[
        pytest.param({}, id="redis"),
        # one slot group: the tests below read the one stream `stream_key`; test_redis_cluster.py
        # covers a writer reading the streams of many groups
        pytest.param({"cluster": True, "groups": 1}, id="redis-cluster", marks=pytest.mark.redis_cluster),
    ]
)
def platform(settings: Settings, clock: ManualClock, request: pytest.FixtureRequest) -> Iterator[Platform]:
    """The shared `platform` fixture on the Redis ledger (one node or a Cluster) under a fresh key prefix."""
    with redis_platform(settings, clock, **request.param) as plat:
        yield plat


def stored(platform: Platform) -> tuple[int, int]:
    """Order rows and HoldPlaced events."""
    with platform.deps.uow() as uow:
        orders = uow.db.scalar(select(func.count()).select_from(OrderRow))
        placed = uow.db.scalar(select(func.count()).where(EventRow.kind == "HoldPlaced"))
    return int(orders or 0), int(placed or 0)


def buy_some(platform: Platform, sale: Sale, clock: ManualClock, n: int, first: int = 0) -> list[str]:
    """One earbud each for users u<first>..; return the order ids in the order bought."""
    clock.set(clock() + 1)
    users = range(first, first + n)
    return [platform.orders.buy(Buy(f"u{i}", sale.earbuds_id, 1, "k")).order.id for i in users]


def stream_ids(ledger: RedisLedger) -> list[str]:
    """The hold ids still in the purchase stream, oldest first."""
    return [fields["hold_id"] for _, fields in ledger.client.xrange(ledger.stream_key)]


def test_entries_read_by_a_pass_that_failed_are_written_by_the_next(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    ids = buy_some(platform, sale, clock, 5)
    writer = order_writer_for(platform)
    # A pass that read the entries and died before its commit: they are pending on this consumer.
    ledger = redis_of(platform)
    ledger.client.xreadgroup(writer.group, writer.consumer, {writer.stream: ">"}, count=100)
    assert stored(platform) == (0, 0)

    assert writer.drain() == 5

    assert stored(platform) == (5, 5)
    assert ledger.client.xpending(writer.stream, writer.group)["pending"] == 0
    assert {o.id for o in platform.orders.list_for_user("u0")} == {ids[0]}


def test_a_redelivered_entry_is_stored_once(platform: Platform, sale: Sale, clock: ManualClock) -> None:
    buy_some(platform, sale, clock, 3)
    writer = order_writer_for(platform)
    assert writer.drain() == 3
    ledger = redis_of(platform)
    # Deliver the same purchases again under a second group, as after a lost acknowledgement.
    again = order_writer_for(platform)
    again.group = "replay"
    ledger.client.xgroup_create(again.stream, again.group, id="0")

    assert again.drain() == 3

    assert stored(platform) == (3, 3)
    assert again.stats.duplicates == 3 and again.stats.written == 0


def test_a_malformed_entry_is_dead_lettered_and_does_not_block_the_rest(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    ledger = redis_of(platform)
    ledger.client.xadd(ledger.stream_key, {"hold_id": "broken", "qty": "many"})
    buy_some(platform, sale, clock, 2)
    writer = order_writer_for(platform)

    writer.drain()

    assert stored(platform) == (2, 2)
    assert writer.stats.dead_lettered == 1
    dead = ledger.client.xrange(f"{ledger.stream_key}:dead")
    assert [fields["hold_id"] for _, fields in dead] == ["broken"]


def test_a_writer_whose_stream_vanished_creates_its_group_again_and_writes_what_follows(
    platform: Platform, sale: Sale, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = redis_of(platform)
    writer = order_writer_for(platform)
    writer.start()
    try:
        before = buy_some(platform, sale, clock, 3)
        assert wait_until(lambda: stored(platform) == (3, 3))
        # What Redis restarting empty, FLUSHALL or a failover to an empty replica does to the writer.
        with caplog.at_level(logging.WARNING, logger="flashsale.jobs.order_writer"):
            ledger.client.delete(ledger.stream_key)
            after = buy_some(platform, sale, clock, 4, first=3)
            wait_until(lambda: stored(platform) == (7, 7))
        alive = writer.running
    finally:
        writer.stop()

    assert stored(platform) == (7, 7)
    assert alive
    assert {o.id for u in range(7) for o in platform.orders.list_for_user(f"u{u}")} == {*before, *after}
    assert writer.stats.recreated == 1
    vanished = [r for r in caplog.records if "vanished" in r.getMessage()]
    assert len(vanished) == 1 and vanished[0].levelno == logging.WARNING
    assert ledger.client.xpending(writer.stream, writer.group)["pending"] == 0


def test_upkeep_trims_only_what_every_group_acknowledged(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    ledger = redis_of(platform)
    client = ledger.client
    ids = buy_some(platform, sale, clock, 6)
    writer = order_writer_for(platform)
    client.xgroup_create(writer.stream, "late", id="0")  # another reader that has read nothing yet
    client.xgroup_create(writer.stream, "audit", id="0")  # ... and one that read 4 and acked 2
    audit = client.xreadgroup("audit", "a1", {writer.stream: ">"}, count=4)[0][1]
    client.xack(writer.stream, "audit", audit[0][0], audit[1][0])
    assert writer.drain() == 6

    assert writer.upkeep() == 0  # "late" acknowledged nothing
    assert stream_ids(ledger) == ids

    client.xgroup_destroy(writer.stream, "late")
    assert writer.upkeep() == 2  # up to audit's first pending entry
    assert stream_ids(ledger) == ids[2:]

    rest = client.xreadgroup("audit", "a1", {writer.stream: ">"})[0][1]
    client.xack(writer.stream, "audit", *(entry_id for entry_id, _ in audit[2:] + rest))
    writer.upkeep()
    # Everything acknowledged by both groups: only the last delivered entry is kept.
    assert stream_ids(ledger) == ids[-1:]
    assert writer.stats.trimmed == 5
    assert stored(platform) == (6, 6)


def test_a_dead_consumer_is_forgotten_only_after_its_entries_were_claimed_and_written(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    ledger = redis_of(platform)
    client = ledger.client
    ids = buy_some(platform, sale, clock, 4)
    writer = order_writer_for(platform)
    # A writer that read the purchases and died before writing them.
    client.xreadgroup(writer.group, "dead-writer", {writer.stream: ">"}, count=100)
    writer.claim_idle_ms, writer.forget_idle_ms = 3_600_000, 0  # not claimable yet; idle "long enough"

    assert writer.drain() == 0
    writer.upkeep()

    consumers = {c["name"]: c["pending"] for c in client.xinfo_consumers(writer.stream, writer.group)}
    assert consumers["dead-writer"] == 4  # kept: it still holds entries nobody wrote
    assert stream_ids(ledger) == ids

    writer.claim_idle_ms = 0  # now its entries count as abandoned
    assert writer.drain() == 4
    writer.upkeep()

    assert stored(platform) == (4, 4)
    assert writer.stats.claimed == 4
    names = {c["name"] for c in client.xinfo_consumers(writer.stream, writer.group)}
    assert names == {writer.consumer}
    assert writer.stats.forgotten == 1
    assert client.xpending(writer.stream, writer.group)["pending"] == 0
    assert stream_ids(ledger) == ids[-1:]


def test_entries_stored_out_of_order_raise_the_mark_and_are_no_sign_of_lost_writes(
    platform: Platform, sale: Sale, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    buy_some(platform, sale, clock, 6)
    stream = platform.ledger.purchase_stream()
    assert stream is not None
    entries = stream.client.xrange(stream.key)
    writer = order_writer_for(platform)

    writer._write({stream.key: entries[3:]})  # another writer stored the later grants first
    writer._write({stream.key: entries[:3]})

    with platform.deps.read() as r:
        marks = repo.ledger_marks(r.db)
    assert marks == {(sale.earbuds_id, 0): platform.ledger.sequences(sale.earbuds_id)[0]}
    assert stored(platform) == (6, 6)
    assert "LOST" not in caplog.text
