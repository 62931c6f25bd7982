"""The platform on the Redis ledger (FLASHSALE_BACKEND=redis): buy, pay, cancel and expiry end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import OrderStatus
from flashsale.ledger.redis import RedisLedger
from flashsale.services.orders import Buy
from tests.conftest import Sale
from tests.integration.redis_support import redis_platform

pytestmark = pytest.mark.redis


@pytest.fixture
def platform(settings: Settings, clock: ManualClock) -> Iterator[Platform]:
    """The shared `platform` fixture, built with the Redis ledger under a fresh key prefix."""
    with redis_platform(settings, clock) as plat:
        yield plat


def test_a_sale_runs_on_the_redis_ledger_from_purchase_to_expiry(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    orders = platform.orders
    paid = orders.buy(Buy("ann", sale.earbuds_id, 2, "a")).order
    cancelled = orders.buy(Buy("bob", sale.earbuds_id, 1, "b")).order
    lapsed = orders.buy(Buy("cy", sale.earbuds_id, 2, "c")).order
    assert orders.buy(Buy("ann", sale.earbuds_id, 2, "a")).replayed
    with pytest.raises(FlashSaleError) as refused:
        orders.buy(Buy("ann", sale.earbuds_id, 1, "more"))
    assert refused.value.code is ErrorCode.LIMIT_EXCEEDED

    assert orders.pay(paid.id, "ann").status is OrderStatus.PAID
    assert orders.cancel(cancelled.id, "bob").status is OrderStatus.CANCELLED
    clock.advance(15 * 60)
    assert orders.expire_due() == 1

    level = platform.ledger.stock(sale.earbuds_id)
    assert (level.available, level.held, level.sold) == (18, 0, 2) and level.conserved
    assert orders.get(lapsed.id).status is OrderStatus.EXPIRED
    ledger = platform.ledger
    assert isinstance(ledger, RedisLedger)
    announced = [fields["hold_id"] for _id, fields in ledger.client.xrange(ledger.stream_key)]
    assert announced == [paid.id, cancelled.id, lapsed.id]
