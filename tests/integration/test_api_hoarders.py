"""Hoarder control (services/hoarders.py) on the in-process and Redis engines: a shopper whose holds
expire unpaid is throttled to fewer units, then blocked, in that campaign only and as configured;
honest shoppers are untouched; in process the counts come back from the stored orders after a restart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.services.hoarders import stored_closings
from tests.conftest import T0
from tests.engines import POSTGRES_REDIS, SQLITE
from tests.factories import open_sale
from tests.integration.api_support import Api, assert_refused, open_api

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)

WINDOW_S = 60


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def two_items(platform: Platform) -> tuple[int, int, int]:
    """A campaign selling two items all day (limit 3 each), payment window a minute: (campaign, a, b)."""
    cat = platform.catalog
    campaign = cat.create_campaign(
        name="Hoard",
        theme="t",
        starts_at=T0 - timedelta(days=1),
        ends_at=T0 + timedelta(days=2),
        payment_window_s=WINDOW_S,
    )
    session = cat.create_session(
        campaign_id=campaign.id, name="day", starts_at=T0, ends_at=T0 + timedelta(days=1)
    )
    items = []
    for sku in ("A", "B"):
        product = cat.create_product(sku=f"H-{sku}", name=sku, list_price_cents=1000, stock=100)
        item = cat.create_item(
            session_id=session.id, product_id=product.id, flash_price_cents=500, quota=100, per_user_limit=3
        )
        items.append(item.id)
    return campaign.id, items[0], items[1]


def let_expire(
    api: Api, platform: Platform, clock: ManualClock, shopper: str, item: int, qty: int = 1
) -> None:
    """The shopper holds `qty` units and never pays; the sweeper writes the expiry down."""
    held = api.client.post(
        "/purchases",
        json={"item_id": item, "quantity": qty},
        headers={**api.shopper(shopper), "Idempotency-Key": f"{shopper}-{clock()}-{item}"},
    )
    assert held.status_code == 201, held.text
    clock.advance(WINDOW_S)
    assert platform.orders.expire_due() >= 1


def test_hoarders_are_throttled_then_blocked_in_their_campaign_only(
    api: Api, platform: Platform, clock: ManualClock
) -> None:
    campaign, a, b = two_items(platform)
    elsewhere = open_sale(platform, quota=10, per_user_limit=3, payment_window_s=900)  # another campaign
    answer = api.client.patch(
        f"/admin/campaigns/{campaign}/admission",
        json={"throttle_after": 1, "throttled_limit": 1, "block_after": 2},
        headers=api.admin,
    )
    assert answer.status_code == 200, answer.text

    let_expire(api, platform, clock, "hoarder", a, qty=2)  # one expiry: throttled to one unit an item
    before = api.snapshot(a, b)
    assert_refused(api.buy("hoarder", b, 2), 409, "HOARDER_THROTTLED")
    assert api.snapshot(a, b) == before
    assert api.buy("hoarder", b, 1).status_code == 201  # one unit is still allowed
    assert_refused(api.buy("hoarder", b, 1), 409, "HOARDER_THROTTLED")  # but not a second
    assert api.buy("honest", a, 3).status_code == 201  # the policy touches only those who let holds go

    clock.advance(WINDOW_S)  # the unit of b expires too: two expiries, blocked
    assert platform.orders.expire_due() >= 1
    for item in (a, b):
        assert_refused(api.buy("hoarder", item, 1), 403, "HOARDER_BLOCKED")
    assert api.buy("hoarder", elsewhere, 3).status_code == 201  # another campaign is not theirs to lose
    assert platform.admission.hoarders.counts.count(campaign, "hoarder") == (2, 0)
    assert stored_expiries_of(platform, campaign) == {"hoarder": 2, "honest": 1}  # honest's lapsed once


def test_without_a_policy_expiries_cost_nothing(api: Api, platform: Platform, clock: ManualClock) -> None:
    _, a, _ = two_items(platform)
    for _ in range(3):
        let_expire(api, platform, clock, "forgetful", a)
    assert api.buy("forgetful", a, 3).status_code == 201


def test_cancel_and_rebuy_is_capped(api: Api, platform: Platform) -> None:
    campaign, a, b = two_items(platform)
    answer = api.client.patch(
        f"/admin/campaigns/{campaign}/admission", json={"cancel_limit": 2}, headers=api.admin
    )
    assert answer.status_code == 200 and answer.json()["hoarder"]["cancel_limit"] == 2
    for _ in range(2):  # hold, cancel, hold again: the unit stays locked without ever being paid
        order = api.buy("cycler", a, 1).json()
        cancelled = api.client.post(f"/orders/{order['id']}/cancel", headers=api.shopper("cycler"))
        assert cancelled.status_code == 200, cancelled.text
        again = api.client.post(f"/orders/{order['id']}/cancel", headers=api.shopper("cycler"))
        assert again.status_code == 200  # cancelling twice counts once
    for item in (a, b):
        assert_refused(api.buy("cycler", item, 1), 403, "HOARDER_BLOCKED")
    assert api.buy("once", a, 1).status_code == 201


@pytest.mark.engines(SQLITE, reason="in process the counts are rebuilt from the store at start-up")
def test_counts_survive_a_restart(api: Api, platform: Platform, clock: ManualClock) -> None:
    campaign, a, _ = two_items(platform)
    let_expire(api, platform, clock, "hoarder", a)
    held = api.buy("canceller", a, 1).json()
    cancelled = api.client.post(f"/orders/{held['id']}/cancel", headers=api.shopper("canceller"))
    assert cancelled.status_code == 200, cancelled.text
    assert platform.admission.hoarders.counts.count(campaign, "hoarder") == (1, 0)
    assert platform.admission.hoarders.counts.count(campaign, "canceller") == (0, 1)
    with platform.deps.read() as r:  # what a restart loads
        stored = {k: n for k, n in stored_closings(r.db).items() if k[0] == campaign}
    assert stored == {(campaign, "hoarder", "EXPIRED"): 1, (campaign, "canceller", "CANCELLED"): 1}


def stored_expiries_of(platform: Platform, campaign: int) -> dict[str, int]:
    with platform.deps.read() as r:
        closings = stored_closings(r.db).items()
        return {user: n for (c, user, status), n in closings if c == campaign and status == "EXPIRED"}


def test_a_throttled_hoarders_hold_returns_to_stock_at_the_shorter_deadline(
    api: Api, platform: Platform, clock: ManualClock
) -> None:
    campaign, a, _ = two_items(platform)
    answer = api.client.patch(
        f"/admin/campaigns/{campaign}/admission",
        json={"throttle_after": 1, "payment_window_s": 10},
        headers=api.admin,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["hoarder"]["payment_window_s"] == 10
    let_expire(api, platform, clock, "hoarder", a)  # one expiry: flagged

    held = api.buy("hoarder", a)
    honest = api.buy("honest", a)
    assert held.status_code == 201 and honest.status_code == 201
    now = clock()
    assert datetime.fromisoformat(held.json()["expires_at"]).timestamp() == now + 10
    assert datetime.fromisoformat(honest.json()["expires_at"]).timestamp() == now + WINDOW_S
    clock.advance(10)  # the hoarder's deadline: the unit is back on sale, the honest hold stays
    level = platform.ledger.stock(a)
    assert (level.available, level.held) == (99, 1) and level.conserved
    assert platform.orders.expire_due() == 1
    order = api.client.get(f"/orders/{held.json()['id']}", headers=api.shopper("hoarder")).json()
    assert order["status"] == "EXPIRED"
    assert datetime.fromisoformat(order["expires_at"]).timestamp() == now + 10  # stored as it was told
    assert platform.admission.hoarders.counts.count(campaign, "hoarder") == (2, 0)
