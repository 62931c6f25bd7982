"""Buying over HTTP: the happy path, idempotent retries, limits, windows, bad input that changes nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from tests.conftest import T0, Sale
from tests.integration.api_support import Api, assert_refused, open_api

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def test_a_shopper_buys_pays_and_reads_the_paid_order(api: Api, sale: Sale) -> None:
    listed = api.client.get("/sessions").json()
    phone = next(i for s in listed for i in s["items"] if i["item_id"] == sale.phone_id)
    assert phone["remaining"] == 10 and phone["flash_price_cents"] == 399_900

    bought = api.buy("alice", sale.phone_id)
    assert bought.status_code == 201, bought.text
    order = bought.json()
    assert order["status"] == "UNPAID"
    assert (order["item_id"], order["qty"]) == (sale.phone_id, 1)
    assert (order["unit_price_cents"], order["total_cents"]) == (399_900, 399_900)
    assert order["expires_at"] == (T0 + timedelta(minutes=15)).isoformat().replace("+00:00", "Z")
    assert "Idempotent-Replayed" not in bought.headers

    paid = api.client.post(f"/orders/{order['id']}/pay", headers=api.shopper("alice"))
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "PAID"
    shown = api.client.get(f"/orders/{order['id']}", headers=api.shopper("alice")).json()
    assert shown["status"] == "PAID" and shown["paid_at"] is not None
    mine = api.client.get("/orders", headers=api.shopper("alice")).json()
    assert [o["id"] for o in mine] == [order["id"]]
    level = api.platform.ledger.stock(sale.phone_id)
    assert (level.available, level.held, level.sold) == (9, 0, 1)


def test_the_session_list_shows_open_and_upcoming_by_default_and_closed_on_request(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    listed = api.client.get("/sessions").json()
    assert [(s["id"], s["state"]) for s in listed] == [
        (sale.session_id, "open"),
        (sale.later_session_id, "upcoming"),
    ]
    assert {i["product_name"] for i in listed[0]["items"]} == {"Phone X", "Earbuds 2"}

    clock.advance(600)
    closed = api.client.get("/sessions", params={"state": "closed"}).json()
    assert [s["id"] for s in closed] == [sale.session_id]
    both = api.client.get("/sessions", params=[("state", "closed"), ("state", "upcoming")]).json()
    assert [s["id"] for s in both] == [sale.session_id, sale.later_session_id]
    assert_refused(api.client.get("/sessions", params={"state": "soon"}), 422, "VALIDATION_ERROR")


def test_one_session_shows_live_remaining_stock_and_an_unknown_one_is_not_found(api: Api, sale: Sale) -> None:
    assert api.buy("alice", sale.earbuds_id, 2).status_code == 201
    session = api.client.get(f"/sessions/{sale.session_id}").json()
    earbuds = next(i for i in session["items"] if i["item_id"] == sale.earbuds_id)
    assert (earbuds["quota"], earbuds["remaining"], earbuds["per_user_limit"]) == (20, 18, 2)
    assert_refused(api.client.get("/sessions/999999"), 404, "NOT_FOUND")
    assert_refused(api.client.get("/sessions/0"), 422, "VALIDATION_ERROR")


def test_the_same_idempotency_key_twice_replays_one_order_and_holds_once(api: Api, sale: Sale) -> None:
    first = api.buy("alice", sale.earbuds_id, 2, key="k-1")
    again = api.buy("alice", sale.earbuds_id, 2, key="k-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.snapshot(sale.earbuds_id).stock[0].held == 2
    assert api.snapshot().orders == 1


def test_a_replay_after_the_order_expired_is_200_with_the_expired_order_not_a_fresh_201(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    first = api.buy("alice", sale.phone_id, key="k-1")
    assert (first.status_code, first.json()["status"]) == (201, "UNPAID")
    clock.advance(15 * 60)  # the payment window is over; no sweeper ran to write the expiry down

    again = api.buy("alice", sale.phone_id, key="k-1")

    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (again.json()["id"], again.json()["status"]) == (first.json()["id"], "EXPIRED")
    level = api.platform.ledger.stock(sale.phone_id)
    assert (level.available, level.held) == (10, 0)  # the replay held nothing


def test_a_replay_after_the_sweeper_wrote_the_expiry_is_200_and_expired_too(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    first = api.buy("alice", sale.phone_id, key="k-1")
    clock.advance(15 * 60)
    api.platform.orders.expire_due()

    again = api.buy("alice", sale.phone_id, key="k-1")

    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert (again.json()["id"], again.json()["status"]) == (first.json()["id"], "EXPIRED")


def test_a_replay_of_a_paid_order_is_200_with_the_order_as_paid(api: Api, sale: Sale) -> None:
    first = api.buy("alice", sale.phone_id, key="k-1").json()
    assert api.client.post(f"/orders/{first['id']}/pay", headers=api.shopper("alice")).status_code == 200

    again = api.buy("alice", sale.phone_id, key="k-1")

    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert again.json()["status"] == "PAID"


def test_the_openapi_document_declares_201_for_a_grant_and_200_for_a_replay(api: Api) -> None:
    responses = api.client.get("/openapi.json").json()["paths"]["/purchases"]["post"]["responses"]

    for status in ("200", "201"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/OrderOut"}, status
    assert "replay" in responses["200"]["description"].lower()


def test_the_same_key_with_another_body_is_refused_and_changes_nothing(api: Api, sale: Sale) -> None:
    assert api.buy("alice", sale.earbuds_id, 1, key="k-1").status_code == 201
    before = api.snapshot(sale.earbuds_id, sale.phone_id)
    assert_refused(api.buy("alice", sale.earbuds_id, 2, key="k-1"), 422, "IDEMPOTENCY_MISMATCH")
    assert_refused(api.buy("alice", sale.phone_id, 1, key="k-1"), 422, "IDEMPOTENCY_MISMATCH")
    assert api.snapshot(sale.earbuds_id, sale.phone_id) == before


def test_another_shopper_may_use_the_same_key_for_their_own_order(api: Api, sale: Sale) -> None:
    mine = api.buy("alice", sale.phone_id, key="shared")
    theirs = api.buy("bob", sale.phone_id, key="shared")
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


def test_twenty_parallel_requests_with_one_key_make_exactly_one_order(api: Api, sale: Sale) -> None:
    barrier = threading.Barrier(20)
    responses: list[Any] = []
    headers = {**api.shopper("alice"), "Idempotency-Key": "double-click"}

    def click() -> None:
        barrier.wait()
        r = api.client.post("/purchases", json={"item_id": sale.phone_id, "quantity": 1}, headers=headers)
        responses.append(r)

    threads = [threading.Thread(target=click) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    fresh = [r for r in responses if "Idempotent-Replayed" not in r.headers]
    assert [r.status_code for r in fresh] == [201]
    snap = api.snapshot(sale.phone_id)
    assert (snap.stock[0].held, snap.stock[0].available, snap.orders) == (1, 9, 1)


def test_the_per_user_limit_refuses_more_and_changes_nothing(api: Api, sale: Sale) -> None:
    assert api.buy("alice", sale.phone_id).status_code == 201
    assert api.buy("alice", sale.earbuds_id, 1).status_code == 201
    before = api.snapshot(sale.phone_id, sale.earbuds_id)
    assert_refused(api.buy("alice", sale.phone_id), 409, "LIMIT_EXCEEDED")
    assert_refused(api.buy("alice", sale.earbuds_id, 2), 409, "LIMIT_EXCEEDED")
    assert api.snapshot(sale.phone_id, sale.earbuds_id) == before
    assert api.buy("alice", sale.earbuds_id, 1).status_code == 201  # exactly up to the limit


def test_the_last_units_go_then_insufficient_stock_then_sold_out(api: Api, sale: Sale) -> None:
    for n in range(9):
        assert api.buy(f"u{n}", sale.earbuds_id, 2).status_code == 201
    assert api.buy("u9", sale.earbuds_id, 1).status_code == 201
    before = api.snapshot(sale.earbuds_id)
    assert_refused(api.buy("late", sale.earbuds_id, 2), 409, "INSUFFICIENT_STOCK")
    assert api.snapshot(sale.earbuds_id) == before
    assert api.buy("late", sale.earbuds_id, 1).status_code == 201
    before = api.snapshot(sale.earbuds_id)
    assert_refused(api.buy("later", sale.earbuds_id, 1), 409, "SOLD_OUT")
    assert api.snapshot(sale.earbuds_id) == before
    level = before.stock[0]
    assert (level.available, level.held, level.quota) == (0, 20, 20)


@pytest.mark.parametrize(
    "moment", [T0 - timedelta(seconds=1), T0 + timedelta(minutes=10)], ids=["early", "late"]
)
def test_buying_outside_the_session_window_is_refused(
    api: Api, sale: Sale, clock: ManualClock, moment: Any
) -> None:
    clock.set(moment.timestamp())
    before = api.snapshot(sale.phone_id)
    assert_refused(api.buy("alice", sale.phone_id), 409, "SESSION_NOT_OPEN")
    assert api.snapshot(sale.phone_id) == before


@pytest.mark.parametrize("quantity", [0, -1, 1001, 10**30, -(10**30)])
def test_an_out_of_range_quantity_is_invalid_and_changes_nothing(api: Api, sale: Sale, quantity: int) -> None:
    before = api.snapshot(sale.earbuds_id)
    assert_refused(api.buy("alice", sale.earbuds_id, quantity), 422, "INVALID_QUANTITY")
    assert api.snapshot(sale.earbuds_id) == before


@pytest.mark.parametrize("quantity", [1.5, 1.0, "1", "abc", None, True, [1], {"n": 1}])
def test_a_quantity_that_is_not_an_integer_is_a_validation_error(api: Api, sale: Sale, quantity: Any) -> None:
    before = api.snapshot(sale.earbuds_id)
    refused = api.buy("alice", sale.earbuds_id, quantity)
    assert_refused(refused, 422, "VALIDATION_ERROR")
    assert refused.json()["details"][0]["loc"] == ["body", "quantity"]
    assert api.snapshot(sale.earbuds_id) == before


@pytest.mark.parametrize(
    ("item_id", "code"),
    [
        (999_999, "UNKNOWN_ITEM"),
        (0, "VALIDATION_ERROR"),
        (2**40, "VALIDATION_ERROR"),
        ("1", "VALIDATION_ERROR"),
    ],
)
def test_an_unknown_or_malformed_item_is_refused(api: Api, sale: Sale, item_id: Any, code: str) -> None:
    before = api.snapshot(sale.phone_id)
    assert_refused(api.buy("alice", item_id), 422, code)
    assert api.snapshot(sale.phone_id) == before


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"item_id": 1,', "application/json"),
        (b"", "application/json"),
        (b"null", "application/json"),
        (b"[]", "application/json"),
        (b'{"item_id": 1}', "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b'{"item_id": 1, "quantity": ' + b"9" * 5000 + b"}", "application/json"),
        (b'{"item_id": 1, "quantity": 1}', "text/plain"),
    ],
    ids=["truncated", "empty", "null", "array", "no-quantity", "bad-utf8", "5000-digit-int", "text-plain"],
)
def test_a_malformed_body_is_a_validation_error(
    api: Api, sale: Sale, content: bytes, content_type: str
) -> None:
    before = api.snapshot(sale.phone_id)
    headers = {**api.shopper("alice"), "Idempotency-Key": "k", "Content-Type": content_type}
    assert_refused(api.client.post("/purchases", content=content, headers=headers), 422, "VALIDATION_ERROR")
    assert api.snapshot(sale.phone_id) == before


def test_a_client_sent_price_or_limit_is_refused(api: Api, sale: Sale) -> None:
    before = api.snapshot(sale.phone_id)
    for extra in ({"unit_price_cents": 1}, {"per_user_limit": 99}, {"user_id": "bob"}):
        body = {"item_id": sale.phone_id, "quantity": 1, **extra}
        headers = {**api.shopper("alice"), "Idempotency-Key": str(uuid.uuid4())}
        assert_refused(api.client.post("/purchases", json=body, headers=headers), 422, "VALIDATION_ERROR")
    assert api.snapshot(sale.phone_id) == before


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        (None, 400, "IDEMPOTENCY_KEY_REQUIRED"),
        ("", 400, "IDEMPOTENCY_KEY_REQUIRED"),
        ("k" * 256, 422, "VALIDATION_ERROR"),
    ],
)
def test_a_missing_or_oversized_idempotency_key_is_refused(
    api: Api, sale: Sale, key: str | None, status: int, code: str
) -> None:
    before = api.snapshot(sale.phone_id)
    headers = api.shopper("alice") | ({} if key is None else {"Idempotency-Key": key})
    body = {"item_id": sale.phone_id, "quantity": 1}
    assert_refused(api.client.post("/purchases", json=body, headers=headers), status, code)
    assert api.snapshot(sale.phone_id) == before


def test_a_key_of_the_longest_allowed_length_is_accepted(api: Api, sale: Sale) -> None:
    assert api.buy("alice", sale.phone_id, key="k" * 255).status_code == 201
