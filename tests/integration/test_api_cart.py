"""The cart and its checkout over HTTP, on every engine: all lines or none, replays, pay, refunds."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.services.cart import Checkout
from tests.conftest import Sale
from tests.engines import POSTGRES_REDIS, SQLITE, drain_orders
from tests.integration.api_support import Api, assert_refused, open_api
from tests.integration.ledger_store_checks import assert_store_matches_ledger

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)  # the two ends (see tests/engines.py)

PHONE, BUDS = 399_900, 49_900  # flash prices of the `sale` fixture's items


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def fill_cart(api: Api, user: str, *lines: tuple[int, int]) -> dict[str, object]:
    answer = {}
    for item_id, qty in lines:
        added = api.client.post(
            "/cart/items", json={"item_id": item_id, "quantity": qty}, headers=api.shopper(user)
        )
        assert added.status_code == 200, added.text
        answer = added.json()
    return answer


def check_out(api: Api, user: str, key: str) -> object:
    return api.client.post("/checkouts", headers={**api.shopper(user), "Idempotency-Key": key})


def test_a_cart_checks_out_into_one_order_per_line_pays_and_refunds_a_line(api: Api, sale: Sale) -> None:
    cart = fill_cart(api, "alice", (sale.phone_id, 1), (sale.earbuds_id, 1), (sale.earbuds_id, 1))
    assert [(ln["item_id"], ln["qty"], ln["price_kind"]) for ln in cart["lines"]] == [
        (sale.phone_id, 1, "flash"),
        (sale.earbuds_id, 2, "flash"),
    ]
    assert (cart["subtotal_cents"], cart["total_cents"]) == (PHONE + 2 * BUDS, PHONE + 2 * BUDS)

    placed = check_out(api, "alice", "k-1")
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["status"] == "PLACED" and body["total_cents"] == PHONE + 2 * BUDS
    orders = [ln["order"] for ln in body["lines"]]
    assert [(o["item_id"], o["qty"], o["status"], o["total_cents"]) for o in orders] == [
        (sale.phone_id, 1, "UNPAID", PHONE),
        (sale.earbuds_id, 2, "UNPAID", 2 * BUDS),
    ]
    assert api.client.get("/cart", headers=api.shopper("alice")).json()["lines"] == []
    assert [api.platform.ledger.stock(i).held for i in (sale.phone_id, sale.earbuds_id)] == [1, 2]

    again = check_out(api, "alice", "k-1")  # the answer got lost: the same key replays
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert [ln["order"]["id"] for ln in again.json()["lines"]] == [o["id"] for o in orders]
    assert [api.platform.ledger.stock(i).held for i in (sale.phone_id, sale.earbuds_id)] == [1, 2]

    paid = api.client.post(f"/checkouts/{body['id']}/pay", headers=api.shopper("alice"))
    assert paid.status_code == 200, paid.text
    assert [ln["order"]["status"] for ln in paid.json()["lines"]] == ["PAID", "PAID"]
    twice = api.client.post(f"/checkouts/{body['id']}/pay", headers=api.shopper("alice"))
    assert [ln["order"]["status"] for ln in twice.json()["lines"]] == ["PAID", "PAID"]

    refunded = api.client.post(f"/admin/orders/{orders[1]['id']}/refund", headers=api.admin)
    assert refunded.status_code == 200, refunded.text
    shown = api.client.get(f"/checkouts/{body['id']}", headers=api.shopper("alice")).json()
    assert [ln["order"]["status"] for ln in shown["lines"]] == ["PAID", "REFUNDED"]
    assert [api.platform.ledger.stock(i).sold for i in (sale.phone_id, sale.earbuds_id)] == [1, 0]
    drain_orders(api.platform)
    assert audit_payments(api.platform.deps.sessions).clean  # charges − refunds == each order's total


def test_a_checkout_with_one_refused_line_holds_nothing_and_replays_the_refusal(api: Api, sale: Sale) -> None:
    fill_cart(api, "bob", (sale.phone_id, 1), (sale.earbuds_id, 2))
    assert check_out(api, "bob", "first").status_code == 201
    fill_cart(api, "bob", (sale.earbuds_id, 1), (sale.phone_id, 1))  # now over both limits
    before = api.snapshot(sale.phone_id, sale.earbuds_id)

    refused = check_out(api, "bob", "second")
    assert_refused(refused, 409, "LIMIT_EXCEEDED")
    assert_refused(check_out(api, "bob", "second"), 409, "LIMIT_EXCEEDED")  # the same key: the same answer

    assert api.snapshot(sale.phone_id, sale.earbuds_id).stock == before.stock
    cart = api.client.get("/cart", headers=api.shopper("bob")).json()
    assert [(ln["item_id"], ln["qty"]) for ln in cart["lines"]] == [(sale.earbuds_id, 1), (sale.phone_id, 1)]


def test_bad_cart_input_is_refused_with_a_code_and_changes_nothing(api: Api, sale: Sale) -> None:
    alice = api.shopper("alice")
    assert_refused(check_out(api, "alice", "k"), 422, "CART_EMPTY")
    assert_refused(
        api.client.post("/cart/items", json={"item_id": 999_999}, headers=alice), 422, "UNKNOWN_ITEM"
    )
    bad = api.client.post("/cart/items", json={"item_id": sale.phone_id, "quantity": 0}, headers=alice)
    assert_refused(bad, 422, "VALIDATION_ERROR")
    assert_refused(api.client.post("/checkouts", headers=alice), 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert api.client.get("/cart", headers=alice).json()["lines"] == []
    fill_cart(api, "alice", (sale.phone_id, 1))
    removed = api.client.delete(f"/cart/items/{sale.phone_id}", headers=alice).json()
    assert removed["lines"] == [] and removed["total_cents"] == 0
    assert_refused(api.client.get("/checkouts/co_nothing", headers=alice), 404, "NOT_FOUND")
    assert api.client.get("/cart", headers=api.shopper("bob")).status_code == 200
    assert api.client.get("/cart").status_code == 401


def test_a_crowd_checking_out_carts_never_oversells_and_holds_all_lines_or_none(
    platform: Platform, sale: Sale
) -> None:
    rng = random.Random(11)
    shoppers = [f"s{n:03d}" for n in range(60)]  # phone: 10 units, limit 1; buds: 20 units, limit 2
    for user in shoppers:
        platform.carts.add(user, sale.phone_id, 1)
        platform.carts.add(user, sale.earbuds_id, rng.choice((1, 2)))

    def go(user: str) -> Checkout | ErrorCode:
        try:
            return platform.carts.checkout(user, "key")[0]
        except FlashSaleError as exc:
            return exc.code

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(go, shoppers + shoppers))  # every shopper double-clicks
    drain_orders(platform)

    placed = {a.id: a for a in answers if isinstance(a, Checkout)}
    assert {a for a in answers if isinstance(a, ErrorCode)} <= {
        ErrorCode.SOLD_OUT,
        ErrorCode.INSUFFICIENT_STOCK,
    }
    held = {sale.phone_id: 0, sale.earbuds_id: 0}
    for checkout in placed.values():
        assert [ln.order is not None and ln.order.status is OrderStatus.UNPAID for ln in checkout.lines] == [
            True,
            True,
        ]
        for line in checkout.lines:
            held[line.item_id] += line.qty
    assert placed, "some checkouts must succeed"
    for item_id, limit in ((sale.phone_id, 1), (sale.earbuds_id, 2)):
        level = assert_store_matches_ledger(platform, item_id, limit=limit)  # conserved, limits held
        assert level.held == held[item_id]  # no unit is held outside a placed checkout


def test_a_regular_item_is_a_list_price_line_held_through_the_same_ledger(api: Api, sale: Sale) -> None:
    product = api.client.post(
        "/admin/products",
        json={"sku": "CASE-X", "name": "Phone case", "list_price_cents": 9_900, "stock": 50},
        headers=api.admin,
    ).json()
    listed = api.client.post(
        "/admin/items",
        json={
            "session_id": sale.session_id,
            "product_id": product["id"],
            "flash_price_cents": 8_900,  # the shop price of the day, not a flash deal
            "quota": 50,
            "per_user_limit": 5,
            "regular": True,
        },
        headers=api.admin,
    )
    assert listed.status_code == 201, listed.text
    case = listed.json()
    assert (case["regular"], case["coupons_allowed"]) == (True, True)

    cart = fill_cart(api, "carol", (sale.phone_id, 1), (case["id"], 3))
    assert [(ln["price_kind"], ln["unit_price_cents"]) for ln in cart["lines"]] == [
        ("flash", PHONE),
        ("list", 8_900),
    ]
    placed = check_out(api, "carol", "k")
    assert placed.status_code == 201, placed.text
    assert placed.json()["total_cents"] == PHONE + 3 * 8_900
    level = api.platform.ledger.stock(case["id"])
    assert (level.available, level.held, level.sold) == (47, 3, 0)


def test_a_member_pays_a_regular_items_member_price_for_their_tier(api: Api, sale: Sale) -> None:
    product = api.client.post(
        "/admin/products",
        json={"sku": "TOWEL", "name": "Towel", "list_price_cents": 12_000, "stock": 50, "category": "home"},
        headers=api.admin,
    ).json()
    assert product["category"] == "home"
    item = {"session_id": sale.session_id, "product_id": product["id"], "flash_price_cents": 10_000}
    flash = api.client.post(
        "/admin/items", json={**item, "quota": 5, "member_prices": {"gold": 8_800}}, headers=api.admin
    )
    assert_refused(flash, 422, ErrorCode.VALIDATION_ERROR)  # a flash price is never lowered further
    listed = api.client.post(
        "/admin/items",
        json={**item, "quota": 50, "per_user_limit": 5, "regular": True, "member_prices": {"gold": 8_800}},
        headers=api.admin,
    )
    assert listed.status_code == 201, listed.text
    towel = listed.json()
    assert towel["member_prices"] == {"gold": 8_800}
    tier = api.client.put("/admin/shoppers/gia/tier", json={"tier": "gold"}, headers=api.admin)
    assert tier.json() == {"user_id": "gia", "tier": "gold"}

    def line(user: str) -> tuple[str, int]:
        cart = api.client.get("/cart", headers=api.shopper(user)).json()
        (only,) = cart["lines"]
        return only["price_kind"], only["unit_price_cents"]

    fill_cart(api, "gia", (towel["id"], 2))
    fill_cart(api, "hal", (towel["id"], 2))
    assert (line("gia"), line("hal")) == (("member", 8_800), ("list", 10_000))
    placed = check_out(api, "gia", "k")
    assert placed.status_code == 201, placed.text
    assert placed.json()["total_cents"] == 2 * 8_800
    api.client.put("/admin/shoppers/gia/tier", json={"tier": None}, headers=api.admin)  # no longer a member
    fill_cart(api, "gia", (towel["id"], 1))
    assert line("gia") == ("list", 10_000)
