"""Free-order routes through TestClient: an operator's rule and its winners, a shopper's free order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from tests.conftest import T0, Sale
from tests.integration.api_support import Api, assert_refused, open_api


@pytest.fixture
def api(platform: Platform, clock: ManualClock, sale: Sale) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def test_the_first_payer_sees_a_free_order_and_the_operator_sees_the_winner(api: Api, sale: Sale) -> None:
    made = api.client.post(
        "/admin/free-order-rules",
        json={
            "name": "first phone free",
            "session_id": sale.session_id,
            "item_id": sale.phone_id,
            "ranks": [1],
        },
        headers=api.admin,
    )
    assert made.status_code == 201, made.text
    rule = made.json()
    assert (rule["ranks"], rule["first_n"], rule["paid_count"]) == ([1], 0, 0)
    overlapping = {"name": "all free", "session_id": sale.session_id, "first_n": 3}
    assert_refused(
        api.client.post("/admin/free-order-rules", json=overlapping, headers=api.admin), 409, "CONFLICT"
    )
    nothing = {"name": "nothing", "session_id": sale.later_session_id}
    assert api.client.post("/admin/free-order-rules", json=nothing, headers=api.admin).status_code == 422

    api.clock.set(T0.timestamp() + 1)
    orders = [api.buy(user, sale.phone_id).json() for user in ("ann", "bob")]
    paid = [
        api.client.post(f"/orders/{o['id']}/pay", headers=api.shopper(user)).json()
        for o, user in zip(orders, ("ann", "bob"), strict=True)
    ]
    assert paid[0]["free_order"] == {"slot": 1, "rebate_cents": 399_900, "status": "rebated"}
    assert paid[1]["free_order"] is None
    shown = api.client.get(f"/orders/{orders[0]['id']}", headers=api.shopper("ann")).json()
    assert shown["free_order"]["slot"] == 1
    listed = api.client.get("/orders", headers=api.shopper("bob")).json()
    assert [o["free_order"] for o in listed] == [None]

    winners = api.client.get(f"/admin/free-order-rules/{rule['id']}/winners", headers=api.admin).json()
    assert [(w["slot"], w["order_id"], w["user_id"]) for w in winners] == [(1, orders[0]["id"], "ann")]
    assert api.client.get("/admin/free-order-rules", headers=api.admin).json()[0]["paid_count"] == 2
    assert_refused(api.client.get("/admin/free-order-rules/999/winners", headers=api.admin), 404, "NOT_FOUND")
    audit = api.client.get("/admin/payments/audit", headers=api.admin).json()
    assert audit["clean"] and audit["rebated_cents"] == 399_900
