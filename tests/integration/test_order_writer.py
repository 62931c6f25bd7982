"""The order writer: every accepted purchase becomes exactly one order, whatever was redelivered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from flashsale.bootstrap import Platform, order_writer_for
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.ledger.redis import RedisLedger
from flashsale.services.orders import Buy
from flashsale.store.tables import EventRow, OrderRow
from tests.conftest import Sale
from tests.integration.redis_support import redis_platform

pytestmark = pytest.mark.redis


@pytest.fixture
def platform(settings: Settings, clock: ManualClock) -> Iterator[Platform]:
    """The shared `platform` fixture, built with the Redis ledger under a fresh key prefix."""
    with redis_platform(settings, clock) as plat:
        yield plat


def stored(platform: Platform) -> tuple[int, int]:
    """Order rows and HoldPlaced events."""
    with platform.deps.uow() as uow:
        orders = uow.db.scalar(select(func.count()).select_from(OrderRow))
        placed = uow.db.scalar(select(func.count()).where(EventRow.kind == "HoldPlaced"))
    return int(orders or 0), int(placed or 0)


def buy_some(platform: Platform, sale: Sale, clock: ManualClock, n: int) -> list[str]:
    clock.set(clock() + 1)
    return [platform.orders.buy(Buy(f"u{i}", sale.earbuds_id, 1, "k")).order.id for i in range(n)]


def test_entries_read_by_a_pass_that_failed_are_written_by_the_next(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    ids = buy_some(platform, sale, clock, 5)
    writer = order_writer_for(platform)
    # A pass that read the entries and died before its commit: they are pending on this consumer.
    ledger = platform.ledger
    assert isinstance(ledger, RedisLedger)
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
    ledger = platform.ledger
    assert isinstance(ledger, RedisLedger)
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
    ledger = platform.ledger
    assert isinstance(ledger, RedisLedger)
    ledger.client.xadd(ledger.stream_key, {"hold_id": "broken", "qty": "many"})
    buy_some(platform, sale, clock, 2)
    writer = order_writer_for(platform)

    writer.drain()

    assert stored(platform) == (2, 2)
    assert writer.stats.dead_lettered == 1
    dead = ledger.client.xrange(f"{ledger.stream_key}:dead")
    assert [fields["hold_id"] for _, fields in dead] == ["broken"]
