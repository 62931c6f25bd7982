"""A paused sale over HTTP and in reconcile: 503 + Retry-After, nothing half done, always resumed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import update

from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import HoldState
from flashsale.domain.orders import OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.services.fence import sync_shared_ledger
from flashsale.services.orders import Buy
from flashsale.services.reconcile import Reconciler
from flashsale.store.tables import ItemRow
from tests.conftest import Sale
from tests.contract.checks import error_code
from tests.engines import drain_orders
from tests.integration.api_support import Api, assert_refused, open_api

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py

LEASE_S = 30.0


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def pause(platform: Platform, *item_ids: int, token: str = "repair") -> None:
    platform.ledger.pause(item_ids, until=platform.deps.clock() + LEASE_S, token=token)


def sell_over_quota(platform: Platform, sale: Sale) -> None:
    """Three phones paid, then the stored quota lowered to two (an edit straight in the database)."""
    for user in ("ann", "bob", "cy"):
        platform.orders.pay(platform.orders.buy(Buy(user, sale.phone_id, 1, user)).order.id, user)
    with platform.deps.uow() as uow:
        uow.db.execute(update(ItemRow).where(ItemRow.id == sale.phone_id).values(quota=2))
        uow.commit()


def test_a_purchase_during_a_pause_is_told_503_with_retry_after_and_the_session_stays_open(
    api: Api, sale: Sale
) -> None:
    pause(api.platform, sale.phone_id)

    refused = api.buy("alice", sale.phone_id)

    assert_refused(refused, 503, "SALE_PAUSED")
    assert 1 <= int(refused.headers["Retry-After"]) <= 5  # capped: the lease is only an upper bound
    listed = api.client.get("/sessions").json()
    assert [s["state"] for s in listed if s["id"] == sale.session_id] == ["open"]
    assert api.buy("bob", sale.earbuds_id).status_code == 201  # another item sells on

    api.platform.ledger.resume([sale.phone_id], token="repair")
    assert api.buy("alice", sale.phone_id).status_code == 201


def test_a_payment_during_a_pause_is_refunded_and_the_same_key_pays_after_it(api: Api, sale: Sale) -> None:
    order = api.buy("alice", sale.phone_id).json()
    drain_orders(api.platform)
    pay = {**api.shopper("alice"), "Idempotency-Key": "pay-1"}
    pause(api.platform, sale.phone_id)

    refused = api.client.post(f"/orders/{order['id']}/pay", headers=pay)

    assert_refused(refused, 503, "SALE_PAUSED")
    assert "Retry-After" in refused.headers
    assert api.platform.orders.get(order["id"]).status is OrderStatus.UNPAID
    assert audit_payments(api.platform.deps.sessions).clean  # charged and refunded: nets to 0
    cancel = api.client.post(f"/orders/{order['id']}/cancel", headers=api.shopper("alice"))
    assert_refused(cancel, 503, "SALE_PAUSED")

    api.platform.ledger.resume([sale.phone_id], token="repair")
    paid = api.client.post(f"/orders/{order['id']}/pay", headers=pay)
    assert paid.status_code == 200 and paid.json()["status"] == "PAID", paid.text
    assert audit_payments(api.platform.deps.sessions).clean


def test_reconcile_never_turns_a_payment_the_ledger_confirmed_back_into_a_hold(
    platform: Platform, sale: Sale
) -> None:
    order = platform.orders.buy(Buy("ann", sale.phone_id, 1, "a")).order
    drain_orders(platform)
    platform.ledger.confirm(order.id)  # the payment is decided; its order row is still being written

    Reconciler(platform.orders).run(repair=True)

    hold = platform.ledger.get_hold(order.id)
    assert hold is not None and hold.state is HoldState.SOLD
    level = platform.ledger.stock(sale.phone_id)
    assert (level.sold, level.held, level.available) == (1, 0, 9)
    assert platform.ledger.pauses() == {}


def test_reconcile_reports_an_item_over_quota_and_repairs_and_resumes_the_rest(
    platform: Platform, sale: Sale
) -> None:
    sell_over_quota(platform, sale)

    report = Reconciler(platform.orders).run(repair=True)

    assert report.over_quota == {sale.phone_id: 3}
    assert platform.ledger.pauses() == {}
    assert platform.orders.buy(Buy("dee", sale.earbuds_id, 1, "d")).order.status is OrderStatus.UNPAID
    with pytest.raises(FlashSaleError) as sold_out:
        platform.orders.buy(Buy("eve", sale.phone_id, 1, "e"))
    assert sold_out.value.code is ErrorCode.SOLD_OUT  # nothing more is sold of the item over quota


def test_reconcile_refuses_while_another_holds_the_pause_and_changes_nothing(
    platform: Platform, sale: Sale
) -> None:
    pause(platform, sale.phone_id, token="someone-else")

    with pytest.raises(FlashSaleError) as refused:
        Reconciler(platform.orders).run(repair=True)

    assert refused.value.code is ErrorCode.SALE_PAUSED
    assert set(platform.ledger.pauses()) == {sale.phone_id}
    assert platform.orders.buy(Buy("dee", sale.earbuds_id, 1, "d")).order.status is OrderStatus.UNPAID


SHARED = pytest.mark.engines(
    "postgres+redis", reason="only a shared ledger can come back empty under a live sale"
)


@SHARED
def test_a_start_on_an_emptied_ledger_rebuilds_it_even_with_an_item_over_quota(
    platform: Platform, sale: Sale
) -> None:
    sell_over_quota(platform, sale)
    platform.ledger.restore([], [])  # Redis came back empty

    sync_shared_ledger(platform.deps)  # what every worker runs at start: it must not crash

    phone = platform.ledger.stock(sale.phone_id)
    assert (phone.sold, phone.available) == (3, 0)
    assert platform.ledger.stock(sale.earbuds_id).available == 20
    assert platform.ledger.pauses() == {}


@SHARED
def test_a_start_leaves_the_rebuild_to_the_process_that_holds_the_pause(
    platform: Platform, sale: Sale
) -> None:
    platform.ledger.restore([], [])
    pause(platform, sale.phone_id, sale.earbuds_id, token="another-worker")

    sync_shared_ledger(platform.deps)

    assert error_code(platform.ledger.stock, sale.phone_id) is ErrorCode.UNKNOWN_ITEM  # not rebuilt twice
    with pytest.raises(FlashSaleError) as refused:
        platform.orders.buy(Buy("ann", sale.phone_id, 1, "a"))
    assert refused.value.code is ErrorCode.SALE_PAUSED


@SHARED
def test_a_purchase_on_an_emptied_ledger_is_told_to_retry_and_the_ledger_rebuilds_itself(
    platform: Platform, sale: Sale
) -> None:
    paid = platform.orders.buy(Buy("ann", sale.phone_id, 1, "a")).order
    platform.orders.pay(paid.id, "ann")
    platform.ledger.restore([], [])

    with pytest.raises(FlashSaleError) as refused:
        platform.orders.buy(Buy("bob", sale.phone_id, 1, "b"))

    assert refused.value.code is ErrorCode.SALE_PAUSED and refused.value.retry_after_s == 1.0
    assert platform.ledger.stock(sale.phone_id).sold == 1  # rebuilt from the store
    assert platform.orders.buy(Buy("bob", sale.phone_id, 1, "b")).order.status is OrderStatus.UNPAID


@SHARED
def test_a_dry_run_on_an_emptied_ledger_reports_it_and_changes_nothing(
    platform: Platform, sale: Sale
) -> None:
    platform.orders.pay(platform.orders.buy(Buy("ann", sale.phone_id, 1, "a")).order.id, "ann")
    platform.ledger.restore([], [])  # Redis came back empty

    dry = build(
        platform.settings, clock=platform.deps.clock, migrate=False, read_only=True
    )  # as --dry-run does
    try:
        report = Reconciler(dry.orders).run(repair=False)
    finally:
        dry.close()

    assert not report.clean
    assert report.kinds()["items missing in ledger"] == 2
    assert error_code(platform.ledger.stock, sale.phone_id) is ErrorCode.UNKNOWN_ITEM  # still empty
    assert platform.ledger.pauses() == {}
