"""Draw routes through TestClient: pool to redemption, typed refusals, bad input changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.store.tables import DrawAwardRow, DrawGrantRow, DrawPoolRow, DrawPrizeRow, ScheduledDrawRow
from tests.conftest import T0, Sale
from tests.integration.api_support import Api, assert_refused, open_api
from tests.integration.draw_support import paid_order

DRAW_ROWS = (DrawPoolRow, DrawPrizeRow, DrawGrantRow, DrawAwardRow, ScheduledDrawRow)


@pytest.fixture
def api(platform: Platform, clock: ManualClock, sale: Sale) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def admin_post(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = api.client.post(path, json=body, headers=api.admin)
    assert answer.status_code == 201, answer.text
    body_out: dict[str, Any] = answer.json()
    return body_out


def wheel(api: Api) -> tuple[int, int]:
    """A golden egg pool with one coupon prize (stock 2) and share / order rules; its id and the prize's."""
    pool = admin_post(
        api,
        "/admin/draws/pools",
        {
            "name": "Golden egg",
            "game": "golden_egg",
            "thanks_weight": 0,
            "utc_offset_min": 480,
            "rules": [
                {"source": "share", "draws": 1, "daily_cap": 2},
                {"source": "paid_order", "draws": 3, "daily_cap": 1, "min_order_cents": 150_000},
                {"source": "checkin"},
            ],
        },
    )
    prize = admin_post(
        api,
        f"/admin/draws/pools/{pool['id']}/prizes",
        {"name": "¥50 off", "kind": "coupon", "weight": 1, "stock": 2, "coupon_template_id": 7},
    )
    return pool["id"], prize["id"]


def rows(platform: Platform) -> list[int]:
    with platform.deps.read() as read:
        return [int(read.db.scalar(select(func.count()).select_from(t)) or 0) for t in DRAW_ROWS]


def test_a_shopper_shares_draws_wins_and_redeems(api: Api) -> None:
    pool_id, prize_id = wheel(api)
    ann = api.shopper("ann")
    shared = api.client.post(f"/draws/pools/{pool_id}/shares", json={"share_id": "wx-1"}, headers=ann)
    assert shared.json() == {"granted": 1, "balance": 1, "replayed": False, "streak": None}
    again = api.client.post(f"/draws/pools/{pool_id}/shares", json={"share_id": "wx-1"}, headers=ann)
    assert again.json()["replayed"] and again.json()["balance"] == 1

    drawn = api.client.post(f"/draws/pools/{pool_id}/draw", headers={**ann, "Idempotency-Key": "egg-1"})
    assert drawn.status_code == 200, drawn.text
    award = drawn.json()["award"]
    assert award["prize"]["id"] == prize_id and award["prize"]["coupon_template_id"] == 7
    replay = api.client.post(f"/draws/pools/{pool_id}/draw", headers={**ann, "Idempotency-Key": "egg-1"})
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json()["award"]["id"] == award["id"]
    assert_refused(
        api.client.post(f"/draws/pools/{pool_id}/draw", headers={**ann, "Idempotency-Key": "egg-2"}),
        409,
        "NO_ENTITLEMENT",
    )
    assert api.client.get(f"/draws/pools/{pool_id}/entitlements", headers=ann).json() == {
        "pool_id": pool_id,
        "balance": 0,
    }
    assert [a["id"] for a in api.client.get("/draws/awards", headers=ann).json()] == [award["id"]]

    redeemed = api.client.post(f"/draws/awards/{award['id']}/redeem", headers=ann)
    assert redeemed.json()["status"] == "redeemed"
    assert_refused(
        api.client.post(f"/draws/awards/{award['id']}/redeem", headers=ann), 409, "ALREADY_REDEEMED"
    )
    assert_refused(
        api.client.post(f"/draws/awards/{award['id']}/redeem", headers=api.shopper("bob")), 404, "NOT_FOUND"
    )


def test_a_paid_order_check_in_and_the_pool_view(api: Api, sale: Sale) -> None:
    pool_id, prize_id = wheel(api)
    order = paid_order(api.platform, "ann", sale.phone_id)
    ann = api.shopper("ann")
    claimed = api.client.post(f"/draws/pools/{pool_id}/orders/{order.id}", headers=ann)
    assert claimed.json()["granted"] == 3
    assert api.client.post(f"/draws/pools/{pool_id}/checkin", headers=ann).json()["streak"] == 1
    assert_refused(api.client.post(f"/draws/pools/{pool_id}/checkin", headers=ann), 409, "ALREADY_CHECKED_IN")
    assert_refused(api.client.post(f"/draws/pools/{pool_id}/daily", headers=ann), 409, "NO_ENTITLEMENT")
    for n in range(3):
        api.client.post(f"/draws/pools/{pool_id}/draw", headers={**ann, "Idempotency-Key": f"k{n}"})
    # two coupons in stock, no thanks weight: the third draw finds every prize gone and keeps its draw
    gone = api.client.post(f"/draws/pools/{pool_id}/draw", headers={**ann, "Idempotency-Key": "k3"})
    assert_refused(gone, 409, "PRIZE_GONE")
    view = api.client.get(f"/admin/draws/pools/{pool_id}", headers=api.admin).json()
    assert view["levels"] == [
        {"prize_id": prize_id, "stock": 2, "awarded": 2, "awarded_today": 2, "daily_cap": None}
    ]
    assert_refused(
        api.client.patch(f"/admin/draws/prizes/{prize_id}", json={"stock": 1}, headers=api.admin),
        409,
        "QUOTA_BELOW_COMMITTED",
    )
    assert (
        api.client.patch(f"/admin/draws/prizes/{prize_id}", json={"stock": 5}, headers=api.admin).json()[
            "stock"
        ]
        == 5
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/admin/draws/pools", {"name": "x", "rules": [{"source": "share"}, {"source": "share"}]}),
        ("/admin/draws/pools", {"name": "x", "thanks_weight": -1}),
        ("/admin/draws/pools", {"name": "x", "game": "roulette"}),
        ("/admin/draws/pools/{pool}/prizes", {"name": "x", "kind": "coupon", "weight": 1, "stock": 1}),
        (
            "/admin/draws/pools/{pool}/prizes",
            {"name": "x", "kind": "points", "weight": 1, "stock": 1, "points": "5"},
        ),
        (
            "/admin/draws/pools/{pool}/prizes",
            {"name": "x", "kind": "goods", "weight": 1, "stock": 1, "product_id": 99},
        ),
        (
            "/admin/draws/scheduled",
            {"pool_id": "{pool}", "prize_id": 999, "name": "x", "run_at": T0.isoformat(), "winners": 1},
        ),
        (
            "/admin/draws/scheduled",
            {"pool_id": "{pool}", "prize_id": "{prize}", "name": "x", "run_at": "16:00", "winners": 1},
        ),
    ],
)
def test_bad_operator_input_is_refused_and_changes_nothing(api: Api, path: str, body: dict[str, Any]) -> None:
    pool_id, prize_id = wheel(api)
    before = rows(api.platform)
    filled = {
        k: (int(v.format(pool=pool_id, prize=prize_id)) if v in ("{pool}", "{prize}") else v)
        for k, v in body.items()
    }
    answer = api.client.post(path.format(pool=pool_id), json=filled, headers=api.admin)
    assert answer.status_code in (404, 409, 422), answer.text
    assert rows(api.platform) == before


def test_bad_shopper_input_is_refused_and_changes_nothing(api: Api) -> None:
    pool_id, _ = wheel(api)
    ann = api.shopper("ann")
    before = rows(api.platform)
    assert_refused(
        api.client.post(f"/draws/pools/{pool_id}/draw", headers=ann), 400, "IDEMPOTENCY_KEY_REQUIRED"
    )
    assert_refused(
        api.client.post("/draws/pools/999/draw", headers={**ann, "Idempotency-Key": "k"}), 404, "UNKNOWN_POOL"
    )
    assert_refused(
        api.client.post(f"/draws/pools/{pool_id}/shares", json={}, headers=ann), 422, "VALIDATION_ERROR"
    )
    assert_refused(api.client.post(f"/draws/pools/{pool_id}/daily", headers=ann), 409, "NO_ENTITLEMENT")
    assert_refused(
        api.client.post(f"/draws/pools/{pool_id}/orders/nope", headers=ann), 404, "ORDER_NOT_FOUND"
    )
    assert_refused(api.client.post(f"/draws/pools/{pool_id}/checkin"), 401, "UNAUTHENTICATED")
    assert_refused(api.client.get("/admin/draws/pools", headers=ann), 403, "FORBIDDEN")
    assert rows(api.platform) == before


def test_a_scheduled_draw_through_the_admin_routes(api: Api, sale: Sale, clock: ManualClock) -> None:
    pool_id, prize_id = wheel(api)
    for user in ("ann", "bob", "cat"):
        paid_order(api.platform, user, sale.phone_id)
    run_at = T0.replace(minute=5)
    planned = admin_post(
        api,
        "/admin/draws/scheduled",
        {
            "pool_id": pool_id, "prize_id": prize_id, "name": "18:05 draw", "run_at": run_at.isoformat(),
            "winners": 2, "min_order_cents": 150_000,
        },
    )  # fmt: skip
    assert_refused(
        api.client.post(f"/admin/draws/scheduled/{planned['id']}/run", headers=api.admin), 409, "CONFLICT"
    )
    clock.set(run_at.timestamp())
    ran = api.client.post(f"/admin/draws/scheduled/{planned['id']}/run", headers=api.admin).json()
    assert ran["status"] == "done" and ran["entrants"] == ["ann", "bob", "cat"] and ran["verified"]
    assert len(ran["winner_ids"]) == 2
    assert api.client.get(f"/admin/draws/scheduled/{planned['id']}", headers=api.admin).json() == ran
    winner = ran["winner_ids"][0]
    (award,) = api.client.get("/draws/awards", headers=api.shopper(winner)).json()
    assert award["prize"]["id"] == prize_id and award["status"] == "awarded"


def test_a_goods_prize_is_redeemed_as_a_paid_zero_price_order_listed_with_the_shoppers_orders(
    api: Api, sale: Sale
) -> None:
    cat = api.platform.catalog
    mug = cat.create_product(sku="MUG-A", name="Mug", list_price_cents=9_900, stock=50)
    cup = cat.create_product(sku="CUP-A", name="Cup", list_price_cents=5_000, stock=50)  # not on sale
    item = cat.create_item(
        session_id=sale.session_id, product_id=mug.id, flash_price_cents=9_900, quota=3, regular=True
    )
    pool = admin_post(
        api,
        "/admin/draws/pools",
        {"name": "Mugs", "game": "scratch_card", "thanks_weight": 0, "utc_offset_min": 0,
         "rules": [{"source": "share", "draws": 1, "daily_cap": 2}]},
    )  # fmt: skip
    ann = api.shopper("ann")
    awards = []
    for n, product in enumerate((mug, cup)):
        prize = admin_post(
            api,
            f"/admin/draws/pools/{pool['id']}/prizes",
            {"name": product.name, "kind": "goods", "weight": 1, "stock": 1, "product_id": product.id},
        )
        api.client.post(f"/draws/pools/{pool['id']}/shares", json={"share_id": f"s{n}"}, headers=ann)
        key = {**ann, "Idempotency-Key": f"k{n}"}
        awards.append(api.client.post(f"/draws/pools/{pool['id']}/draw", headers=key).json()["award"])
        api.platform.draws.update_prize(prize["id"], weight=0)  # the next draw wins the next prize
    by_product = {a["prize"]["product_id"]: a["id"] for a in awards}

    refused = api.client.post(f"/draws/awards/{by_product[cup.id]}/redeem", headers=ann)
    assert_refused(refused, 409, "PRIZE_NOT_STOCKED")
    redeemed = api.client.post(f"/draws/awards/{by_product[mug.id]}/redeem", headers=ann)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["status"] == "redeemed" and redeemed.json()["order_id"]
    orders = api.client.get("/orders", headers=ann).json()
    assert [(o["id"], o["item_id"], o["total_cents"], o["status"]) for o in orders] == [
        (redeemed.json()["order_id"], item.id, 0, "PAID")
    ]
    still = {a["id"]: a["status"] for a in api.client.get("/draws/awards", headers=ann).json()}
    assert still[by_product[cup.id]] == "awarded"
