"""Coupons over HTTP: operators make templates, waves and codes; shoppers claim and list; refusals are
typed and store nothing."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.store.tables import CouponCodeRow, CouponRow, CouponTemplateRow, CouponWaveRow
from tests.conftest import T0
from tests.integration.api_support import Api, assert_refused, open_api


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


TEMPLATE: dict[str, Any] = {
    "name": "满300减30",
    "kind": "threshold",
    "tiers": [
        {"threshold_cents": 30_000, "off_cents": 3_000},
        {"threshold_cents": 50_000, "off_cents": 6_000},
    ],
    "valid_from": at(0),
    "valid_until": at(7 * 24 * 60),
    "budget_cents": 500_000,
}


def admin_post(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    created = api.client.post(path, json=body, headers=api.admin)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


def wave(api: Api, **changes: Any) -> dict[str, Any]:
    template = admin_post(api, "/admin/coupon-templates", TEMPLATE)
    body = {"template_id": template["id"], "starts_at": at(0), "total": 3, "per_user_limit": 1, **changes}
    return admin_post(api, "/admin/coupon-waves", body)


def claim(api: Api, user: str, wave_id: int, key: str | None = None) -> httpx2.Response:
    headers = {**api.shopper(user), "Idempotency-Key": key or str(uuid.uuid4())}
    return api.client.post("/coupons/claims", json={"wave_id": wave_id}, headers=headers)


def counts(platform: Platform) -> tuple[int, ...]:
    with platform.deps.read() as unit:
        return tuple(
            unit.db.scalar(select(func.count()).select_from(t)) or 0
            for t in (CouponTemplateRow, CouponWaveRow, CouponRow, CouponCodeRow)
        )


def test_a_shopper_claims_a_coupon_replays_it_and_finds_it_in_their_list(api: Api) -> None:
    made = wave(api)
    assert (made["issued"], made["codes"]) == (0, False)
    first = claim(api, "ann", made["id"], key="k1")
    assert first.status_code == 201, first.text
    coupon = first.json()
    assert (coupon["name"], coupon["state"], coupon["kind"]) == ("满300减30", "available", "threshold")
    again = claim(api, "ann", made["id"], key="k1")
    assert (again.status_code, again.headers["Idempotent-Replayed"], again.json()) == (200, "true", coupon)
    assert_refused(claim(api, "ann", made["id"]), 409, "COUPON_LIMIT")
    mine = api.client.get("/coupons", headers=api.shopper("ann")).json()
    assert [c["id"] for c in mine] == [coupon["id"]]
    assert api.client.get(f"/admin/coupon-waves/{made['id']}", headers=api.admin).json()["issued"] == 1


def test_claims_before_the_start_and_after_the_last_coupon_are_refused(api: Api, clock: ManualClock) -> None:
    made = wave(api, starts_at=at(10), total=1)
    assert_refused(claim(api, "ann", made["id"]), 409, "COUPON_NOT_STARTED")
    clock.advance(10 * 60)
    assert claim(api, "ann", made["id"]).status_code == 201
    assert_refused(claim(api, "bob", made["id"]), 409, "COUPON_ISSUE_EXHAUSTED")
    assert_refused(claim(api, "bob", 999), 404, "UNKNOWN_COUPON")


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "percent", "percent": 0},
        {
            "tiers": [
                {"threshold_cents": 50_000, "off_cents": 6_000},
                {"threshold_cents": 30_000, "off_cents": 3_000},
            ]
        },
        {"valid_until": at(-1)},
        {"kind": "amount", "off_cents": 0},
        {"kind": "bogus"},
        {"budget_cents": -1},
        {"unknown": 1},
        {"valid_from": "tomorrow"},
    ],
)
def test_a_bad_template_is_refused_422_and_stores_nothing(api: Api, changes: dict[str, Any]) -> None:
    refused = api.client.post("/admin/coupon-templates", json={**TEMPLATE, **changes}, headers=api.admin)
    assert_refused(refused, 422, "VALIDATION_ERROR")
    assert counts(api.platform) == (0, 0, 0, 0)


def test_a_bad_wave_is_refused_and_stores_nothing(api: Api) -> None:
    template = admin_post(api, "/admin/coupon-templates", TEMPLATE)
    base = {"template_id": template["id"], "starts_at": at(0), "total": 3}
    for body, status, code in [
        ({**base, "template_id": 99}, 404, "NOT_FOUND"),
        ({**base, "total": 0}, 422, "VALIDATION_ERROR"),
        ({**base, "ends_at": at(-5)}, 422, "VALIDATION_ERROR"),
        ({**base, "per_user_limit": "2"}, 422, "VALIDATION_ERROR"),
    ]:
        assert_refused(api.client.post("/admin/coupon-waves", json=body, headers=api.admin), status, code)
    assert counts(api.platform) == (1, 0, 0, 0)


def test_single_use_codes_are_exported_as_csv_and_redeemed_once(api: Api) -> None:
    template = admin_post(api, "/admin/coupon-templates", {**TEMPLATE, "kind": "amount", "off_cents": 500})
    run = admin_post(
        api, "/admin/coupon-codes", {"template_id": template["id"], "starts_at": at(0), "total": 4}
    )
    assert run["wave"]["codes"] and len(run["codes"]) == 4
    code = run["codes"][0]
    won = api.client.post("/coupons/codes", json={"code": code.lower()}, headers=api.shopper("ann"))
    assert won.status_code == 201, won.text
    assert_refused(
        api.client.post("/coupons/codes", json={"code": code}, headers=api.shopper("bob")), 409, "COUPON_USED"
    )
    assert_refused(claim(api, "bob", run["wave"]["id"]), 404, "UNKNOWN_COUPON")
    exported = api.client.get(f"/admin/coupon-waves/{run['wave']['id']}/codes.csv", headers=api.admin)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["code"] for r in rows) == sorted(run["codes"])
    assert {r["code"]: r["claimed_by"] for r in rows}[code] == "ann"


def test_templates_list_their_budget_spend(api: Api) -> None:
    made = wave(api)
    coupon = claim(api, "ann", made["id"]).json()
    api.platform.coupons.redeem(user_id="ann", coupon_id=coupon["id"], order_id="o1", discount_cents=3_000)
    listed = api.client.get("/admin/coupon-templates", headers=api.admin).json()
    assert [(t["budget_cents"], t["spent_cents"]) for t in listed] == [(500_000, 3_000)]


def test_coupon_routes_need_the_right_token(api: Api) -> None:
    assert_refused(api.client.get("/coupons"), 401, "UNAUTHENTICATED")
    assert_refused(api.client.get("/admin/coupon-templates", headers=api.shopper("ann")), 403, "FORBIDDEN")
    no_key = api.client.post("/coupons/claims", json={"wave_id": 1}, headers=api.shopper("ann"))
    assert_refused(no_key, 400, "IDEMPOTENCY_KEY_REQUIRED")


def test_the_coupon_routes_and_their_refusals_are_documented(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    for path in (
        "/coupons",
        "/coupons/claims",
        "/coupons/codes",
        "/admin/coupon-templates",
        "/admin/coupon-waves",
        "/admin/coupon-codes",
        "/admin/coupon-waves/{wave_id}/codes.csv",
    ):
        assert path in doc["paths"], path
    assert {"201", "200", "409", "404"} <= set(doc["paths"]["/coupons/claims"]["post"]["responses"])
    codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
    assert {"COUPON_LIMIT", "COUPON_ISSUE_EXHAUSTED", "COUPON_NOT_STARTED", "BUDGET_EXHAUSTED"} <= set(codes)
