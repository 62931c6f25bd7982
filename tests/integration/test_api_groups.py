"""Group buy over HTTP: an operator offers a deal, shoppers open, join and pay; refusals carry codes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from tests.conftest import Sale
from tests.integration.api_support import Api, assert_refused, open_api

GROUP_PRICE = 29_900


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def offer(api: Api, body: dict[str, Any]) -> Any:
    return api.client.post("/admin/group-deals", json=body, headers=api.admin)


def test_a_group_opens_fills_by_payment_and_refuses_the_next_member(api: Api, sale: Sale) -> None:
    made = offer(
        api, {"item_id": sale.earbuds_id, "size": 2, "price_cents": GROUP_PRICE, "fill_window_s": 300}
    )
    assert made.status_code == 201, made.text
    deal = made.json()
    assert api.client.get("/group-deals", headers=api.shopper("lea")).json() == [deal]

    opened = api.client.post(
        f"/group-deals/{deal['id']}/groups", headers={**api.shopper("lea"), "Idempotency-Key": "g1"}
    )
    assert opened.status_code == 201, opened.text
    body = opened.json()
    group_id = body["group"]["id"]
    assert body["seat"] == 1 and body["order"]["total_cents"] == GROUP_PRICE
    assert body["group"]["seats"] == [{"seat": 1, "mine": True, "order_status": "UNPAID"}]

    joined = api.client.post(f"/groups/{group_id}/join", headers=api.shopper("ben")).json()
    assert joined["seat"] == 2 and joined["group"]["status"] == "OPEN"
    assert_refused(api.client.post(f"/groups/{group_id}/join", headers=api.shopper("cat")), 409, "GROUP_FULL")
    for user in ("lea", "ben"):
        paid = api.client.post(f"/groups/{group_id}/pay", headers=api.shopper(user))
        assert paid.status_code == 200, paid.text
    shown = api.client.get(f"/groups/{group_id}", headers=api.shopper("cat")).json()
    assert shown["status"] == "FILLED" and [s["mine"] for s in shown["seats"]] == [False, False]
    assert_refused(
        api.client.post(f"/groups/{group_id}/join", headers=api.shopper("cat")), 409, "GROUP_CLOSED"
    )
    assert api.client.get(f"/admin/groups/{group_id}", headers=api.admin).json()["members"] == 2
    assert api.client.post("/admin/group-settlements", headers=api.admin).json() == {"settled": 0}


def test_bad_group_input_is_refused_with_a_code_and_changes_nothing(api: Api, sale: Sale) -> None:
    good = {"item_id": sale.earbuds_id, "size": 2, "price_cents": GROUP_PRICE, "fill_window_s": 300}
    for bad in ({"size": 1}, {"price_cents": -1}, {"fill_window_s": 0}, {"size": "3"}, {"extra": 1}):
        assert_refused(offer(api, {**good, **bad}), 422, "VALIDATION_ERROR")
    assert_refused(offer(api, {**good, "item_id": 999_999}), 422, "UNKNOWN_ITEM")
    assert api.client.get("/admin/group-deals", headers=api.admin).json() == []
    assert_refused(api.client.post("/admin/group-deals", json=good), 401, "UNAUTHENTICATED")
    lea = api.shopper("lea")
    assert_refused(api.client.post("/group-deals/7/groups", headers=lea), 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert_refused(
        api.client.post("/group-deals/7/groups", headers={**lea, "Idempotency-Key": "k"}), 404, "NOT_FOUND"
    )
    assert_refused(api.client.post("/groups/gb_nothing/join", headers=lea), 404, "NOT_FOUND")
    assert_refused(api.client.post("/groups/gb_nothing/pay", headers=lea), 404, "NOT_FOUND")
    assert_refused(api.client.get("/groups/gb_nothing", headers=lea), 404, "NOT_FOUND")
    assert api.platform.ledger.stock(sale.earbuds_id).held == 0
