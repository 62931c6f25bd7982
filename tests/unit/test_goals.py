"""KPI targets (domain/targets.py), channel ROI (domain/channels.py), the forecast read off a previous
campaign (domain/forecast.py) and the open loop's percentiles (rehearsal/openloop.py)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashsale.domain.campaign import FlashSession
from flashsale.domain.channels import Channel, review_channels
from flashsale.domain.forecast import SessionForecast, forecast_from_campaign
from flashsale.domain.orders import Order, OrderStatus
from flashsale.domain.review import Kpis
from flashsale.domain.targets import Target, judge_targets
from flashsale.rehearsal.openloop import percentile

KPIS = Kpis(
    gmv_cents=1_000_000,
    orders_paid=40,
    units_sold=50,
    aov_cents=25_000,
    participants=100,
    buyers=38,
    orders_placed=50,
    conversion=0.8,
    expired_share=0.12,
    cancelled_share=0.08,
    refunded_cents=0,
)
T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)


def test_a_target_is_met_when_reached_or_for_shares_better_lower_when_not_exceeded() -> None:
    results = judge_targets(
        KPIS,
        [
            Target("expired_share", 1_000),  # 12 % expired, at most 10 % wanted: missed
            Target("gmv_cents", 1_000_000),  # exactly reached: met
            Target("conversion", 8_000),  # 80 % = 8,000 basis points: met
            Target("cancelled_share", 1_000),  # 8 % cancelled, at most 10 %: met
            Target("orders_paid", 0),
        ],
    )
    assert [(r.target.kpi, r.achieved, r.met, r.attainment) for r in results] == [
        ("gmv_cents", 1_000_000, True, 1.0),
        ("orders_paid", 40, True, None),
        ("conversion", 8_000, True, 1.0),
        ("expired_share", 1_200, False, 1.2),
        ("cancelled_share", 800, True, 0.8),
    ]


@pytest.mark.parametrize(
    ("kpi", "value"), [("gmv", 1), ("gmv_cents", -1), ("conversion", 10_001), ("expired_share", 20_000)]
)
def test_a_target_for_no_kpi_below_zero_or_a_share_above_all_is_refused(kpi: str, value: int) -> None:
    with pytest.raises(ValueError):
        Target(kpi, value)


channels = st.builds(
    Channel,
    name=st.text(min_size=1, max_size=10),
    budget_cents=st.integers(0, 10**9),
    spend_cents=st.integers(0, 10**9),
    attributed_orders=st.integers(0, 100),
    attributed_gmv_cents=st.integers(0, 2 * 10**6),
)


@given(st.lists(channels, max_size=6))
def test_roi_earns_its_sign_from_gmv_against_spend_and_attribution_adds_up(chosen: list[Channel]) -> None:
    review = review_channels(KPIS, chosen)
    for result in review.channels:
        c = result.channel
        if c.spend_cents == 0:
            assert result.roi is None
        else:
            assert result.roi is not None
            assert math.copysign(1, result.roi) == math.copysign(
                1, c.attributed_gmv_cents - c.spend_cents
            ) or (abs(result.roi) < 1e-4)
        assert result.over_budget_cents == max(0, c.spend_cents - c.budget_cents)
    gmv = sum(c.attributed_gmv_cents for c in chosen)
    orders = sum(c.attributed_orders for c in chosen)
    assert review.over_attributed == (gmv > KPIS.gmv_cents or orders > KPIS.orders_paid)
    if not review.over_attributed:
        assert review.attributed_gmv_cents + review.unattributed_gmv_cents == KPIS.gmv_cents
        assert review.attributed_orders + review.unattributed_orders == KPIS.orders_paid


def test_a_channel_with_negative_money_is_refused() -> None:
    with pytest.raises(ValueError):
        Channel("search", 100, -1, 0, 0)


def order(user: str, at_s: float) -> Order:
    created = T0 + timedelta(seconds=at_s)
    return Order(
        f"o-{user}-{at_s}",
        user,
        1,
        1,
        100,
        100,
        OrderStatus.PAID,
        f"r{at_s}",
        created,
        created + timedelta(minutes=15),
    )


def session(session_id: int, starts_at: datetime) -> FlashSession:
    return FlashSession(session_id, 1, "s", starts_at, starts_at + timedelta(minutes=10))


def test_a_forecast_from_a_previous_campaign_counts_its_participants_over_their_first_orders() -> None:
    year = timedelta(days=365)
    old = [session(1, T0), session(2, T0 + timedelta(hours=5))]
    new = [session(11, T0 + year), session(12, T0 + year + timedelta(hours=5)), session(13, T0 + 2 * year)]
    orders = [order("ann", 3), order("bob", 45.4), order("ann", 200)]  # ann's second order is no arrival

    # Matched in start order, whatever order they are given in; the third new session has no match.
    assert forecast_from_campaign(new, [(old[1], []), (old[0], orders)]) == [
        SessionForecast(11, 2, 45),
        SessionForecast(12, 0, 1),
    ]


@given(st.lists(st.floats(0, 1e3), min_size=1, max_size=200), st.floats(0.1, 100))
def test_a_percentile_is_a_sample_with_at_least_that_share_at_or_below_it(
    values: list[float], p: float
) -> None:
    ordered = sorted(values)
    chosen = percentile(ordered, p)
    assert chosen in ordered
    assert sum(v <= chosen for v in ordered) >= p / 100 * len(ordered) - 1e-9
    assert percentile(ordered, 100) == ordered[-1] and percentile([], 50) == 0.0
