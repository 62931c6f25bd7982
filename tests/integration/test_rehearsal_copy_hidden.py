"""A rehearsal's copy (POST /admin/campaigns/ID/rehearsals) is hidden from the shop and sold only to
purchases that carry its pass: to anyone else its sessions and items do not exist."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from tests.conftest import T0, Sale
from tests.engines import POSTGRES_REDIS, SQLITE, drain_orders
from tests.integration.api_support import Api, open_api

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)  # the two ends (see tests/engines.py)


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def copy_now(api: Api, sale: Sale) -> dict[str, Any]:
    """Copy the sale's 10:00 session for a rehearsal, open from now for an hour."""
    window = {"session_id": sale.session_id, "starts_at": T0.isoformat()}
    window["ends_at"] = (T0 + timedelta(hours=1)).isoformat()
    answer = api.client.post(
        f"/admin/campaigns/{sale.campaign_id}/rehearsals", json={"sessions": [window]}, headers=api.admin
    )
    assert answer.status_code == 201, answer.text
    copy: dict[str, Any] = answer.json()
    return copy


def buy(api: Api, user_id: str, item_id: int, rehearsal_pass: str | None = None) -> httpx2.Response:
    body: dict[str, Any] = {"item_id": item_id, "quantity": 1}
    if rehearsal_pass is not None:
        body["rehearsal_pass"] = rehearsal_pass
    headers = {**api.shopper(user_id), "Idempotency-Key": str(uuid.uuid4())}
    return api.client.post("/purchases", json=body, headers=headers)


def test_the_copy_is_not_in_the_shop_window_nor_on_the_board(api: Api, sale: Sale) -> None:
    copy = copy_now(api, sale)
    (copied,) = copy["sessions"]
    copy_session = copied["session"]["id"]

    shown = {s["id"] for s in api.client.get("/sessions").json()}
    assert sale.session_id in shown and copy_session not in shown
    assert api.client.get(f"/sessions/{copy_session}").json()["code"] == "NOT_FOUND"
    on_board = {s["id"] for s in api.client.get("/board/view").json()["sessions"]}
    assert sale.session_id in on_board and copy_session not in on_board
    # The operator still sees it, marked for what it is.
    campaign = api.client.get(f"/admin/campaigns/{copy['campaign_id']}", headers=api.admin).json()
    assert campaign["rehearsal"] is True


def test_only_a_purchase_with_the_copys_pass_buys_it(api: Api, sale: Sale) -> None:
    copy = copy_now(api, sale)
    item_id = copy["sessions"][0]["items"][0]["item"]["id"]
    other_copy = copy_now(api, sale)

    refused = [
        buy(api, "outsider", item_id),
        buy(api, "outsider", item_id, other_copy["rehearsal_pass"]),  # another copy's pass
        buy(api, "outsider", item_id, "forged"),
    ]
    assert [(r.status_code, r.json()["code"]) for r in refused] == [(422, "UNKNOWN_ITEM")] * 3
    assert api.platform.ledger.stock(item_id).held == 0

    assert buy(api, "crowd-1", item_id, copy["rehearsal_pass"]).status_code == 201
    assert buy(api, "outsider", sale.earbuds_id).status_code == 201  # the real sale sells as before
    drain_orders(api.platform)
    assert api.platform.ledger.stock(item_id).held == 1


def test_the_copys_items_cannot_be_put_in_a_cart(api: Api, sale: Sale) -> None:
    item_id = copy_now(api, sale)["sessions"][0]["items"][0]["item"]["id"]

    answer = api.client.post(
        "/cart/items", json={"item_id": item_id, "quantity": 1}, headers=api.shopper("outsider")
    )

    assert (answer.status_code, answer.json()["code"]) == (422, "UNKNOWN_ITEM")
    assert api.client.get("/cart", headers=api.shopper("outsider")).json()["lines"] == []
