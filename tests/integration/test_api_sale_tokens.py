"""Sale tokens, the hidden path (services/sale_tokens.py), over HTTP on the in-process and Redis engines:
an item that requires one is bought with exactly one purchase per token, on both purchase edges (the
fast path and the route); a token cannot be replayed, forged, stretched past its expiry, or used for
another item or by another shopper; single-use holds under a crowd of threads and across workers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from flashsale.api.main import create_app
from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.errors import FlashSaleError
from flashsale.services.admission import shared_redis
from flashsale.services.sale_tokens import MemorySpentTokens, RedisSpentTokens, SaleTokens, sale_token_key
from tests.conftest import Sale
from tests.engines import POSTGRES_REDIS, SQLITE
from tests.factories import release_together
from tests.integration.api_support import Api, assert_refused, open_api

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)

EDGES = ["fast path", "route"]


@dataclass
class Shop:
    """The app with the earbuds on the hidden path, and the same app without the fast path ("route")."""

    api: Api
    route: TestClient

    def buy(
        self, shopper: str, item_id: int, token: str | None, *, edge: str, key: str | None = None
    ) -> httpx2.Response:
        """POST /purchases through the fast path, or through the route with edge "route"."""
        body: dict[str, Any] = {"item_id": item_id, "quantity": 1}
        if token is not None:
            body["sale_token"] = token
        headers = {**self.api.shopper(shopper), "Idempotency-Key": key or str(uuid.uuid4())}
        client = self.route if edge == "route" else self.api.client
        return client.post("/purchases", json=body, headers=headers)

    def token(self, shopper: str, item_id: int) -> str:
        answer = self.api.client.post(f"/items/{item_id}/sale-token", headers=self.api.shopper(shopper))
        assert answer.status_code == 201, answer.text
        token: str = answer.json()["token"]
        return token


@pytest.fixture
def shop(platform: Platform, clock: ManualClock, sale: Sale) -> Iterator[Shop]:
    with open_api(platform, clock) as api:
        answer = api.client.patch(
            f"/admin/items/{sale.earbuds_id}/admission", json={"requires_sale_token": True}, headers=api.admin
        )
        assert answer.status_code == 200, answer.text
        app = create_app(platform, start_jobs=False, fast_paths=False)
        with TestClient(app) as route:
            yield Shop(api, route)


@pytest.mark.parametrize("edge", EDGES)
def test_an_item_that_requires_a_token_is_refused_without_one(shop: Shop, sale: Sale, edge: str) -> None:
    before = shop.api.snapshot(sale.earbuds_id)
    assert_refused(shop.buy("ann", sale.earbuds_id, None, edge=edge), 403, "SALE_TOKEN_REQUIRED")
    assert shop.api.snapshot(sale.earbuds_id) == before
    # an item without the requirement sells as before
    assert shop.buy("ann", sale.phone_id, None, edge=edge).status_code == 201


@pytest.mark.parametrize("edge", EDGES)
def test_a_token_buys_once_and_a_retry_of_that_purchase_replays_it(shop: Shop, sale: Sale, edge: str) -> None:
    token = shop.token("ann", sale.earbuds_id)
    first = shop.buy("ann", sale.earbuds_id, token, edge=edge, key="k1")
    assert first.status_code == 201, first.text
    retry = shop.buy("ann", sale.earbuds_id, token, edge=edge, key="k1")
    assert retry.status_code == 200 and retry.json()["id"] == first.json()["id"]
    before = shop.api.snapshot(sale.earbuds_id)
    for other_edge in EDGES:  # the same token on a new purchase, through either edge
        assert_refused(shop.buy("ann", sale.earbuds_id, token, edge=other_edge), 403, "SALE_TOKEN_INVALID")
    assert shop.api.snapshot(sale.earbuds_id) == before
    assert shop.buy("ann", sale.earbuds_id, shop.token("ann", sale.earbuds_id), edge=edge).status_code == 201


@pytest.mark.parametrize("edge", EDGES)
def test_a_token_is_refused_for_another_shopper_another_item_forged_or_expired(
    shop: Shop, clock: ManualClock, sale: Sale, platform: Platform, edge: str
) -> None:
    ann = shop.token("ann", sale.earbuds_id)
    item, expires, nonce, signature = ann.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    forgeries = [
        ann.replace(f"{item}.", f"{sale.phone_id}.", 1),  # moved to another item
        f"{item}.{int(expires) + 3600}.{nonce}.{signature}",  # stretched
        f"{item}.{expires}.{nonce}x.{signature}",  # another nonce
        f"{item}.{expires}.{nonce}.{flipped}",  # another signature
        "not-a-token",
        "1.2.3.4",
        "¹.2.3.4",  # digits Python reads but a token never has
        "x" * 200,
    ]
    # a token signed with another key (another deployment's) is a forgery too
    other_key = SaleTokens(b"another key", MemorySpentTokens(clock))
    forgeries.append(other_key.issue("ann", sale.earbuds_id, clock())[0])
    before = shop.api.snapshot(sale.earbuds_id)
    assert_refused(shop.buy("bob", sale.earbuds_id, ann, edge=edge), 403, "SALE_TOKEN_INVALID")
    for forged in forgeries:
        assert_refused(shop.buy("ann", sale.earbuds_id, forged, edge=edge), 403, "SALE_TOKEN_INVALID")
    # requested for the phone, used for the earbuds
    assert_refused(
        shop.buy("ann", sale.earbuds_id, shop.token("ann", sale.phone_id), edge=edge),
        403,
        "SALE_TOKEN_INVALID",
    )
    clock.advance(platform.settings.sale_token_ttl_s)
    assert_refused(shop.buy("ann", sale.earbuds_id, ann, edge=edge), 403, "SALE_TOKEN_INVALID")
    assert shop.api.snapshot(sale.earbuds_id) == before


def test_tokens_are_issued_only_while_the_session_is_open(shop: Shop, clock: ManualClock, sale: Sale) -> None:
    clock.advance(-1)  # just before the open
    answer = shop.api.client.post(f"/items/{sale.earbuds_id}/sale-token", headers=shop.api.shopper("ann"))
    assert_refused(answer, 409, "SESSION_NOT_OPEN")
    assert_refused(
        shop.api.client.post("/items/999999/sale-token", headers=shop.api.shopper("ann")), 404, "NOT_FOUND"
    )
    assert_refused(shop.api.client.post(f"/items/{sale.earbuds_id}/sale-token"), 401, "UNAUTHENTICATED")


def test_one_token_raced_by_many_requests_buys_once(shop: Shop, platform: Platform, sale: Sale) -> None:
    """Fifty spends of one token under fifty request ids, released together: one passes, 49 are refused.

    On the Redis engine every other one spends through a Redis client of its own, as another worker
    would: single-use holds across workers, not only within one process.
    """
    token = shop.token("ann", sale.earbuds_id)
    now = shop.api.clock()
    here = platform.admission.tokens
    shared = shared_redis(platform.settings.ledger_url())
    settings = platform.settings
    assert settings.jwt_secret is not None
    elsewhere = here
    if shared is not None:  # another worker: the same key, its own client of the same Redis
        elsewhere = SaleTokens(
            sale_token_key(settings.admission_secret, settings.jwt_secret), RedisSpentTokens(*shared)
        )

    def attempt(n: int) -> str:
        tokens = elsewhere if n % 2 else here
        try:
            tokens.spend(token, shopper="ann", item_id=sale.earbuds_id, request_id=f"r{n}", now=now)
        except FlashSaleError as exc:
            return exc.code.value
        return "spent"

    try:
        outcomes = release_together([partial(attempt, n) for n in range(50)])
    finally:
        if shared is not None:
            shared[0].close()
    assert outcomes.count("spent") == 1, outcomes
    assert outcomes.count("SALE_TOKEN_INVALID") == 49
