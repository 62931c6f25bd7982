"""Coupons and shop promotions at checkout, on both ends: priced in, redeemed once, given back once."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.coupons import CouponKind, CouponState, CouponTemplate, CouponWave
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import OrderStatus
from flashsale.domain.promotions import Tier
from flashsale.services.audit import audit_payments
from flashsale.services.cart import Checkout
from flashsale.services.checkout_coupons import REDEEMED, RESTORED, STALE_CHECKOUT_S
from tests.conftest import T0, Sale
from tests.engines import POSTGRES_REDIS, SQLITE, drain_orders
from tests.integration.api_support import Api, open_api
from tests.integration.coupon_support import threshold_template
from tests.integration.ledger_store_checks import assert_store_matches_ledger

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)  # the two ends (see tests/engines.py)

KETTLE, MUG = 15_000, 8_000  # flash prices of items that take coupons


@dataclass(frozen=True)
class Shop:
    kettle_id: int  # 150.00, coupons stack on it
    mug_id: int  # 80.00, coupons stack on it
    phone_id: int  # 3999.00, a flash price that refuses coupons


@pytest.fixture
def shop(platform: Platform, sale: Sale) -> Shop:
    cat = platform.catalog
    kettle = cat.create_product(sku="KETTLE", name="Kettle", list_price_cents=20_000, stock=1000)
    mug = cat.create_product(sku="MUG", name="Mug", list_price_cents=10_000, stock=1000)
    kettle_item = cat.create_item(
        session_id=sale.session_id,
        product_id=kettle.id,
        flash_price_cents=KETTLE,
        quota=60,
        per_user_limit=5,
        coupons_allowed=True,
    )
    mug_item = cat.create_item(
        session_id=sale.session_id,
        product_id=mug.id,
        flash_price_cents=MUG,
        quota=60,
        per_user_limit=5,
        coupons_allowed=True,
    )
    return Shop(kettle_item.id, mug_item.id, sale.phone_id)


def coupon_of(platform: Platform, user: str, *, budget_cents: int | None = 100_000, total: int = 100) -> str:
    """A fresh 满300减30 template and wave; `user` claims one coupon of it."""
    template = platform.coupons.create_template(threshold_template(budget_cents=budget_cents))
    wave = platform.coupons.create_wave(CouponWave(0, template.id, T0, total, 1))
    return platform.coupons.claim(user_id=user, wave_id=wave.wave.id, request_id="c").coupon.coupon_id


def state_of(platform: Platform, coupon_id: str) -> CouponState:
    coupon = platform.coupons.ledger.get(coupon_id)
    assert coupon is not None
    stored = {c.coupon.coupon_id: c.coupon.state for c in platform.coupons.my_coupons(coupon.user_id)}
    assert stored[coupon_id] is coupon.state  # the store says what the ledger says
    return coupon.state


def spent(platform: Platform, coupon_id: str) -> int:
    coupon = platform.coupons.ledger.get(coupon_id)
    assert coupon is not None
    return platform.coupons.budget(coupon.template_id).spent_cents


def orders_of(platform: Platform, checkout: Checkout) -> list[str]:
    drain_orders(platform)
    placed = platform.carts.get(checkout.user_id, checkout.id)
    return [ln.order.id for ln in placed.lines if ln.order is not None]


def test_a_coupon_is_allocated_to_the_lines_that_take_it_and_redeemed_once_whatever_the_replays(
    platform: Platform, shop: Shop
) -> None:
    coupon = coupon_of(platform, "ann")
    platform.carts.add("ann", shop.kettle_id, 1)
    platform.carts.add("ann", shop.mug_id, 2)
    platform.carts.add("ann", shop.phone_id, 1)  # refuses coupons: neither counts nor gets a share
    # Kettle 150 + mugs 160 = 310 reach 满300: 30 off, split 150:160 → 14.52 and 15.48.
    view = platform.carts.view("ann", [coupon])
    assert view.price is not None and view.price.total_cents == 31_000 - 3_000 + 399_900

    checkout, replayed = platform.carts.checkout("ann", "k1", [coupon])
    assert not replayed and checkout.status == "PLACED"
    assert [ln.total_cents for ln in checkout.lines] == [15_000 - 1_452, 16_000 - 1_548, 399_900]
    assert [(c.coupon_id, c.discount_cents, c.state) for c in checkout.coupons] == [(coupon, 3_000, REDEEMED)]
    assert state_of(platform, coupon) is CouponState.REDEEMED and spent(platform, coupon) == 3_000
    again, replayed = platform.carts.checkout("ann", "k1", [coupon])  # a double click
    assert replayed and again.id == checkout.id and spent(platform, coupon) == 3_000
    platform.carts.add("ann", shop.kettle_id, 2)
    with pytest.raises(FlashSaleError) as used:  # another checkout cannot take it
        platform.carts.checkout("ann", "k2", [coupon])
    assert used.value.code is ErrorCode.COUPON_USED

    paid = platform.carts.pay("ann", checkout.id)
    assert [ln.order.total_cents for ln in paid.lines if ln.order] == [13_548, 14_452, 399_900]
    orders = orders_of(platform, checkout)
    platform.orders.refund(orders[0])  # a refund of one line gives back its money, not the coupon
    assert state_of(platform, coupon) is CouponState.REDEEMED
    for order_id in orders[1:]:
        platform.orders.refund(order_id)
    assert state_of(platform, coupon) is CouponState.AVAILABLE and spent(platform, coupon) == 0
    audit = audit_payments(platform.deps.sessions)
    assert audit.clean and audit.charged_cents == 13_548 + 14_452 + 399_900 == audit.refunded_cents


def test_a_coupon_the_budget_cannot_cover_refuses_the_checkout_and_holds_nothing(
    platform: Platform, shop: Shop
) -> None:
    coupon = coupon_of(platform, "bob", budget_cents=2_000)  # 30 off would overspend it
    platform.carts.add("bob", shop.kettle_id, 2)
    for _ in range(2):  # the first answer and its replay
        with pytest.raises(FlashSaleError) as refused:
            platform.carts.checkout("bob", "k1", [coupon])
        assert refused.value.code is ErrorCode.BUDGET_EXHAUSTED
    assert platform.ledger.stock(shop.kettle_id).held == 0
    assert state_of(platform, coupon) is CouponState.AVAILABLE and spent(platform, coupon) == 0
    assert platform.carts.view("bob").cart.qty_of(shop.kettle_id) == 2  # the cart is kept


def test_a_coupon_comes_back_only_when_every_line_ended_unpaid_and_then_serves_again(
    platform: Platform, shop: Shop, clock: ManualClock
) -> None:
    coupon = coupon_of(platform, "cat")
    platform.carts.add("cat", shop.kettle_id, 2)
    platform.carts.add("cat", shop.mug_id, 1)
    checkout, _ = platform.carts.checkout("cat", "k1", [coupon])
    first, second = orders_of(platform, checkout)
    platform.orders.cancel(first, "cat")  # a partial cancel keeps the coupon
    assert state_of(platform, coupon) is CouponState.REDEEMED
    platform.orders.cancel(second, "cat")
    assert state_of(platform, coupon) is CouponState.AVAILABLE and spent(platform, coupon) == 0
    assert platform.checkout_coupons.sweep() == 0  # nothing left to give back: once only

    platform.carts.add("cat", shop.kettle_id, 2)
    reused, _ = platform.carts.checkout("cat", "k2", [coupon])
    assert reused.status == "PLACED" and spent(platform, coupon) == 3_000
    clock.advance(16 * 60)  # its payment window passes unpaid
    platform.orders.expire_due()
    drain_orders(platform)
    assert [platform.orders.get(o).status for o in orders_of(platform, reused)] == [OrderStatus.EXPIRED]
    platform.checkout_coupons.sweep()  # behind Redis the writer may have stored the expiry: the sweep
    assert state_of(platform, coupon) is CouponState.AVAILABLE and spent(platform, coupon) == 0


def test_shop_promotions_apply_by_themselves_within_their_budget(
    platform: Platform, shop: Shop, sale: Sale
) -> None:
    week = T0 + timedelta(days=7)
    every = CouponTemplate(
        0,
        "每满200减20 封顶50",
        CouponKind.EVERY,
        T0,
        week,
        tiers=(Tier(20_000, 2_000),),
        cap_cents=5_000,
        budget_cents=5_000,
    )
    platform.coupons.create_promotion(every, sale.campaign_id)
    platform.carts.add("dan", shop.kettle_id, 3)
    platform.carts.add("dan", shop.mug_id, 3)  # 450 + 240 = 690: 3 steps = 60, capped at 50
    checkout, _ = platform.carts.checkout("dan", "k1")
    assert checkout.subtotal_cents - sum(ln.total_cents for ln in checkout.lines) == 5_000
    assert [c.discount_cents for c in checkout.coupons] == [5_000]
    # The budget is spent: the next cart is priced, and checked out, without the promotion.
    platform.carts.add("eve", shop.kettle_id, 2)
    view = platform.carts.view("eve")
    assert view.price is not None and view.price.total_cents == 30_000
    placed, _ = platform.carts.checkout("eve", "k1")
    assert placed.coupons == () and placed.total_cents == 30_000
    with pytest.raises(FlashSaleError) as not_claimable:
        promo_wave = platform.coupons._promotion_waves()[0][1]
        platform.coupons.claim(user_id="eve", wave_id=promo_wave, request_id="x")
    assert not_claimable.value.code is ErrorCode.UNKNOWN_COUPON
    assert platform.coupons.my_coupons("dan") == []  # a promotion's coupon is not the shopper's to hold


def test_a_checkout_a_crash_left_pending_is_refused_by_the_sweep_and_its_coupon_restored(
    platform: Platform, shop: Shop, clock: ManualClock
) -> None:
    coupon = coupon_of(platform, "fay")
    platform.carts.add("fay", shop.kettle_id, 2)
    carts = platform.carts
    # The process dies after the checkout was journaled and its coupon redeemed, before any hold.
    checkout_id = "co_" + "f" * 32
    lines, subtotal, shipping, redemptions = carts._cart_lines("fay", checkout_id, [coupon])
    carts._open("fay", "k1", checkout_id, lines, subtotal, shipping, redemptions)
    platform.checkout_coupons.redeem(checkout_id, redemptions)
    assert platform.checkout_coupons.sweep() == 0  # young: the shopper's retry would finish it
    clock.advance(STALE_CHECKOUT_S + 1)
    assert platform.checkout_coupons.sweep() == 1
    assert platform.coupons.ledger.get(coupon).state is CouponState.AVAILABLE  # type: ignore[union-attr]
    assert spent(platform, coupon) == 0
    assert [c.state for c in platform.checkout_coupons.journaled(checkout_id)] == [RESTORED]


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def test_coupons_and_promotions_over_http(api: Api, shop: Shop, sale: Sale) -> None:
    body = {  # the admin makes 满300减30 a promotion of the campaign
        "name": "满300减30",
        "kind": "threshold",
        "tiers": [{"threshold_cents": 30_000, "off_cents": 3_000}],
        "valid_from": T0.isoformat(),
        "valid_until": (T0 + timedelta(days=7)).isoformat(),
        "budget_cents": 100_000,
    }
    made = api.client.post(f"/admin/campaigns/{sale.campaign_id}/promotions", json=body, headers=api.admin)
    assert made.status_code == 201, made.text
    assert made.json()["auto_apply"] is True
    listed = api.client.get(f"/admin/campaigns/{sale.campaign_id}/promotions", headers=api.admin).json()
    assert [p["id"] for p in listed] == [made.json()["id"]]
    missing = api.client.post("/admin/campaigns/999/promotions", json=body, headers=api.admin)
    assert missing.status_code == 404

    for item_id in (shop.kettle_id, shop.kettle_id):
        api.client.post("/cart/items", json={"item_id": item_id, "quantity": 1}, headers=api.shopper("gus"))
    cart = api.client.get("/cart", headers=api.shopper("gus")).json()
    assert (cart["subtotal_cents"], cart["total_cents"]) == (30_000, 27_000)
    unknown = api.client.post(
        "/checkouts", json={"coupon_ids": ["nope"]}, headers={**api.shopper("gus"), "Idempotency-Key": "k0"}
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_COUPON"
    placed = api.client.post("/checkouts", headers={**api.shopper("gus"), "Idempotency-Key": "k1"})
    assert placed.status_code == 201, placed.text
    out = placed.json()
    assert out["total_cents"] == 27_000 and [c["discount_cents"] for c in out["coupons"]] == [3_000]
    assert [ln["order"]["total_cents"] for ln in out["lines"]] == [27_000]


def test_a_crowd_checking_out_with_coupons_never_redeems_one_twice_nor_overspends_the_budget(
    platform: Platform, shop: Shop, clock: ManualClock
) -> None:
    shoppers = [f"s{n:02d}" for n in range(20)]
    # 满300减30 with room for 8 redemptions: 20 shoppers each hold one coupon of it.
    template = platform.coupons.create_template(threshold_template(budget_cents=8 * 3_000))
    wave = platform.coupons.create_wave(CouponWave(0, template.id, T0, len(shoppers), 1))
    coupons = {
        user: platform.coupons.claim(user_id=user, wave_id=wave.wave.id, request_id="c").coupon.coupon_id
        for user in shoppers
    }
    for user in shoppers:
        platform.carts.add(user, shop.kettle_id, 2)

    def go(attempt: tuple[str, str]) -> Checkout | ErrorCode:
        user, key = attempt
        try:
            return platform.carts.checkout(user, key, [coupons[user]])[0]
        except FlashSaleError as exc:
            return exc.code

    # Each shopper double-clicks one key and tries a second key with the same coupon at once.
    attempts = [(u, k) for u in shoppers for k in ("k1", "k1", "k2")]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(go, attempts))
    drain_orders(platform)

    assert {a for a in answers if isinstance(a, ErrorCode)} <= {
        ErrorCode.BUDGET_EXHAUSTED,
        ErrorCode.COUPON_USED,
        ErrorCode.CART_EMPTY,
        ErrorCode.CONFLICT,
    }
    placed = {a.id: a for a in answers if isinstance(a, Checkout)}
    assert len(placed) == 8  # exactly what the budget covers: no more, and none lost to a race
    assert len({c.user_id for c in placed.values()}) == len(placed)  # one coupon, one checkout
    level = platform.coupons.budget(template.id)
    assert level.spent_cents == 8 * 3_000 == sum(c.coupons[0].discount_cents for c in placed.values())
    redeemed = [platform.coupons.ledger.get(c) for c in coupons.values()]
    assert sorted(c.order_id for c in redeemed if c and c.state is CouponState.REDEEMED) == sorted(placed)
    stock = assert_store_matches_ledger(platform, shop.kettle_id, limit=5)  # conserved, no stray hold
    assert stock.held == 2 * len(placed)

    # Every placed checkout is undone by a cancel racing the expiry of the same orders.
    orders = [o for c in placed.values() for o in orders_of(platform, c)]
    users = {o: c.user_id for c in placed.values() for o in orders_of(platform, c)}
    clock.advance(15 * 60 - 1)

    def cancel(order_id: str) -> None:
        with suppress(FlashSaleError):  # lost to the expiry
            platform.orders.cancel(order_id, users[order_id])

    def expire(_: str) -> None:
        platform.orders.expire_due()

    with ThreadPoolExecutor(16) as pool:
        jobs = [pool.submit(cancel, o) for o in orders[::2]]
        clock.advance(2)  # the rest of the windows pass while cancels are under way
        jobs += [pool.submit(fn, o) for o in orders[1::2] for fn in (cancel, expire)]
        for job in jobs:
            job.result()
    platform.orders.expire_due()
    drain_orders(platform)
    platform.checkout_coupons.sweep()
    assert {platform.orders.get(o).status for o in orders} <= {OrderStatus.CANCELLED, OrderStatus.EXPIRED}
    assert platform.coupons.budget(template.id).spent_cents == 0  # each restored once, none twice
    assert all(state_of(platform, c) is CouponState.AVAILABLE for c in coupons.values())
    assert platform.checkout_coupons.sweep() == 0
    assert_store_matches_ledger(platform, shop.kettle_id, limit=5)
