"""The demo crowd on the embedded platform: same seed, same units sold; the audit catches bad books."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.demo import CrowdTooSmall, DemoOptions, DemoReport, run_demo
from flashsale.demo.baskets import BasketTally
from flashsale.demo.campaign import (
    COUPON_TIER,
    FREE_ORDER_RANKS,
    PROMOTION_TIER,
    SALE_DAY,
    SESSION_OPENS,
    create_campaign,
    create_promotions,
)
from flashsale.demo.crowd import (
    BASKET_MIX,
    LATE_MIX,
    Behaviour,
    basket_count,
    plan_baskets,
    plan_crowd,
    resale_bound,
)
from flashsale.demo.group_deal import (
    EXTRA_JOINERS,
    FAILING_MEMBERS,
    GROUP_PRICE_CENTS,
    GROUP_SIZE,
    GroupTally,
    audit_groups,
    create_deal,
    group_count,
    plan_groups,
)
from flashsale.demo.lucky_draw import DRAWS_PER_ORDER, DrawTally, audit_draw, create_draw, grant_paid_orders
from flashsale.demo.promotions import audit_promotions
from flashsale.demo.report import audit_items
from flashsale.demo.shop import Tally
from flashsale.domain.errors import ErrorCode
from flashsale.domain.group_buy import GroupStatus
from flashsale.domain.orders import OrderStatus
from flashsale.services.checkout_coupons import REDEEMED
from flashsale.services.orders import Buy
from flashsale.store.tables import CheckoutCouponRow, CheckoutRow, DrawGrantRow, GroupSeatRow, OrderRow
from tests.factories import stress_size

SMALL = DemoOptions(seed=7, shoppers=600, concurrency=8, quota_scale=0.06)


def assert_sold_out_cleanly(report: DemoReport) -> None:
    assert report.oversell == 0
    assert report.undersell == 0
    assert report.ledger_agrees_with_db
    assert report.tally.duplicate_orders == 0
    assert not report.tally.failures
    assert report.ok
    for item in report.items:
        assert (item.sold, item.held, item.available) == (item.quota, 0, 0)
        assert (item.db_sold, item.db_held) == (item.quota, 0)


def assert_promotions_hold(report: DemoReport) -> None:
    """The promotions' audits hold, and their numbers agree with each other and with the shoppers."""
    audit = report.promotions
    assert audit is not None and audit.ok
    assert audit.coupons_redeemed_twice == 0 and audit.budget_mismatch_cents == 0
    assert audit.cart_stock_conserved and audit.free_orders_ok and report.money_nets
    tally = audit.tally
    assert tally.duplicate_checkouts == 0 and not tally.failures
    # Coupons: every shopper claimed one; each placed checkout with one kept it (paid) or gave it back.
    assert audit.coupons_claimed == tally.claims == tally.shoppers
    assert audit.coupons_redeemed <= audit.coupons_claimed
    assert audit.coupons_redeemed + audit.coupons_given_back + tally.without_coupon == audit.checkouts_placed
    assert audit.coupon_spent_cents == audit.coupons_redeemed * COUPON_TIER.off_cents
    assert audit.coupon_spent_cents <= audit.coupon_budget_cents
    assert audit.promotion_discount_cents == audit.promotion_spent_cents > 0
    assert audit.promotion_discount_cents % PROMOTION_TIER.off_cents == 0
    # Checkouts: each ended paid, cancelled or expired, as the shopper behaved; double clicks replayed.
    assert audit.checkouts_placed == tally.checkouts
    assert (audit.checkouts_paid, audit.checkouts_cancelled, audit.checkouts_expired) == (
        tally.payments,
        tally.cancellations,
        tally.walked_away,
    )
    assert (
        audit.checkouts_paid + audit.checkouts_cancelled + audit.checkouts_expired == audit.checkouts_placed
    )
    assert audit.checkouts_cancelled > 0 and audit.checkouts_expired > 0 and audit.coupons_given_back > 0
    assert 0 < tally.replays <= tally.double_clicks
    for item in audit.regular:  # nothing left held once the walked-away checkouts expired
        assert item.held == item.db_held == 0 and 0 < item.sold == item.db_sold
    # Free orders: one winner per winning rank the phone's paid orders reached.
    phone = next(i for i in report.items if i.sku == "PHONE-X")
    assert audit.free_order_paid == phone.paid_orders
    assert [w.slot for w in audit.winners] == [r for r in FREE_ORDER_RANKS if r <= phone.paid_orders]
    assert len(audit.winners) == audit.ranks_reached > 0
    assert sum(w.rebate_cents for w in audit.winners) == audit.rebated_cents_journal > 0
    assert report.as_dict()["promotions"]["ok"] is True


def assert_games_hold(report: DemoReport) -> None:
    """The group deal's and the draw's audits hold, and their numbers agree with what the shoppers saw."""
    groups, draw = report.groups, report.draw
    assert groups is not None and groups.ok and report.money_nets
    assert groups.groups_ok and groups.failed_released and groups.stock_conserved
    # Every group but one filled with exactly its size paid; the joiners beyond the seats were refused.
    gt = groups.tally
    filled = groups.count(GroupStatus.FILLED)
    assert (
        (filled, groups.count(GroupStatus.FAILED))
        == (gt.groups_opened - 1, 1)
        == (group_count(SMALL.shoppers) - 1, 1)
    )
    assert groups.members == gt.joins == filled * GROUP_SIZE + FAILING_MEMBERS
    assert gt.join_refusals == {ErrorCode.GROUP_FULL: filled * EXTRA_JOINERS}
    assert groups.paid == filled * GROUP_SIZE and gt.walked_away == 1 and not gt.failures
    # The one that did not fill: its walker's hold released, its payers refunded in full.
    assert groups.refunds == FAILING_MEMBERS - 1
    assert groups.refunded_cents == groups.failed_paid_cents == (FAILING_MEMBERS - 1) * GROUP_PRICE_CENTS
    assert groups.held == groups.db_held == 0 and groups.sold == groups.db_sold
    assert report.promotions is not None
    cable = next(i for i in report.promotions.regular if i.name == groups.item_name)
    assert (cable.sold, cable.stock) == (groups.sold, groups.stock)
    # The draw: one per qualifying paid order (every phone's among them), each spent and stored once.
    assert draw is not None and draw.ok
    assert draw.within_stock and draw.awarded_once and draw.grants_ok
    phones = sum(i.paid_orders for i in report.items if i.sku.startswith("PHONE-X"))
    assert draw.grants == draw.qualifying_orders >= phones > 0
    dt = draw.tally
    assert draw.awards == draw.draws_granted == draw.grants * DRAWS_PER_ORDER == dt.draws
    assert draw.draws_left == 0 and dt.duplicate_awards == 0 and not dt.failures
    assert draw.thanks + sum(p.awarded for p in draw.prizes) == draw.awards
    assert all(p.awarded <= p.stock for p in draw.prizes)
    assert 0 < dt.replays <= dt.draws and dt.double_clicks > 0
    assert set(dt.refusals) <= {ErrorCode.NO_ENTITLEMENT}  # those who tried once more than they had
    as_dict = report.as_dict()
    assert as_dict["groups"]["ok"] is True and as_dict["draw"]["ok"] is True


def test_the_same_seed_sells_every_unit_in_two_runs_through_every_kind_of_refusal(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "one", SMALL)
    second = run_demo(tmp_path / "two", SMALL)

    assert_sold_out_cleanly(first)
    assert_sold_out_cleanly(second)
    assert_promotions_hold(first)
    assert_promotions_hold(second)
    assert_games_hold(first)
    assert_games_hold(second)
    assert first.total("sold") == second.total("sold") == first.total("quota")
    assert first.as_dict()["totals"]["sold"] == first.total("quota")
    # The crowd really met every refusal and replay on the way.
    tally = first.tally
    for code in (ErrorCode.SESSION_NOT_OPEN, ErrorCode.LIMIT_EXCEEDED, ErrorCode.SOLD_OUT):
        assert tally.refusals[code] > 0, code
    assert tally.double_clicks > 0
    assert tally.replays > 0
    assert tally.expired > 0
    assert tally.cancellations > 0
    # The pace is the clicks' own (a greedy shopper's second try comes with the checkout, after them).
    assert 0 < first.decisions <= tally.reserve_calls
    assert first.crowd_seconds > 0 and first.checkout_seconds > 0
    assert first.as_dict()["decisions"] == first.decisions


def test_a_seed_always_draws_the_same_crowd(platform: Platform) -> None:
    campaign = create_campaign(platform.catalog, quota_scale=0.06)

    one = plan_crowd(campaign.items, shoppers=600, seed=3)
    two = plan_crowd(campaign.items, shoppers=600, seed=3)

    assert one == two
    assert one != plan_crowd(campaign.items, shoppers=600, seed=4)
    assert len({s.user_id for s in one}) == 600


def test_basket_shoppers_are_drawn_apart_from_the_flash_crowd_and_reach_the_coupon(
    platform: Platform,
) -> None:
    campaign = create_campaign(platform.catalog, quota_scale=0.06)

    baskets = plan_baskets(campaign.regular, shoppers=600, seed=3)

    assert baskets == plan_baskets(campaign.regular, shoppers=600, seed=3)
    assert len(baskets) == basket_count(600)
    flash_ids = {s.user_id for s in plan_crowd(campaign.items, shoppers=600, seed=3)}
    assert not flash_ids & {b.user_id for b in baskets}
    assert {b.behaviour for b in baskets} == set(BASKET_MIX)
    subtotals = [sum(item.spec.shop_price_cents * qty for item, qty in b.lines) for b in baskets]
    assert min(subtotals) >= COUPON_TIER.threshold_cents  # every basket takes the coupon
    assert any(s >= PROMOTION_TIER.threshold_cents for s in subtotals)  # some the 满减 too


def test_the_promotions_audit_reports_a_coupon_redeemed_twice(platform: Platform, clock: ManualClock) -> None:
    campaign = create_campaign(platform.catalog, quota_scale=0.01)
    campaign = create_promotions(platform.coupons, platform.free_orders, campaign, baskets=2)
    assert campaign.promotions is not None
    clock.set((SALE_DAY + SESSION_OPENS[1]).timestamp())
    coupon = platform.coupons.claim(user_id="b1", wave_id=campaign.promotions.coupon_wave_id, request_id="c")
    for item in campaign.regular:
        platform.carts.add("b1", item.id, 2)
    checkout, _ = platform.carts.checkout("b1", "k1", [coupon.coupon.coupon_id])
    platform.carts.pay("b1", checkout.id)
    assert audit_promotions(platform, campaign, BasketTally(), rebated_cents=0).ok
    # The same coupon written REDEEMED for a second checkout behind the ledger's back.
    with platform.deps.uow() as uow:
        row = uow.db.scalars(select(CheckoutRow).where(CheckoutRow.id == checkout.id)).one()
        uow.db.execute(
            insert(CheckoutRow).values(
                id="co_forged", user_id="b1", idempotency_key="forged", status=row.status,
                subtotal_cents=row.subtotal_cents, discount_cents=row.discount_cents,
                shipping_cents=0, total_cents=row.total_cents, created_at=row.created_at,
            )
        )  # fmt: skip
        uow.db.execute(
            insert(CheckoutCouponRow).values(
                checkout_id="co_forged", coupon_id=coupon.coupon.coupon_id,
                template_id=coupon.coupon.template_id, discount_cents=COUPON_TIER.off_cents, state=REDEEMED,
            )
        )  # fmt: skip
        uow.commit()

    audit = audit_promotions(platform, campaign, BasketTally(), rebated_cents=0)

    assert audit.coupons_redeemed_twice > 0
    assert audit.budget_mismatch_cents == COUPON_TIER.off_cents  # the ledger spent it once
    assert not audit.ok


def test_groups_are_drawn_from_the_seed_and_exactly_one_does_not_fill() -> None:
    plans = plan_groups(600, seed=3)

    assert plans == plan_groups(600, seed=3)
    assert len(plans) == group_count(600)
    failing = [p for p in plans if not p.fills]
    assert len(failing) == 1 and failing[0].walks_away in failing[0].joiners
    assert len(failing[0].joiners) == FAILING_MEMBERS - 1
    assert all(len(p.joiners) == GROUP_SIZE - 1 + EXTRA_JOINERS for p in plans if p.fills)
    members = [u for p in plans for u in (p.leader, *p.joiners)]
    assert len(set(members)) == len(members) and all(u.startswith("g") for u in members)


def test_the_draw_audit_reports_a_grant_no_qualifying_order_earned(
    platform: Platform, clock: ManualClock
) -> None:
    campaign = create_campaign(platform.catalog, quota_scale=0.01)
    campaign = create_promotions(platform.coupons, platform.free_orders, campaign, baskets=2)
    draw = create_draw(platform.draws, platform, campaign, quota_scale=0.01)
    phone, buds = campaign.items[0], campaign.items[1]
    clock.set((SALE_DAY + SESSION_OPENS[0]).timestamp())
    for user, item in (("u1", phone), ("u2", buds)):  # ¥3,999 earns a draw, ¥499 does not
        order = platform.orders.buy(Buy(user, item.id, 1, f"r-{user}")).order
        platform.orders.pay(order.id, user)
    assert grant_paid_orders(platform) == 1
    platform.draws.draw(draw.pool_id, "u1", "spin")
    assert audit_draw(platform, draw, DrawTally()).ok
    # A draw written for u2's small order behind the ledger's back.
    with platform.deps.uow() as uow:
        uow.db.execute(
            insert(DrawGrantRow).values(
                pool_id=draw.pool_id, user_id="u2", source="paid_order", grant_key="order:forged",
                draws=1, day="2026-11-11", created_at=SALE_DAY,
            )
        )  # fmt: skip
        uow.commit()

    audit = audit_draw(platform, draw, DrawTally())

    assert audit.grants_without_order == 1 and not audit.grants_ok
    assert not audit.awarded_once  # the ledger never granted it: granted − left ≠ awards
    assert not audit.ok


def test_the_group_audit_reports_a_group_over_its_size(platform: Platform, clock: ManualClock) -> None:
    campaign = create_campaign(platform.catalog, quota_scale=0.01)
    deal = create_deal(platform.groups, campaign)
    clock.set((SALE_DAY + SESSION_OPENS[1]).timestamp())
    leader = platform.groups.open("g1", deal.id, "k")
    assert audit_groups(platform, campaign, deal, GroupTally()).over_filled == 0
    # Seats 2..size+1 written behind the turnstile's back: one member too many.
    with platform.deps.uow() as uow:
        for seat in range(2, GROUP_SIZE + 2):
            uow.db.execute(
                insert(GroupSeatRow).values(
                    group_id=leader.group.id,
                    seat=seat,
                    user_id=f"f{seat}",
                    claim=f"c{seat}",
                    claimed_at=SALE_DAY,
                )
            )
        uow.commit()

    audit = audit_groups(platform, campaign, deal, GroupTally())

    assert audit.over_filled == 1 and not audit.groups_ok and not audit.ok


def test_the_late_wave_covers_every_unit_the_rush_can_leave_unsold(platform: Platform) -> None:
    campaign = create_campaign(platform.catalog, quota_scale=0.06)
    crowd = plan_crowd(campaign.items, shoppers=600, seed=1)
    rush = [s for s in crowd if not s.late]

    for item in campaign.items:
        late = [s for s in crowd if s.late and s.item.id == item.id]
        assert len(late) >= resale_bound(item, rush) > 0
        assert {s.behaviour for s in late} <= set(LATE_MIX)
    assert not any(s.behaviour is Behaviour.NEVER_PAYS for s in crowd if s.late)


def test_a_crowd_too_small_for_the_quotas_is_refused(platform: Platform) -> None:
    campaign = create_campaign(platform.catalog)

    with pytest.raises(CrowdTooSmall):
        plan_crowd(campaign.items, shoppers=100, seed=1)


def test_the_audit_reports_orders_the_ledger_never_granted(platform: Platform, clock: ManualClock) -> None:
    campaign = create_campaign(platform.catalog, quota_scale=0.01)
    phone = campaign.items[0]
    clock.set((SALE_DAY + SESSION_OPENS[0]).timestamp())
    order = platform.orders.buy(Buy("u1", phone.id, 1, "r1")).order
    platform.orders.pay(order.id, "u1")
    # A second paid phone for u1 written behind the ledger's back: over the limit of 1.
    with platform.deps.uow() as uow:
        uow.db.execute(
            insert(OrderRow).values(
                id="forged",
                user_id="u1",
                item_id=phone.id,
                qty=1,
                unit_price_cents=order.unit_price_cents,
                total_cents=order.total_cents,
                status=OrderStatus.PAID.value,
                request_id="forged",
                created_at=order.created_at,
                expires_at=order.created_at + timedelta(minutes=15),
            )
        )
        uow.commit()

    audit = {a.item_id: a for a in audit_items(platform.deps, campaign, Tally())}[phone.id]

    assert (audit.sold, audit.db_sold) == (1, 2)
    assert not audit.agrees
    assert audit.oversell == 1  # the quota (5) holds, the per-user limit does not


def test_the_audit_counts_units_left_while_shoppers_were_turned_away(platform: Platform) -> None:
    campaign = create_campaign(platform.catalog, quota_scale=0.01)
    phone = campaign.items[0]
    tally = Tally()
    tally.turned_away |= {(phone.id, "u1"), (phone.id, "u2")}
    tally.served.add((phone.id, "u2"))

    audit = {a.item_id: a for a in audit_items(platform.deps, campaign, tally)}[phone.id]

    assert (audit.available, audit.undersell) == (5, 1)  # u1 wanted one of the 5 units left


@pytest.mark.stress
def test_a_bigger_crowd_on_more_threads_still_sells_out_exactly(tmp_path: Path) -> None:
    shoppers = stress_size(1_200, 10_000)
    options = DemoOptions(seed=11, shoppers=shoppers, concurrency=16, quota_scale=shoppers / 10_000)

    assert_sold_out_cleanly(run_demo(tmp_path, options))
