"""Operator input is strict and nonsense is refused: each refusal is a 422 that writes nothing.

Also here: shopper tokens issued in the future are refused (401) on the platform's clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from flashsale.auth import IAT_LEEWAY_S, mint_shopper_token
from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.store.tables import CampaignRow, ItemRow, PhaseRow, ProductRow, SessionRow
from tests.conftest import T0, Sale
from tests.integration.api_support import Api, assert_refused, open_api

Rows = dict[str, list[tuple[Any, ...]]]


@pytest.fixture
def api(platform: Platform, clock: ManualClock, sale: Sale) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def catalog_rows(platform: Platform) -> Rows:
    """Every stored campaign, phase, session, product and item, column by column."""
    with platform.deps.uow() as uow:
        return {
            table.__tablename__: sorted(tuple(row) for row in uow.db.execute(select(table.__table__)))
            for table in (CampaignRow, PhaseRow, SessionRow, ProductRow, ItemRow)
        }


def refused_and_unchanged(api: Api, sale: Sale, method: str, path: str, body: Any) -> dict[str, Any]:
    """Send an operator request that must be refused with 422; check nothing changed; return the body."""
    before = (catalog_rows(api.platform), api.snapshot(sale.phone_id, sale.earbuds_id))
    response = api.client.request(method, path, json=body, headers=api.admin)
    assert_refused(response, 422, "VALIDATION_ERROR")
    assert (catalog_rows(api.platform), api.snapshot(sale.phone_id, sale.earbuds_id)) == before
    result: dict[str, Any] = response.json()
    return result


def ok(api: Api, method: str, path: str, body: Any, status: int = 200) -> dict[str, Any]:
    response = api.client.request(method, path, json=body, headers=api.admin)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def _product_id(api: Api, sku: str) -> int:
    return next(p.id for p in api.platform.catalog_views.list_products() if p.sku == sku)


def _routes(api: Api, sale: Sale) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """A valid body for every admin write, by name; each test spoils one field of one of them."""
    phone = _product_id(api, "PHONE-X")
    return {
        "campaign": (
            "POST",
            "/admin/campaigns",
            {"name": "C", "starts_at": _at(-60), "ends_at": _at(24 * 60), "payment_window_s": 600},
        ),
        "campaign-patch": ("PATCH", f"/admin/campaigns/{sale.campaign_id}", {"payment_window_s": 600}),
        "session": (
            "POST",
            f"/admin/campaigns/{sale.campaign_id}/sessions",
            {"name": "s", "starts_at": _at(60), "ends_at": _at(70)},
        ),
        "session-patch": ("PATCH", f"/admin/sessions/{sale.later_session_id}", {"name": "later"}),
        "daily": (
            "POST",
            f"/admin/campaigns/{sale.campaign_id}/daily-sessions",
            {"slots": [{"start": "12:00", "end": "12:10", "tz": "UTC"}]},
        ),
        "product": (
            "POST",
            "/admin/products",
            {"sku": "CAM", "name": "Cam", "list_price_cents": 100, "stock": 5},
        ),
        "product-patch": ("PATCH", f"/admin/products/{phone}", {"stock": 999}),
        "item": (
            "POST",
            "/admin/items",
            {"session_id": sale.later_session_id, "product_id": phone, "flash_price_cents": 1000, "quota": 1},
        ),
        "item-patch": ("PATCH", f"/admin/items/{sale.phone_id}", {"quota": 9}),
    }


# -- strict types -------------------------------------------------------------------------------

SPOILED = [
    ("item", "flash_price_cents", False),  # the attack: a price of 0
    ("item", "flash_price_cents", "7"),
    ("item", "flash_price_cents", 7.0),
    ("item", "quota", True),
    ("item", "per_user_limit", "2"),
    ("item", "session_id", "2"),
    ("item", "coupons_allowed", 1),
    ("item", "coupons_allowed", "true"),
    ("item", "allow_above_list_price", "yes"),
    ("item-patch", "flash_price_cents", False),
    ("item-patch", "flash_price_cents", "7"),
    ("item-patch", "quota", "3"),
    ("item-patch", "coupons_allowed", 0),
    ("product", "list_price_cents", "100"),
    ("product", "stock", True),
    ("product-patch", "stock", "7"),
    ("product-patch", "list_price_cents", False),
    ("campaign", "payment_window_s", "600"),
    ("campaign", "payment_window_s", True),
    ("campaign", "starts_at", 1_700_000_000),
    ("campaign", "starts_at", "1700000000"),
    ("campaign-patch", "payment_window_s", "900"),
    ("campaign-patch", "ends_at", 1_900_000_000.5),
    ("session", "starts_at", 1_700_000_000),
    ("session-patch", "ends_at", "1900000000"),
    ("daily", "slots", [{"start": 43_200, "end": "12:10"}]),
    ("daily", "slots", [{"start": "12:00", "end": "12:10", "tz": 8}]),
]


@pytest.mark.parametrize(("route", "field", "value"), SPOILED, ids=str)
def test_a_coerced_value_in_an_operator_body_is_refused_and_nothing_is_written(
    api: Api, sale: Sale, route: str, field: str, value: Any
) -> None:
    method, path, body = _routes(api, sale)[route]
    refused = refused_and_unchanged(api, sale, method, path, {**body, field: value})
    assert any(field in detail["loc"] for detail in refused["details"]), refused


@pytest.mark.parametrize(
    "route",
    [
        "campaign",
        "campaign-patch",
        "session",
        "session-patch",
        "daily",
        "product",
        "product-patch",
        "item",
        "item-patch",
    ],
)
def test_the_unspoiled_bodies_are_accepted(api: Api, sale: Sale, route: str) -> None:
    method, path, body = _routes(api, sale)[route]
    ok(api, method, path, body, 201 if method == "POST" else 200)


INT_FIELDS = [
    ("item", "flash_price_cents"),
    ("item", "quota"),
    ("item", "per_user_limit"),
    ("item-patch", "flash_price_cents"),
    ("item-patch", "per_user_limit"),
    ("product", "stock"),
    ("product-patch", "list_price_cents"),
    ("campaign", "payment_window_s"),
    ("campaign-patch", "payment_window_s"),
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_bool_or_text_for_an_integer_is_refused_over_http(
    api: Api, sale: Sale, data: st.DataObject
) -> None:
    route, field = data.draw(st.sampled_from(INT_FIELDS), "field")
    value = data.draw(st.booleans() | st.integers(1, 10**6).map(str) | st.text(max_size=5), "value")
    method, path, body = _routes(api, sale)[route]
    refused_and_unchanged(api, sale, method, path, {**body, field: value})


def test_moments_and_slot_times_are_still_given_as_iso_text(api: Api, sale: Sale) -> None:
    campaign = ok(
        api,
        "POST",
        "/admin/campaigns",
        {"name": "C", "starts_at": "2026-11-11T08:00:00+08:00", "ends_at": "2026-11-14T00:00:00Z"},
        201,
    )
    assert campaign["starts_at"] == "2026-11-11T00:00:00Z"
    moved = ok(api, "PATCH", f"/admin/sessions/{sale.later_session_id}", {"starts_at": _at(280)})
    assert moved["starts_at"] == "2026-11-11T14:40:00Z"
    daily = ok(
        api,
        "POST",
        f"/admin/campaigns/{campaign['id']}/daily-sessions",
        {"slots": [{"start": "20:00:00", "end": "20:10", "tz": "Asia/Shanghai"}]},
        201,
    )
    assert [s["starts_at"] for s in daily] == [
        "2026-11-11T12:00:00Z",
        "2026-11-12T12:00:00Z",
        "2026-11-13T12:00:00Z",
    ]


# -- daily slots and time zones -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("slots", "says"),
    [
        ([{"start": "10:00", "end": "10:00"}], "empty"),
        ([{"start": "10:00", "end": "10:10"}, {"start": "10:00", "end": "10:10", "name": "again"}], "twice"),
        ([{"start": "10:00", "end": "10:30"}, {"start": "10:15", "end": "10:45"}], "overlap"),
        (
            [{"start": "02:00", "end": "02:10"}, {"start": "10:00", "end": "10:10", "tz": "Asia/Shanghai"}],
            "overlap",
        ),
    ],
    ids=["zero-length", "duplicate", "overlapping", "same-instant-two-zones"],
)
def test_an_empty_repeated_or_overlapping_slot_refuses_the_whole_request(
    api: Api, sale: Sale, slots: list[dict[str, str]], says: str
) -> None:
    good = {"start": "20:00", "end": "20:10"}
    path = f"/admin/campaigns/{sale.campaign_id}/daily-sessions"
    refused = refused_and_unchanged(api, sale, "POST", path, {"slots": [good, *slots]})
    assert says in refused["message"]


@pytest.mark.parametrize(
    "tz",
    [
        "localtime",
        "posixrules",
        "Factory",
        "/usr/share/zoneinfo/UTC",
        "posix/Asia/Shanghai",
        "right/UTC",
        "asia/shanghai",
        " UTC",
        "CST+8",
        "+08:00",
    ],
)
def test_a_zone_that_is_not_an_iana_name_is_refused(api: Api, sale: Sale, tz: str) -> None:
    path = f"/admin/campaigns/{sale.campaign_id}/daily-sessions"
    refused = refused_and_unchanged(
        api, sale, "POST", path, {"slots": [{"start": "20:00", "end": "20:10", "tz": tz}]}
    )
    assert "time zone" in refused["details"][0]["msg"]


# -- payment window -----------------------------------------------------------------------------


@pytest.mark.parametrize("window_s", [0, 1, 59, 86_401, 2**31, -1])
def test_a_payment_window_outside_a_minute_to_a_day_is_refused(api: Api, sale: Sale, window_s: int) -> None:
    method, path, body = _routes(api, sale)["campaign"]
    refused_and_unchanged(api, sale, method, path, {**body, "payment_window_s": window_s})
    patch = f"/admin/campaigns/{sale.campaign_id}"
    refused_and_unchanged(api, sale, "PATCH", patch, {"payment_window_s": window_s})


def test_a_payment_window_of_a_minute_or_a_day_is_accepted(api: Api, sale: Sale) -> None:
    method, path, body = _routes(api, sale)["campaign"]
    assert ok(api, method, path, {**body, "payment_window_s": 60}, 201)["payment_window_s"] == 60
    patched = ok(api, "PATCH", f"/admin/campaigns/{sale.campaign_id}", {"payment_window_s": 86_400})
    assert patched["payment_window_s"] == 86_400


def test_the_openapi_document_shows_the_bounds(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]

    def bounds(model: str, field: str) -> tuple[float, float]:
        prop = schemas[model]["properties"][field]
        typed = next(t for t in prop.get("anyOf", [prop]) if t.get("type") == "integer")
        return typed["minimum"], typed["maximum"]

    assert (
        bounds("CampaignIn", "payment_window_s")
        == bounds("CampaignPatch", "payment_window_s")
        == (60, 86_400)
    )
    assert bounds("ItemIn", "per_user_limit") == bounds("ItemPatch", "per_user_limit") == (1, 1000)
    assert schemas["ItemIn"]["properties"]["allow_above_list_price"]["type"] == "boolean"


# -- per-user limit -----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1, 1001, 2**31 - 1])
def test_a_per_user_limit_outside_one_to_a_thousand_is_refused(api: Api, sale: Sale, limit: int) -> None:
    for route in ("item", "item-patch"):
        method, path, body = _routes(api, sale)[route]
        refused_and_unchanged(api, sale, method, path, {**body, "per_user_limit": limit})


def test_a_per_user_limit_of_a_thousand_is_accepted(api: Api, sale: Sale) -> None:
    assert (
        ok(api, "PATCH", f"/admin/items/{sale.phone_id}", {"per_user_limit": 1000})["per_user_limit"] == 1000
    )


# -- flash price against list price -------------------------------------------------------------


def test_a_flash_price_above_the_list_price_needs_an_explicit_override(api: Api, sale: Sale) -> None:
    method, path, body = _routes(api, sale)["item"]  # the phone lists at 599_900
    refused = refused_and_unchanged(api, sale, method, path, {**body, "flash_price_cents": 599_901})
    assert (
        "above the list price 599900" in refused["message"] and "allow_above_list_price" in refused["message"]
    )

    created = ok(
        api, method, path, {**body, "flash_price_cents": 599_901, "allow_above_list_price": True}, 201
    )
    assert created["flash_price_cents"] == 599_901
    assert "allow_above_list_price" not in created  # a decision taken on one write, not a stored setting
    # Editing something else of that item does not ask again; a new price above the list does.
    assert ok(api, "PATCH", f"/admin/items/{created['id']}", {"quota": 2})["quota"] == 2
    refused_and_unchanged(api, sale, "PATCH", f"/admin/items/{created['id']}", {"flash_price_cents": 700_000})


def test_a_flash_price_equal_to_the_list_price_needs_no_override(api: Api, sale: Sale) -> None:
    method, path, body = _routes(api, sale)["item"]
    assert ok(api, method, path, {**body, "flash_price_cents": 599_900}, 201)["flash_price_cents"] == 599_900


def test_raising_an_items_price_above_the_list_is_refused_without_the_override(api: Api, sale: Sale) -> None:
    path = f"/admin/items/{sale.phone_id}"
    refused = refused_and_unchanged(api, sale, "PATCH", path, {"flash_price_cents": 600_000})
    assert "above the list price" in refused["message"]
    raised = ok(api, "PATCH", path, {"flash_price_cents": 600_000, "allow_above_list_price": True})
    assert raised["flash_price_cents"] == 600_000
    assert api.buy("alice", sale.phone_id).json()["unit_price_cents"] == 600_000


def test_lowering_a_list_price_below_a_live_items_flash_price_is_refused_without_the_override(
    api: Api, sale: Sale
) -> None:
    path = f"/admin/products/{_product_id(api, 'PHONE-X')}"  # on sale at 399_900, session open now
    refused = refused_and_unchanged(api, sale, "PATCH", path, {"list_price_cents": 399_899})
    assert f"item(s) {sale.phone_id} " in refused["message"]
    assert ok(api, "PATCH", path, {"list_price_cents": 399_900})["list_price_cents"] == 399_900
    lowered = ok(api, "PATCH", path, {"list_price_cents": 100, "allow_above_list_price": True})
    assert lowered["list_price_cents"] == 100


def test_an_ended_session_does_not_hold_back_a_new_list_price(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    path = f"/admin/products/{_product_id(api, 'BUDS-2')}"  # on sale at 49_900 in the 10:00–10:10 session
    clock.advance(10 * 60)
    assert ok(api, "PATCH", path, {"list_price_cents": 100})["list_price_cents"] == 100


# -- tokens from the future ---------------------------------------------------------------------


def _bearer(api: Api, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"}


def test_a_token_issued_in_the_future_is_refused_and_buys_nothing(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    secret = api.platform.settings.jwt_secret
    assert secret is not None
    future = mint_shopper_token(secret, "alice", 3600, clock() + IAT_LEEWAY_S + 1)
    before = api.snapshot(sale.phone_id)
    for _ in range(2):  # the second time the token's signature is remembered: still refused
        bought = api.client.post(
            "/purchases", json={"item_id": sale.phone_id, "quantity": 1}, headers=_bearer(api, future)
        )
        assert_refused(bought, 401, "UNAUTHENTICATED")
        assert bought.json()["message"] == "token issued in the future"
        assert_refused(api.client.get("/orders", headers=_bearer(api, future)), 401, "UNAUTHENTICATED")
    assert api.snapshot(sale.phone_id) == before

    clock.advance(IAT_LEEWAY_S + 1)  # the platform's clock reaches the token: it works from now on
    assert api.client.get("/orders", headers=_bearer(api, future)).status_code == 200


def test_a_token_within_the_clock_skew_leeway_is_accepted(api: Api, sale: Sale, clock: ManualClock) -> None:
    secret = api.platform.settings.jwt_secret
    assert secret is not None
    skewed = mint_shopper_token(secret, "alice", 3600, clock() + IAT_LEEWAY_S)
    bought = api.client.post(
        "/purchases", json={"item_id": sale.phone_id, "quantity": 1}, headers=_bearer(api, skewed)
    )
    assert bought.status_code == 201, bought.text


def test_a_remembered_token_is_refused_when_the_platform_clock_is_behind_its_issue_time(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    token = api.token("alice")
    assert api.client.get("/orders", headers=_bearer(api, token)).status_code == 200
    clock.set(clock() - 3600)  # e.g. a manual clock wound back: the cache must not vouch for the token
    assert_refused(api.client.get("/orders", headers=_bearer(api, token)), 401, "UNAUTHENTICATED")


def test_a_token_without_iat_is_still_accepted(api: Api, sale: Sale, clock: ManualClock) -> None:
    secret = api.platform.settings.jwt_secret
    assert secret is not None
    no_iat = jwt.encode(
        {"sub": "alice", "exp": int(clock()) + 60, "role": "shopper"}, secret, algorithm="HS256"
    )
    assert api.client.get("/orders", headers=_bearer(api, no_iat)).status_code == 200
