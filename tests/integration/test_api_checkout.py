"""Checkout batches concurrent purchases into `reserve_many` calls without changing any answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from flashsale.bootstrap import Platform, rebuild_ledger
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.ledger.contract import Decision
from flashsale.ledger.memory import MemoryLedger
from flashsale.services.checkout import Checkout
from flashsale.services.orders import Buy, OrderService, Purchase
from tests.conftest import Sale


class RecordingLedger(MemoryLedger):
    """The in-process engine, recording each batch it is asked for, and failing while `outage` is set."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.batches: list[int] = []
        self.outage: Exception | None = None

    def reserve_many(
        self, requests: Sequence[tuple[int, str, int, str]], *, checked: bool = False
    ) -> list[Decision]:
        self.batches.append(len(requests))
        if self.outage is not None:
            raise self.outage
        return super().reserve_many(requests, checked=checked)


@pytest.fixture
def ledger(platform: Platform, clock: ManualClock, sale: Sale) -> RecordingLedger:
    recording = RecordingLedger(clock)
    rebuild_ledger(replace(platform.deps, ledger=recording))
    return recording


@pytest.fixture
def orders(platform: Platform, ledger: RecordingLedger) -> OrderService:
    """Orders answered from the ledger's decision (write-behind), as on the shared Redis ledger."""
    return OrderService(replace(platform.deps, ledger=ledger), {}, write_behind=True)


def phone_buyers(sale: Sale, count: int) -> list[Buy]:
    return [Buy(f"u{n}", sale.phone_id, 1, f"k{n}") for n in range(count)]


async def test_purchases_that_arrive_together_are_decided_in_batches_in_arrival_order(
    orders: OrderService, ledger: RecordingLedger, sale: Sale
) -> None:
    checkout, buyers = Checkout(orders, max_batch=8), phone_buyers(sale, 30)
    outcomes = await asyncio.gather(*(checkout.buy(b) for b in buyers), return_exceptions=True)
    # The phone's quota is 10: the first ten to arrive get it, as one `reserve` after another would.
    assert [o.order.user_id for o in outcomes if isinstance(o, Purchase)] == [b.user_id for b in buyers[:10]]
    refusals = [o for o in outcomes if not isinstance(o, Purchase)]
    assert all(isinstance(r, FlashSaleError) and r.code is ErrorCode.SOLD_OUT for r in refusals)
    assert len(refusals) == 20
    # All thirty queued before the first batch left; each batch takes what is queued, at most eight.
    assert ledger.batches == [8, 8, 8, 6]
    level = ledger.stock(sale.phone_id)
    assert (level.available, level.held) == (0, 10) and level.conserved


async def test_a_failed_batch_fails_each_of_its_purchases_and_a_retry_decides_them(
    orders: OrderService, ledger: RecordingLedger, sale: Sale
) -> None:
    checkout, buyers = Checkout(orders), phone_buyers(sale, 5)
    ledger.outage = ConnectionError("ledger unreachable")
    failed = await asyncio.gather(*(checkout.buy(b) for b in buyers), return_exceptions=True)
    assert all(isinstance(f, ConnectionError) for f in failed) and len(failed) == 5
    ledger.outage = None
    retried = await asyncio.gather(*(checkout.buy(b) for b in buyers))
    assert [p.order.user_id for p in retried] == [b.user_id for b in buyers]
    assert ledger.stock(sale.phone_id).held == 5


async def test_a_shopper_who_goes_away_keeps_the_purchase_and_the_others_get_their_answers(
    orders: OrderService, ledger: RecordingLedger, sale: Sale
) -> None:
    checkout, buyers = Checkout(orders), phone_buyers(sale, 5)
    waiting = [asyncio.create_task(checkout.buy(b)) for b in buyers]
    await asyncio.sleep(0)  # every purchase is queued; the batch has not been decided yet
    waiting[2].cancel()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert isinstance(outcomes[2], asyncio.CancelledError)
    assert all(isinstance(o, Purchase) for n, o in enumerate(outcomes) if n != 2)
    # Like a dropped connection after a decision: the hold stands and a retry with the key replays it.
    assert ledger.stock(sale.phone_id).held == 5
    replay = await checkout.buy(buyers[2])
    assert replay.replayed and replay.order.user_id == "u2"


async def test_without_write_behind_each_purchase_is_recorded_on_its_own(
    platform: Platform, sale: Sale
) -> None:
    checkout = Checkout(platform.orders)
    bought = await asyncio.gather(*(checkout.buy(b) for b in phone_buyers(sale, 3)))
    assert [platform.orders.get(p.order.id).user_id for p in bought] == ["u0", "u1", "u2"]
