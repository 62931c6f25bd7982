"""Buying over HTTP on the Redis ledger, where concurrent purchases are decided in batches (write-behind)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flashsale.bootstrap import Platform, build, order_writer_for
from flashsale.clock import ManualClock
from flashsale.config import Settings
from tests.conftest import T0, Sale, make_sale
from tests.integration.api_support import Api, open_api
from tests.integration.redis_support import redis_platform
from tests.integration.servers import OwnRedis

pytestmark = pytest.mark.redis


@pytest.fixture
def platform(settings: Settings, clock: ManualClock) -> Iterator[Platform]:
    """The shared `platform` fixture, built with the Redis ledger under a fresh key prefix."""
    with redis_platform(settings, clock) as plat:
        yield plat


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def all_at_once(count: int, request: Callable[[int], Any]) -> list[Any]:
    """Send `count` requests from as many threads released together; return the responses in order."""
    barrier = threading.Barrier(count)
    responses: list[Any] = [None] * count

    def send(n: int) -> None:
        barrier.wait()
        responses[n] = request(n)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return responses


def test_a_crowd_gets_exactly_the_quota_and_each_grant_becomes_one_order(api: Api, sale: Sale) -> None:
    responses = all_at_once(25, lambda n: api.buy(f"u{n}", sale.phone_id))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10 + [409] * 15
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"SOLD_OUT"}
    level = api.platform.ledger.stock(sale.phone_id)
    assert (level.available, level.held) == (0, 10) and level.conserved

    order_writer_for(api.platform).drain()
    assert api.snapshot().orders == 10
    for n, bought in enumerate(responses):
        if bought.status_code == 201:
            shown = api.client.get(f"/orders/{bought.json()['id']}", headers=api.shopper(f"u{n}"))
            assert (shown.status_code, shown.json()["status"]) == (200, "UNPAID")


def test_one_key_sent_twenty_times_at_once_holds_once_and_answers_one_order(api: Api, sale: Sale) -> None:
    headers = {**api.shopper("alice"), "Idempotency-Key": "double-click"}
    body = {"item_id": sale.phone_id, "quantity": 1}
    responses = all_at_once(20, lambda _: api.client.post("/purchases", json=body, headers=headers))
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    fresh = [r for r in responses if "Idempotent-Replayed" not in r.headers]
    assert [r.status_code for r in fresh] == [201]
    assert api.platform.ledger.stock(sale.phone_id).held == 1
    order_writer_for(api.platform).drain()
    assert api.snapshot().orders == 1


def test_a_fresh_grant_is_201_and_a_replay_of_the_live_hold_is_200_and_holds_nothing_more(
    api: Api, sale: Sale
) -> None:
    first = api.buy("alice", sale.earbuds_id, 2, key="k-1")
    again = api.buy("alice", sale.earbuds_id, 2, key="k-1")

    assert (first.status_code, again.status_code) == (201, 200)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and first.json()["status"] == "UNPAID"
    assert api.platform.ledger.stock(sale.earbuds_id).held == 2


@pytest.mark.parametrize("written", [False, True], ids=["row-not-written-yet", "row-written"])
def test_a_replay_after_the_order_expired_is_200_with_the_expired_order_not_a_fresh_201(
    api: Api, sale: Sale, clock: ManualClock, written: bool
) -> None:
    first = api.buy("alice", sale.phone_id, key="k-1")
    assert (first.status_code, first.json()["status"]) == (201, "UNPAID")
    if written:  # the order writer moved the purchase into the database as an UNPAID row
        order_writer_for(api.platform).drain()
    clock.advance(15 * 60)  # the payment window is over; no sweeper ran to write the expiry down

    again = api.buy("alice", sale.phone_id, key="k-1")

    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (again.json()["id"], again.json()["status"]) == (first.json()["id"], "EXPIRED")
    level = api.platform.ledger.stock(sale.phone_id)
    assert (level.available, level.held) == (10, 0)  # the replay held nothing


def test_a_purchase_while_redis_is_down_is_a_503_to_retry_not_a_500(
    tmp_path: Path, settings: Settings, clock: ManualClock
) -> None:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        plat = build(
            settings.model_copy(update={"backend": "redis", "redis_url": f"{server.url}?prefix=t"}),
            clock=clock,
        )
        try:
            with open_api(plat, clock, raise_server_exceptions=False) as api:
                sale = make_sale(plat)
                clock.set(T0.timestamp() + 1)
                server.kill()
                down = api.client.post(
                    "/purchases",
                    json={"item_id": sale.phone_id, "quantity": 1},
                    headers={**api.shopper("alice"), "Idempotency-Key": "k1"},
                )
                assert down.status_code == 503 and down.headers["Retry-After"] == "1"
                assert down.json()["code"] == "SERVICE_UNAVAILABLE"
                server.start()
                again = api.client.post(
                    "/purchases",
                    json={"item_id": sale.phone_id, "quantity": 1},
                    headers={**api.shopper("alice"), "Idempotency-Key": "k1"},
                )
                assert again.status_code == 201
        finally:
            plat.close()
    finally:
        server.stop()
