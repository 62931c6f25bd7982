"""After the purchase: paying, cancelling, expiring, the provider's signed callback, refunds, listing."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import replace

import httpx2
import pytest
from sqlalchemy import select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.services.payments import SandboxProvider
from flashsale.store.tables import PaymentRow
from tests.conftest import Sale
from tests.engines import drain_orders
from tests.integration.api_support import Api, assert_refused, open_api

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py


@pytest.fixture
def api(platform: Platform, clock: ManualClock, sale: Sale) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


@pytest.fixture
def provider(platform: Platform) -> SandboxProvider:
    assert platform.settings.payment_secret is not None
    return SandboxProvider(platform.settings.payment_secret)


def _unpaid(api: Api, sale: Sale, user_id: str = "alice") -> str:
    bought = api.buy(user_id, sale.phone_id)
    assert bought.status_code == 201, bought.text
    order_id: str = bought.json()["id"]
    return order_id


def _callback(api: Api, body: bytes, signature: str, provider: str = "sandbox") -> httpx2.Response:
    return api.client.post(
        f"/payments/{provider}/callback",
        content=body,
        headers={"X-Signature": signature, "Content-Type": "application/json"},
    )


def test_paying_an_expired_order_is_refused_and_changes_nothing(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    order_id = _unpaid(api, sale)
    clock.advance(15 * 60)
    before = api.snapshot(sale.phone_id)
    assert before.stock[0].available == 10  # the lapsed hold is back on sale
    assert_refused(
        api.client.post(f"/orders/{order_id}/pay", headers=api.shopper("alice")), 409, "ORDER_EXPIRED"
    )
    assert api.snapshot(sale.phone_id).stock == before.stock
    assert api.snapshot().payments == 0
    shown = api.client.get(f"/orders/{order_id}", headers=api.shopper("alice")).json()
    assert shown["status"] == "EXPIRED"


def test_paying_twice_charges_once(api: Api, sale: Sale) -> None:
    order_id = _unpaid(api, sale)
    first = api.client.post(
        f"/orders/{order_id}/pay", headers=api.shopper("alice"), json={"provider": "sandbox"}
    )
    after_first = api.snapshot(sale.phone_id)
    again = api.client.post(f"/orders/{order_id}/pay", headers=api.shopper("alice"))
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json() == again.json()
    assert api.snapshot(sale.phone_id) == after_first
    assert after_first.payments == 1


@pytest.mark.parametrize(
    "body", [{"provider": "paypal"}, {"provider": ""}, {"provider": 7}, {"amount_cents": 1}, [1]], ids=str
)
def test_paying_with_an_unknown_provider_or_a_bad_body_is_refused(api: Api, sale: Sale, body: object) -> None:
    order_id = _unpaid(api, sale)
    before = api.snapshot(sale.phone_id)
    refused = api.client.post(f"/orders/{order_id}/pay", headers=api.shopper("alice"), json=body)
    assert_refused(refused, 422, "VALIDATION_ERROR")
    assert api.snapshot(sale.phone_id) == before


def test_cancelling_returns_the_unit_and_a_cancelled_order_cannot_be_paid(api: Api, sale: Sale) -> None:
    order_id = _unpaid(api, sale)
    cancelled = api.client.post(f"/orders/{order_id}/cancel", headers=api.shopper("alice"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert api.platform.ledger.stock(sale.phone_id).available == 10
    before = api.snapshot(sale.phone_id)
    again = api.client.post(f"/orders/{order_id}/cancel", headers=api.shopper("alice"))
    assert again.status_code == 200 and again.json()["status"] == "CANCELLED"
    assert_refused(
        api.client.post(f"/orders/{order_id}/pay", headers=api.shopper("alice")), 409, "INVALID_TRANSITION"
    )
    assert api.snapshot(sale.phone_id) == before
    assert api.buy("alice", sale.phone_id).status_code == 201  # the shopper's limit came back too


def test_a_paid_order_cannot_be_cancelled(api: Api, sale: Sale) -> None:
    order_id = _unpaid(api, sale)
    assert api.client.post(f"/orders/{order_id}/pay", headers=api.shopper("alice")).status_code == 200
    before = api.snapshot(sale.phone_id)
    refused = api.client.post(f"/orders/{order_id}/cancel", headers=api.shopper("alice"))
    assert_refused(refused, 409, "INVALID_TRANSITION")
    assert api.snapshot(sale.phone_id) == before


def test_an_unknown_order_is_not_found(api: Api) -> None:
    alice = api.shopper("alice")
    assert_refused(api.client.get("/orders/no-such-order", headers=alice), 404, "ORDER_NOT_FOUND")
    assert_refused(api.client.post("/orders/no-such-order/pay", headers=alice), 404, "ORDER_NOT_FOUND")
    assert_refused(api.client.get(f"/orders/{'x' * 65}", headers=alice), 422, "VALIDATION_ERROR")


def test_a_signed_provider_callback_settles_the_order_and_its_replay_is_harmless(
    api: Api, sale: Sale, provider: SandboxProvider
) -> None:
    order_id = _unpaid(api, sale)
    signed = provider.charge(api.platform.orders.get(order_id))
    settled = _callback(api, signed.body, signed.signature)
    assert settled.status_code == 200, settled.text
    assert settled.json() == {"order_id": order_id, "status": "PAID"}
    after = api.snapshot(sale.phone_id)
    replayed = _callback(api, signed.body, signed.signature)
    assert replayed.status_code == 200 and replayed.json()["status"] == "PAID"
    assert api.snapshot(sale.phone_id) == after
    assert (after.payments, after.stock[0].sold) == (1, 1)


@pytest.mark.parametrize("signature", ["", "0" * 64, "not-hex"])
def test_a_callback_with_a_bad_signature_is_rejected_and_changes_nothing(
    api: Api, sale: Sale, provider: SandboxProvider, signature: str
) -> None:
    order_id = _unpaid(api, sale)
    signed = provider.charge(api.platform.orders.get(order_id))
    before = api.snapshot(sale.phone_id)
    assert_refused(_callback(api, signed.body, signature), 400, "INVALID_SIGNATURE")
    assert_refused(_callback(api, signed.body + b" ", signed.signature), 400, "INVALID_SIGNATURE")
    assert api.snapshot(sale.phone_id) == before


def test_a_callback_for_the_wrong_amount_is_refused_and_the_money_given_back(
    api: Api, sale: Sale, platform: Platform
) -> None:
    order_id = _unpaid(api, sale)
    body = json.dumps(
        {"order_id": order_id, "provider_ref": "sbx_1", "amount_cents": 1, "status": "succeeded"}
    ).encode()
    assert platform.settings.payment_secret is not None
    signature = hmac.new(platform.settings.payment_secret.encode(), body, hashlib.sha256).hexdigest()
    before = api.snapshot(sale.phone_id)
    assert_refused(_callback(api, body, signature, provider="paypal"), 422, "VALIDATION_ERROR")
    assert api.snapshot(sale.phone_id) == before
    assert_refused(_callback(api, body, signature), 422, "PAYMENT_MISMATCH")
    assert_refused(_callback(api, body, signature), 422, "PAYMENT_MISMATCH")  # a repeat changes nothing more
    after = api.snapshot(sale.phone_id)
    # The provider did take the money, so the journal holds the charge and its refund; nothing else moved.
    assert after == replace(before, payments=before.payments + 2)
    with platform.deps.uow() as uow:
        journal = {(p.kind, p.status) for p in uow.db.scalars(select(PaymentRow))}
    assert journal == {("charge", "done"), ("refund", "done")}
    assert api.client.get(f"/orders/{order_id}", headers=api.shopper("alice")).json()["status"] == "UNPAID"


def test_the_operator_refunds_a_paid_order_and_the_unit_goes_back_on_sale(api: Api, sale: Sale) -> None:
    order_id = _unpaid(api, sale)
    assert_refused(
        api.client.post(f"/admin/orders/{order_id}/refund", headers=api.admin), 409, "INVALID_TRANSITION"
    )
    assert api.client.post(f"/orders/{order_id}/pay", headers=api.shopper("alice")).status_code == 200
    refunded = api.client.post(f"/admin/orders/{order_id}/refund", headers=api.admin)
    assert refunded.status_code == 200 and refunded.json()["status"] == "REFUNDED"
    level = api.platform.ledger.stock(sale.phone_id)
    assert (level.available, level.sold) == (10, 0)
    assert (
        api.client.post(f"/admin/orders/{order_id}/refund", headers=api.admin).json()["status"] == "REFUNDED"
    )
    assert api.snapshot().payments == 2  # the charge and one refund
    assert_refused(api.client.post("/admin/orders/nope/refund", headers=api.admin), 404, "ORDER_NOT_FOUND")


def test_orders_are_listed_newest_first_a_page_at_a_time(api: Api, sale: Sale, clock: ManualClock) -> None:
    ids = []
    for _ in range(2):
        ids.append(api.buy("alice", sale.earbuds_id, 1).json()["id"])
        clock.advance(1)
    drain_orders(api.platform)  # the list reads stored orders, which Redis writes behind
    alice = api.shopper("alice")
    assert [o["id"] for o in api.client.get("/orders", headers=alice).json()] == ids[::-1]
    page = api.client.get("/orders", params={"limit": 1, "offset": 1}, headers=alice).json()
    assert [o["id"] for o in page] == [ids[0]]
    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"offset": 10**20}, {"limit": "many"}):
        assert_refused(api.client.get("/orders", params=params, headers=alice), 422, "VALIDATION_ERROR")
