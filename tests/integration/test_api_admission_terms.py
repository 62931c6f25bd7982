"""Admission terms through the admin API (services/admission_policy.py): stored, validated, shown, and
in force at the very next purchase without a database read per request; campaign rate limits count
per campaign."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.services.admission_policy import AdmissionPolicies
from flashsale.store.tables import ItemAdmissionRow
from tests.conftest import Sale
from tests.engines import POSTGRES_REDIS, SQLITE
from tests.integration.api_support import Api, assert_refused, open_api

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def test_item_terms_are_stored_and_shown(api: Api, sale: Sale) -> None:
    url = f"/admin/items/{sale.earbuds_id}/admission"
    shown = api.client.get(url, headers=api.admin).json()
    assert shown["requires_sale_token"] is False and shown["waiting_room_k"] is None
    assert shown["campaign_id"] == sale.campaign_id
    changed = api.client.patch(
        url, json={"requires_sale_token": True, "waiting_room_k": 3, "buy_window_s": 60}, headers=api.admin
    )
    assert changed.status_code == 200, changed.text
    assert api.client.get(url, headers=api.admin).json() == changed.json()
    assert changed.json()["waiting_room_k"] == 3 and changed.json()["buy_window_s"] == 60
    off = api.client.patch(url, json={"waiting_room_k": 0}, headers=api.admin).json()
    assert off["waiting_room_k"] is None and off["requires_sale_token"] is True  # the rest kept


def test_bad_terms_change_nothing(api: Api, sale: Sale) -> None:
    item_url = f"/admin/items/{sale.earbuds_id}/admission"
    campaign_url = f"/admin/campaigns/{sale.campaign_id}/admission"
    before = (
        api.client.get(item_url, headers=api.admin).json(),
        api.client.get(campaign_url, headers=api.admin).json(),
    )
    for url, body in [
        (item_url, {"waiting_room_k": -1}),
        (item_url, {"buy_window_s": 0}),
        (item_url, {"requires_sale_token": "yes"}),
        (item_url, {"surprise": 1}),
        (campaign_url, {"purchase_per_shopper": "five a second"}),
        (campaign_url, {"throttle_after": 0}),
        (campaign_url, {"throttled_limit": 0}),
        (campaign_url, {"payment_window_s": 30}),  # a shorter window needs throttle_after
        (campaign_url, {"throttle_after": 1, "payment_window_s": 5}),
        (campaign_url, {"holds_per_client": -1}),
        (campaign_url, {"holds_per_device": 1001}),
    ]:
        assert_refused(api.client.patch(url, json=body, headers=api.admin), 422, "VALIDATION_ERROR")
    after = (
        api.client.get(item_url, headers=api.admin).json(),
        api.client.get(campaign_url, headers=api.admin).json(),
    )
    assert after == before
    assert_refused(api.client.get("/admin/items/999999/admission", headers=api.admin), 404, "NOT_FOUND")
    assert_refused(
        api.client.patch("/admin/campaigns/999999/admission", json={}, headers=api.admin), 404, "NOT_FOUND"
    )
    assert_refused(api.client.get(item_url, headers=api.shopper("ann")), 403, "FORBIDDEN")


def test_a_campaign_limit_applies_at_once_per_campaign_and_the_buy_path_reads_no_terms(
    api: Api, platform: Platform, sale: Sale
) -> None:
    answer = api.client.patch(
        f"/admin/campaigns/{sale.campaign_id}/admission",
        json={"purchase_per_shopper": "3/minute"},
        headers=api.admin,
    )
    assert answer.status_code == 200 and answer.json()["purchase_per_shopper"] == "3/minute"
    api.buy("warm-up", sale.phone_id)  # the first request after the edit loads the terms
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(platform.read_engine, "before_cursor_execute", count)
    try:
        answers = [api.buy("ann", sale.earbuds_id) for _ in range(3)]  # limit 2: the third is refused
        refused = api.buy("ann", sale.phone_id)
    finally:
        event.remove(platform.read_engine, "before_cursor_execute", count)
    assert [a.status_code for a in answers] == [201, 201, 409]  # the ledger's LIMIT_EXCEEDED counts too
    assert_refused(refused, 429, "RATE_LIMITED")  # a fourth attempt in the campaign, on another item
    assert not [s for s in statements if "admission" in s]  # the terms came from memory
    assert api.buy("bob", sale.earbuds_id).status_code == 201  # another shopper is not held back


def test_the_periodic_reload_of_the_terms_is_read_off_the_callers_thread(
    platform: Platform, clock: ManualClock, sale: Sale
) -> None:
    # On a serving worker the caller is the event loop: a read of the database there stalled every
    # request of the worker for as long as the read took.
    # The platform's terms age by real time: these, built alike, by the test's clock.
    policies = AdmissionPolicies(platform.deps.reads or platform.deps.sessions, clock)
    assert policies.policy(sale.earbuds_id).waiting_room_k is None  # the first load: read by the caller
    with Session(platform.engine) as db:  # another process's edit: this one is not told
        db.add(ItemAdmissionRow(item_id=sale.earbuds_id, waiting_room_k=3))
        db.commit()
    clock.advance(policies.ttl_s)
    readers: list[threading.Thread] = []

    release = threading.Event()

    def note(*_: object) -> None:
        readers.append(threading.current_thread())
        release.wait(10)  # the read stays under way until the caller has its answer

    event.listen(platform.read_engine, "before_cursor_execute", note)
    try:
        assert policies.policy(sale.earbuds_id).waiting_room_k is None  # the caller goes on at once
        release.set()
        deadline = time.monotonic() + 10
        while policies.policy(sale.earbuds_id).waiting_room_k != 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        event.remove(platform.read_engine, "before_cursor_execute", note)
    assert policies.policy(sale.earbuds_id).waiting_room_k == 3  # the other process's edit, reloaded
    assert readers and threading.current_thread() not in readers
    policies.close()
