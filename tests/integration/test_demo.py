"""The demo crowd on the embedded platform: same seed, same units sold; the audit catches bad books."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.demo import CrowdTooSmall, DemoOptions, DemoReport, run_demo
from flashsale.demo.campaign import SALE_DAY, SESSION_OPENS, create_campaign
from flashsale.demo.crowd import LATE_MIX, Behaviour, plan_crowd, resale_bound
from flashsale.demo.report import audit_items
from flashsale.demo.shop import Tally
from flashsale.domain.errors import ErrorCode
from flashsale.domain.orders import OrderStatus
from flashsale.services.orders import Buy
from flashsale.store.tables import OrderRow
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


def test_the_same_seed_sells_every_unit_in_two_runs_through_every_kind_of_refusal(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "one", SMALL)
    second = run_demo(tmp_path / "two", SMALL)

    assert_sold_out_cleanly(first)
    assert_sold_out_cleanly(second)
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


def test_a_seed_always_draws_the_same_crowd(platform: Platform) -> None:
    campaign = create_campaign(platform.catalog, quota_scale=0.06)

    one = plan_crowd(campaign.items, shoppers=600, seed=3)
    two = plan_crowd(campaign.items, shoppers=600, seed=3)

    assert one == two
    assert one != plan_crowd(campaign.items, shoppers=600, seed=4)
    assert len({s.user_id for s in one}) == 600


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
