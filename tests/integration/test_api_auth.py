"""Who may do what: strict shopper tokens, orders seen only by their shopper, /admin only by the operator."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest

from flashsale.auth import mint_shopper_token, verify_shopper_token
from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from tests.conftest import Sale
from tests.integration.api_support import Api, assert_refused, open_api

SECRET = "a-secret-of-at-least-thirty-two-bytes"
OTHER_SECRET = "another-secret-of-at-least-32-bytes!"


@pytest.fixture
def api(platform: Platform, clock: ManualClock, sale: Sale) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def _claims(clock: ManualClock, **changes: object) -> dict[str, object]:
    now = int(clock())
    return {"sub": "alice", "iat": now, "exp": now + 3600, "role": "shopper", **changes}


def _forged_tokens(secret: str, clock: ManualClock) -> dict[str, str]:
    """Tokens that must all be refused; those signed with the platform's own secret fail on their claims."""
    good = mint_shopper_token(secret, "alice", 3600, clock())
    header, payload, signature = good.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    no_exp = _claims(clock)
    del no_exp["exp"]
    return {
        "garbage": "not-a-jwt",
        "tampered": f"{header}.{flipped}.{signature}",
        "alg-none": jwt.encode(_claims(clock), None, algorithm="none"),
        "other-key": jwt.encode(_claims(clock), OTHER_SECRET, algorithm="HS256"),
        "hs512": jwt.encode(_claims(clock), secret + secret, algorithm="HS512"),
        "no-exp": jwt.encode(no_exp, secret, algorithm="HS256"),
        "no-sub": jwt.encode(
            {k: v for k, v in _claims(clock).items() if k != "sub"}, secret, algorithm="HS256"
        ),
        "not-a-shopper": jwt.encode(_claims(clock, role="admin"), secret, algorithm="HS256"),
        "sub-too-long": jwt.encode(_claims(clock, sub="x" * 65), secret, algorithm="HS256"),
        "exp-not-a-number": jwt.encode(_claims(clock, exp="tomorrow"), secret, algorithm="HS256"),
    }


FORGED = [
    "garbage",
    "tampered",
    "alg-none",
    "other-key",
    "hs512",
    "no-exp",
    "no-sub",
    "not-a-shopper",
    "sub-too-long",
    "exp-not-a-number",
]


@pytest.mark.parametrize("kind", FORGED)
def test_a_forged_or_malformed_token_is_unauthenticated_and_buys_nothing(
    api: Api, sale: Sale, clock: ManualClock, kind: str
) -> None:
    secret = api.platform.settings.jwt_secret
    assert secret is not None
    token = _forged_tokens(secret, clock)[kind]
    before = api.snapshot(sale.phone_id)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "k"}
    refused = api.client.post("/purchases", json={"item_id": sale.phone_id, "quantity": 1}, headers=headers)
    assert_refused(refused, 401, "UNAUTHENTICATED")
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert api.snapshot(sale.phone_id) == before


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Basic YWxpY2U6cHc=", "admin"])
def test_a_missing_or_wrong_kind_of_credential_is_unauthenticated(
    api: Api, sale: Sale, authorization: str | None
) -> None:
    if authorization == "admin":  # the operator's token is not a shopper token
        authorization = api.admin["Authorization"]
    before = api.snapshot(sale.phone_id)
    headers = {"Idempotency-Key": "k"} | ({} if authorization is None else {"Authorization": authorization})
    refused = api.client.post("/purchases", json={"item_id": sale.phone_id, "quantity": 1}, headers=headers)
    assert_refused(refused, 401, "UNAUTHENTICATED")
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert_refused(api.client.get("/orders", headers=headers), 401, "UNAUTHENTICATED")
    assert api.snapshot(sale.phone_id) == before


def test_a_token_stops_working_when_it_expires_on_the_platform_clock(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    token = api.token("alice", ttl_s=60)
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/orders", headers=headers).status_code == 200
    clock.advance(60)
    assert_refused(api.client.get("/orders", headers=headers), 401, "UNAUTHENTICATED")


def test_a_shopper_cannot_see_or_touch_another_shoppers_order(api: Api, sale: Sale) -> None:
    order_id = api.buy("alice", sale.phone_id).json()["id"]
    before = api.snapshot(sale.phone_id)
    bob = api.shopper("bob")
    assert_refused(api.client.get(f"/orders/{order_id}", headers=bob), 404, "ORDER_NOT_FOUND")
    assert_refused(api.client.post(f"/orders/{order_id}/pay", headers=bob), 404, "ORDER_NOT_FOUND")
    assert_refused(api.client.post(f"/orders/{order_id}/cancel", headers=bob), 404, "ORDER_NOT_FOUND")
    assert api.client.get("/orders", headers=bob).json() == []
    assert api.snapshot(sale.phone_id) == before
    assert api.client.get(f"/orders/{order_id}", headers=api.shopper("alice")).json()["status"] == "UNPAID"


ADMIN_ROUTES = [
    ("GET", "/admin/campaigns", None),
    ("POST", "/admin/products", {"sku": "X", "name": "X", "list_price_cents": 1, "stock": 1}),
    ("PATCH", "/admin/items/1", {"quota": 0}),
    ("POST", "/admin/orders/some-order/refund", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_a_shopper_token_on_admin_routes_is_forbidden(
    api: Api, sale: Sale, method: str, path: str, body: object
) -> None:
    before = (api.snapshot(sale.phone_id), api.platform.catalog_views.list_products())
    refused = api.client.request(method, path, json=body, headers=api.shopper("alice"))
    assert_refused(refused, 403, "FORBIDDEN")
    assert (api.snapshot(sale.phone_id), api.platform.catalog_views.list_products()) == before


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-admin-token", "Bearer test-admin-tokeN", "Bearer é".encode()]
)
def test_admin_routes_without_the_admin_token_are_unauthenticated(
    api: Api, sale: Sale, method: str, path: str, body: object, authorization: str | bytes | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    before = (api.snapshot(sale.phone_id), api.platform.catalog_views.list_products())
    refused = api.client.request(method, path, json=body, headers=headers)
    assert_refused(refused, 401, "UNAUTHENTICATED")
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert (api.snapshot(sale.phone_id), api.platform.catalog_views.list_products()) == before


def test_the_admin_token_opens_admin_routes(api: Api) -> None:
    assert api.client.get("/admin/campaigns", headers=api.admin).status_code == 200


def test_a_minted_token_names_its_shopper_until_it_expires() -> None:
    token = mint_shopper_token(SECRET, "alice", 60, now=1_000.0)
    assert verify_shopper_token(SECRET, token, now=1_059.0) == "alice"
    with pytest.raises(FlashSaleError) as refused:
        verify_shopper_token(SECRET, token, now=1_060.0)
    assert refused.value.code is ErrorCode.UNAUTHENTICATED


def test_verification_defaults_to_the_wall_clock() -> None:
    fresh = mint_shopper_token(SECRET, "alice", 60, now=time.time())
    stale = mint_shopper_token(SECRET, "alice", 60, now=time.time() - 120)
    assert verify_shopper_token(SECRET, fresh) == "alice"
    with pytest.raises(FlashSaleError):
        verify_shopper_token(SECRET, stale)


@pytest.mark.parametrize(("user_id", "ttl_s"), [("", 60), ("x" * 65, 60), ("alice", 0)])
def test_minting_refuses_an_unusable_user_id_or_lifetime(user_id: str, ttl_s: float) -> None:
    with pytest.raises(ValueError):
        mint_shopper_token(SECRET, user_id, ttl_s, now=1_000.0)
