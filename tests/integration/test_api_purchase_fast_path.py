"""POST /purchases through `PurchaseFastPath` answers exactly as the route does, and plain
purchases never reach the route (api/shop/purchase_fast_path.py)."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from flashsale.api.edge import Edge
from flashsale.api.main import create_app
from flashsale.api.shop.purchase_fast_path import PurchaseFastPath
from flashsale.auth import mint_shopper_token
from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from tests.conftest import Sale

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py

HEADERS_COMPARED = ("content-type", "idempotent-replayed", "www-authenticate", "retry-after")


def _json(item: str, qty: str) -> bytes:
    return f'{{"item_id": {item}, "quantity": {qty}}}'.encode()


class RouteCalls:
    """Wraps the app behind the fast path and counts the requests that went past it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.count += 1
        await self.app(scope, receive, send)


def fast_path_of(app: Any) -> PurchaseFastPath:
    node = app.middleware_stack
    while not isinstance(node, Edge):
        node = node.app
    fast_path: PurchaseFastPath = node.purchases.app  # behind the body cap
    return fast_path


def send(client: TestClient, token: str, case: str, sale: Sale, key: str) -> httpx2.Response:
    auth = {"Authorization": f"Bearer {token}"}
    json = {"Content-Type": "application/json"}
    item, k = str(sale.earbuds_id), "Idempotency-Key"
    one = _json(item, "1")
    cases: dict[str, tuple[dict[str, str], bytes]] = {
        "fresh": ({**auth, **json, k: key}, one),
        "over the limit": ({**auth, **json, k: key + "-more"}, _json(item, "2")),
        "bad quantity": ({**auth, **json, k: key + "-zero"}, _json(item, "0")),
        "unknown item": ({**auth, **json, k: key + "-x"}, _json("999999", "1")),
        "bad token": ({"Authorization": "Bearer nope", **json, k: key + "-t"}, one),
        "no token": ({**json, k: key + "-n"}, one),
        "basic auth": ({"Authorization": "Basic eDp5", **json, k: key}, one),
        "no key": ({**auth, **json}, one),
        "empty key": ({**auth, **json, k: ""}, one),
        "long key": ({**auth, **json, k: "k" * 256}, one),
        "not json": ({**auth, **json, k: key + "-j"}, b"{item_id: 1"),
        "string quantity": ({**auth, **json, k: key + "-s"}, _json(item, '"1"')),
        "extra field": ({**auth, **json, k: key + "-e"}, b'{"item_id": 1, "quantity": 1, "x": 1}'),
        "text body": ({**auth, "Content-Type": "text/plain", k: key + "-p"}, one),
    }
    headers, body = cases[case]
    return client.post("/purchases", content=body, headers=headers)


CASES = [
    "fresh",
    "fresh",  # the replay: 200 with Idempotent-Replayed
    "over the limit",
    "bad quantity",
    "unknown item",
    "bad token",
    "no token",
    "basic auth",
    "no key",
    "empty key",
    "long key",
    "not json",
    "string quantity",
    "extra field",
    "text body",
]


def test_every_answer_is_the_routes_and_plain_purchases_skip_it(
    platform: Platform, clock: ManualClock, sale: Sale
) -> None:
    secret = platform.settings.jwt_secret
    assert secret is not None
    fast_app = create_app(platform, start_jobs=False)
    slow_app = create_app(platform, start_jobs=False, fast_paths=False)
    with TestClient(fast_app) as fast, TestClient(slow_app) as slow:
        fast.get("/healthz")  # builds the middleware stack
        calls = RouteCalls(fast_path_of(fast_app).app)
        fast_path_of(fast_app).app = calls
        for n, case in enumerate(CASES):
            # Each app buys for its own shopper, so both see the same state of their own orders.
            answers = [
                send(client, mint_shopper_token(secret, f"{who}-ann", 3600, clock()), case, sale, f"{who}-k")
                for who, client in (("fast", fast), ("slow", slow))
            ]
            got, want = answers
            assert got.status_code == want.status_code, (n, case, got.text, want.text)
            for header in HEADERS_COMPARED:
                assert got.headers.get(header) == want.headers.get(header), (case, header)
            got_body, want_body = got.json(), want.json()
            assert set(got_body) == set(want_body), case
            if "code" in want_body:
                assert got_body["code"] == want_body["code"], case
            else:  # an order: the same but for its id, its shopper and their times
                for field in ("item_id", "qty", "unit_price_cents", "total_cents", "status"):
                    assert got_body[field] == want_body[field], (case, field)
    plain = {"fresh", "over the limit", "bad quantity", "unknown item", "bad token"}
    assert calls.count == sum(1 for case in CASES if case not in plain)  # the rest went on to the route
