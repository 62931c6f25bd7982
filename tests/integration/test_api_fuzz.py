"""Random bodies and headers against the write routes: never a 5xx, and stock is conserved throughout."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from tests.conftest import Sale
from tests.integration.api_support import Api, open_api

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.integers(min_value=-3, max_value=1003)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _one_in(n: int, rare: st.SearchStrategy[Any], common: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Draw from `rare` about once in `n` draws, else from `common`."""
    return st.sampled_from([common] * (n - 1) + [rare]).flatmap(lambda chosen: chosen)


def _mostly(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Draw from `strategy` nine times in ten, else any JSON value, so requests get past validation too."""
    return _one_in(10, json_values, strategy)


zones = st.just(UTC) | st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
)
extreme_moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.none() | zones
)
near_moments = st.datetimes(
    min_value=datetime(2026, 11, 9), max_value=datetime(2026, 11, 14), timezones=zones
)
moments = _one_in(5, extreme_moments, near_moments).map(datetime.isoformat)
names = st.text(min_size=1, max_size=30) | st.text(max_size=210)
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)


@pytest.fixture
def api(platform: Platform, clock: ManualClock, sale: Sale) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def _fields(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies with the route's field names: mostly all present and plausible, else some dropped or random."""
    values = {k: _mostly(v) for k, v in fields.items()}
    full = st.fixed_dictionaries(values)
    return _one_in(5, st.fixed_dictionaries({}, optional=values), full)


def _assert_served(response: httpx2.Response) -> None:
    """Check the server did not fail, and tally the answer (see --hypothesis-show-statistics)."""
    assert response.status_code < 500, response.text
    event(f"{response.status_code} {response.json()['code'] if response.status_code >= 400 else ''}")


def _assert_conserved(api: Api, sale: Sale) -> None:
    for item_id in (sale.phone_id, sale.earbuds_id):
        assert api.platform.ledger.stock(item_id).conserved


@FUZZ
@given(data=st.data())
def test_random_purchases_never_fail_the_server(api: Api, sale: Sale, data: st.DataObject) -> None:
    item_ids = st.sampled_from([sale.phone_id, sale.earbuds_id, 0, 424242])
    body = data.draw(_mostly(_fields({"item_id": item_ids, "quantity": st.integers(-2, 3)})), "body")
    shoppers = st.sampled_from(["alice", "bob"]).map(lambda user: api.shopper(user)["Authorization"])
    others = st.just(api.admin["Authorization"]) | printable.map(lambda t: f"Bearer {t}") | printable
    headers = {"Authorization": data.draw(_one_in(5, others, shoppers), "authorization")}
    keys = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8)
    key = data.draw(_one_in(5, st.none() | printable, keys), "key")
    if key is not None:
        headers["Idempotency-Key"] = key
    response = api.client.post("/purchases", json=body, headers=headers)
    _assert_served(response)
    assert response.status_code in (200, 201, 400, 401, 409, 422)  # 200: a replayed key
    _assert_conserved(api, sale)


@FUZZ
@given(data=st.data())
def test_random_raw_bodies_never_fail_the_server(api: Api, sale: Sale, data: st.DataObject) -> None:
    path = data.draw(
        st.sampled_from(["/purchases", "/admin/campaigns", "/admin/items", "/payments/sandbox/callback"])
    )
    auth = api.admin if path.startswith("/admin") else api.shopper("alice")
    content = data.draw(st.binary(max_size=200) | json_values.map(lambda v: repr(v).encode()), "content")
    content_type = data.draw(
        st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"])
    )
    headers = {**auth, "Idempotency-Key": "k", "Content-Type": content_type, "X-Signature": "00"}
    response = api.client.post(path, content=content, headers=headers)
    _assert_served(response)
    _assert_conserved(api, sale)


def _campaign_fields(when: st.SearchStrategy[str]) -> dict[str, st.SearchStrategy[Any]]:
    phase = {"kind": st.sampled_from(["warm_up", "main", "encore", "x"]), "starts_at": when, "ends_at": when}
    return {
        "name": names,
        "theme": names,
        "starts_at": when,
        "ends_at": when,
        "payment_window_s": st.integers(-1, 2**32) | st.integers(1, 3600),
        "phases": st.lists(_fields(phase), max_size=2),
    }


PRODUCT = {
    "sku": names,
    "name": names,
    "list_price_cents": st.integers(-1, 10**6) | st.integers(-1, 10**13),
    "stock": st.integers(-1, 2**32) | st.integers(0, 2000),
}
ITEM_TERMS = {
    "flash_price_cents": st.integers(-1, 10**6) | st.integers(-1, 10**13),
    "quota": st.integers(-1, 2000),
    "per_user_limit": st.integers(-1, 5),
    "coupons_allowed": st.booleans(),
}
SESSION = {"name": names, "starts_at": moments, "ends_at": moments}
SLOT = {
    "start": st.times().map(str),
    "end": st.times().map(str),
    "tz": st.sampled_from(["UTC", "Asia/Shanghai", "Nowhere/City", "", "../x"]),
    "name": st.text(max_size=110),
}
# The fixture's campaign is only ever moved within a few days: daily slots over a campaign stretched
# across centuries are a valid (and slow) request, not what this test is about.
ADMIN_ROUTES: list[tuple[str, str, dict[str, st.SearchStrategy[Any]]]] = [
    ("POST", "/admin/campaigns", _campaign_fields(moments)),
    ("PATCH", "/admin/campaigns/{campaign}", _campaign_fields(near_moments.map(datetime.isoformat))),
    ("POST", "/admin/campaigns/{campaign}/sessions", SESSION),
    ("POST", "/admin/campaigns/{campaign}/daily-sessions", {"slots": st.lists(_fields(SLOT), max_size=3)}),
    ("PATCH", "/admin/sessions/{session}", SESSION),
    ("POST", "/admin/products", PRODUCT),
    ("PATCH", "/admin/products/{product}", PRODUCT),
    (
        "POST",
        "/admin/items",
        {"session_id": st.integers(-1, 5), "product_id": st.integers(-1, 5), **ITEM_TERMS},
    ),
    ("PATCH", "/admin/items/{item}", ITEM_TERMS),
]


@FUZZ
@given(data=st.data())
def test_random_admin_writes_never_fail_the_server(api: Api, sale: Sale, data: st.DataObject) -> None:
    method, template, fields = data.draw(st.sampled_from(ADMIN_ROUTES), "route")
    known = {"campaign": sale.campaign_id, "session": sale.session_id, "product": 1, "item": sale.phone_id}
    bogus = st.sampled_from(["424242", "0", "-1", "x"])
    ids = {name: data.draw(_one_in(5, bogus, st.just(str(value))), name) for name, value in known.items()}
    body = data.draw(_mostly(_fields(fields)), "body")
    response = api.client.request(method, template.format(**ids), json=body, headers=api.admin)
    _assert_served(response)
    assert response.status_code in (200, 201, 404, 409, 422)
    _assert_conserved(api, sale)
