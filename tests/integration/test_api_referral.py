"""Referral over HTTP: a code, a binding, refusals with codes, rewards shown once given."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.services.orders import Buy
from tests.conftest import Sale
from tests.integration.api_support import Api, assert_refused, open_api


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def test_an_invitee_binds_a_code_and_both_see_their_reward_after_the_settle_period(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    code = api.client.get("/referral/code", headers=api.shopper("ann")).json()["code"]
    bound = api.client.post("/referral/bind", json={"code": code.lower()}, headers=api.shopper("bob"))
    assert bound.status_code == 200, bound.text
    assert bound.json() == {"inviter_code": code, "status": "BOUND"}
    order = api.platform.orders.buy(Buy("bob", sale.earbuds_id, 1, "k")).order
    api.platform.orders.pay(order.id, "bob")
    assert api.client.post("/admin/referral-settlements", headers=api.admin).json() == {"settled": 1}
    clock.advance(api.platform.referrals.terms.settle_s + 1)
    assert api.client.post("/admin/referral-settlements", headers=api.admin).json() == {"settled": 1}
    assert api.client.post("/admin/referral-settlements", headers=api.admin).json() == {"settled": 0}
    ann = api.client.get("/referral", headers=api.shopper("ann")).json()
    bob = api.client.get("/referral", headers=api.shopper("bob")).json()
    terms = api.platform.referrals.terms
    assert (ann["points"], ann["referral"]) == (terms.inviter_points, None)
    assert (bob["points"], bob["referral"]["status"]) == (terms.invitee_points, "REWARDED")
    assert [r["order_id"] for r in ann["rewards"]] == [order.id]


def test_bad_referral_input_is_refused_with_a_code_and_changes_nothing(api: Api) -> None:
    ann = api.client.get("/referral/code", headers=api.shopper("ann")).json()["code"]
    bob = api.client.get("/referral/code", headers=api.shopper("bob")).json()["code"]

    def bind(user: str, body: object) -> object:
        return api.client.post("/referral/bind", json=body, headers=api.shopper(user))

    assert_refused(bind("ann", {"code": ann}), 422, "SELF_REFERRAL")
    assert_refused(bind("ann", {"code": "ZZZZZZZZ"}), 404, "NOT_FOUND")
    for bad in ({"code": "x"}, {"code": 12345678}, {}, {"code": ann, "more": 1}):
        assert_refused(bind("cat", bad), 422, "VALIDATION_ERROR")
    assert bind("bob", {"code": ann}).status_code == 200
    assert_refused(bind("ann", {"code": bob}), 422, "REFERRAL_LOOP")
    cat = api.client.get("/referral/code", headers=api.shopper("cat")).json()["code"]
    assert_refused(bind("bob", {"code": cat}), 409, "ALREADY_BOUND")
    assert api.client.get("/referral", headers=api.shopper("ann")).json()["referral"] is None
    assert api.client.get("/referral", headers=api.shopper("bob")).json()["referral"]["inviter_code"] == ann
    assert api.client.get("/referral").status_code == 401
