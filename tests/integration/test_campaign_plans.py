"""The operator's plan for a campaign over the admin API: the traffic forecast per session (entered, or
read off a previous campaign), KPI targets and marketing channels; and the review that shows them."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.reports.campaign import write_campaign_review
from flashsale.services.review import load_review
from tests.conftest import T0, Sale
from tests.engines import POSTGRES_REDIS, SQLITE, drain_orders
from tests.integration.api_support import Api, assert_refused, open_api

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)  # the two ends (see tests/engines.py)

TARGETS = {"gmv_cents": 500_000, "orders_paid": 2, "conversion": 0.75, "expired_share": 0.1}
CHANNELS = [
    {"name": "search", "budget_cents": 100_000, "spend_cents": 120_000, "attributed_orders": 1,
     "attributed_gmv_cents": 399_900},
    {"name": "push", "budget_cents": 50_000, "spend_cents": 10_000, "attributed_orders": 1,
     "attributed_gmv_cents": 49_900},
]  # fmt: skip


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def paid_order(api: Api, user: str, item_id: int) -> dict[str, Any]:
    bought = api.buy(user, item_id)
    assert bought.status_code == 201, bought.text
    paid = api.client.post(f"/orders/{bought.json()['id']}/pay", headers=api.shopper(user))
    assert paid.status_code == 200, paid.text
    return dict(paid.json())


def put(api: Api, path: str, body: Any) -> Any:
    response = api.client.put(path, json=body, headers=api.admin)
    assert response.status_code == 200, response.text
    return response.json()


def test_targets_and_channels_show_in_the_review_against_what_the_campaign_made(
    api: Api, sale: Sale, tmp_path: Path
) -> None:
    paid_order(api, "ann", sale.phone_id)
    paid_order(api, "bob", sale.earbuds_id)
    api.buy("cy", sale.earbuds_id)  # placed, never paid: conversion 2/3
    drain_orders(api.platform)
    base = f"/admin/campaigns/{sale.campaign_id}"

    assert put(api, f"{base}/targets", TARGETS) == {"targets": TARGETS}
    assert put(api, f"{base}/channels", {"channels": CHANNELS}) == sorted(CHANNELS, key=lambda c: c["name"])
    assert api.client.get(f"{base}/targets", headers=api.admin).json() == {"targets": TARGETS}

    reads = api.platform.deps.reads or api.platform.deps.sessions
    kpis = load_review(reads, sale.campaign_id).kpis
    page = write_campaign_review(reads, sale.campaign_id, tmp_path).read_text(encoding="utf-8")

    assert "<section id='goals'>" in page and "data-chart='channels'" in page
    assert kpis.gmv_cents == 399_900 + 49_900 and kpis.orders_paid == 2
    # GMV ¥4,498 misses ¥5,000; 2 paid orders meet 2; conversion 66.7 % misses 75 %; none expired.
    assert "data-kpi='gmv_cents' data-met='false'" in page
    assert "data-kpi='orders_paid' data-met='true'" in page
    assert "data-kpi='conversion' data-met='false'" in page
    assert "data-kpi='expired_share' data-met='true'" in page
    with (tmp_path / "targets.csv").open(encoding="utf-8") as f:
        targets = {row["kpi"]: row for row in csv.DictReader(f)}
    assert targets["conversion"]["target"] == "7500" and targets["conversion"]["achieved"] == "6667"
    assert targets["gmv_cents"]["achieved"] == str(kpis.gmv_cents)
    with (tmp_path / "channels.csv").open(encoding="utf-8") as f:
        channels = {row["channel"]: row for row in csv.DictReader(f)}
    # search: spent ¥1,200 of ¥1,000 for ¥3,999 of GMV; push: ¥100 of ¥500 for ¥499.
    assert channels["search"]["over_budget_cents"] == "20000"
    assert float(channels["search"]["roi"]) == round((399_900 - 120_000) / 120_000, 4)
    assert float(channels["push"]["roi"]) == round((49_900 - 10_000) / 10_000, 4)
    assert channels["push"]["cost_per_order_cents"] == "10000"
    goals = json.loads((tmp_path / "goals.json").read_text(encoding="utf-8"))
    assert goals["channels"]["unattributed_orders"] == 0 and not goals["channels"]["over_attributed"]
    assert goals["channels"]["roi"] == round((449_800 - 130_000) / 130_000, 4)


def test_bad_plans_are_refused_and_change_nothing(api: Api, sale: Sale) -> None:
    base = f"/admin/campaigns/{sale.campaign_id}"
    put(api, f"{base}/targets", {"gmv_cents": 100})
    put(api, f"{base}/channels", {"channels": CHANNELS[:1]})
    put(api, f"{base}/forecast", {"sessions": [{"session_id": sale.session_id, "shoppers": 50, "span_s": 5}]})
    _, (other, _) = another_campaign(api)

    refusals = [
        (f"{base}/targets", {"gmv": 1}),  # no such KPI
        (f"{base}/targets", {"conversion": 1.5}),  # a share above 100 %
        (f"{base}/targets", {"orders_paid": -1}),
        (f"{base}/targets", {"orders_paid": "7"}),  # strict: no numbers as text
        (f"{base}/channels", {"channels": [{**CHANNELS[0], "spend_cents": -5}]}),
        (f"{base}/channels", {"channels": [CHANNELS[0], CHANNELS[0]]}),  # named twice
        (f"{base}/forecast", {"sessions": [{"session_id": other, "shoppers": 1, "span_s": 1}]}),
        (f"{base}/forecast", {"sessions": [{"session_id": sale.session_id, "shoppers": 1, "span_s": 0}]}),
        (f"{base}/forecast", {"sessions": [{"session_id": sale.session_id, "shoppers": 1, "span_s": 9},
                                           {"session_id": sale.session_id, "shoppers": 2, "span_s": 9}]}),
    ]  # fmt: skip
    for path, body in refusals:
        assert_refused(api.client.put(path, json=body, headers=api.admin), 422, "VALIDATION_ERROR")
    assert_refused(
        api.client.put("/admin/campaigns/999/targets", json={}, headers=api.admin), 404, "NOT_FOUND"
    )
    assert_refused(api.client.get(f"{base}/forecast?from_campaign=999", headers=api.admin), 404, "NOT_FOUND")

    assert api.client.get(f"{base}/targets", headers=api.admin).json() == {"targets": {"gmv_cents": 100}}
    assert api.client.get(f"{base}/channels", headers=api.admin).json() == CHANNELS[:1]
    forecast = api.client.get(f"{base}/forecast", headers=api.admin).json()
    assert [(f["session_id"], f["shoppers"], f["span_s"]) for f in forecast] == [
        (sale.session_id, 50, 5),
        (sale.later_session_id, None, None),
    ]


def test_a_forecast_is_read_off_a_previous_campaigns_orders(api: Api, sale: Sale, clock: ManualClock) -> None:
    for n, user in enumerate(("ann", "bob", "cy")):
        clock.set(clock() + 20 * n)  # arrivals 0, 20 and 60 s after the open
        api.buy(user, sale.earbuds_id)
    api.buy("ann", sale.earbuds_id)  # a second order of the same shopper: still one participant
    drain_orders(api.platform)
    next_year, (first, later) = another_campaign(api)

    forecast = api.client.get(
        f"/admin/campaigns/{next_year}/forecast?from_campaign={sale.campaign_id}", headers=api.admin
    ).json()

    assert [(f["session_id"], f["shoppers"], f["span_s"]) for f in forecast] == [
        (first, 3, 60),
        (later, 0, 1),  # nobody came to the later session
    ]


def another_campaign(api: Api) -> tuple[int, list[int]]:
    """A campaign a year later with two sessions (10:00 and 15:00); return its id and theirs."""
    year = timedelta(days=365)

    def post(path: str, body: dict[str, str]) -> int:
        created = api.client.post(path, json=body, headers=api.admin)
        assert created.status_code == 201, created.text
        return int(created.json()["id"])

    campaign = post(
        "/admin/campaigns",
        {
            "name": "Next year",
            "starts_at": (T0 + year).isoformat(),
            "ends_at": (T0 + year + timedelta(days=1)).isoformat(),
        },
    )
    sessions = [
        post(
            f"/admin/campaigns/{campaign}/sessions",
            {
                "name": f"{hours}h",
                "starts_at": (T0 + year + timedelta(hours=hours)).isoformat(),
                "ends_at": (T0 + year + timedelta(hours=hours, minutes=10)).isoformat(),
            },
        )
        for hours in (0, 5)
    ]
    return campaign, sessions
