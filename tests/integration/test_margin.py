"""The margin check over HTTP and from the CLI: a seeded loss-making item is flagged, a sound one is not."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from flashsale.bootstrap import Platform
from flashsale.cli.main import app
from flashsale.clock import ManualClock
from flashsale.domain.coupons import CouponKind, CouponTemplate
from tests.conftest import T0, Sale
from tests.integration.api_support import Api, assert_refused, open_api
from tests.integration.coupon_support import threshold_template


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


@pytest.fixture
def seeded(api: Api, sale: Sale) -> Sale:
    """The sale's earbuds (flash 499) take coupons and cost 420 + 30 shipping + 2 % fee; the phone does not
    take coupons. Coupons: a 满300减30 valid now, a 60 red packet valid now, and one valid only next year."""
    platform = api.platform
    platform.catalog.update_item(sale.earbuds_id, coupons_allowed=True)
    platform.coupons.create_template(threshold_template())
    red_packet = CouponTemplate(
        id=0,
        name="红包60",
        kind=CouponKind.AMOUNT,
        valid_from=T0,
        valid_until=T0 + timedelta(days=2),
        off_cents=6_000,
    )
    platform.coupons.create_template(red_packet)
    later = T0 + timedelta(days=365)
    platform.coupons.create_template(
        CouponTemplate(
            id=0,
            name="next year",
            kind=CouponKind.AMOUNT,
            valid_from=later,
            valid_until=later + timedelta(days=1),
            off_cents=40_000,
        )
    )
    for product_id, body in (
        (1, {"cost_cents": 200_000}),
        (2, {"cost_cents": 42_000, "shipping_cost_cents": 3_000, "platform_fee_bp": 200}),
    ):
        put = api.client.put(f"/admin/products/{product_id}/costs", json=body, headers=api.admin)
        assert put.status_code == 200, put.text
    return sale


def test_the_admin_route_flags_the_item_that_loses_money_at_its_worst_case(api: Api, seeded: Sale) -> None:
    report = api.client.get(f"/admin/campaigns/{seeded.campaign_id}/margin", headers=api.admin).json()
    by_item = {i["item_id"]: i for i in report["items"]}
    phone, buds = by_item[seeded.phone_id], by_item[seeded.earbuds_id]
    # The phone refuses coupons: 3,999 - 2,000 cost.
    assert (phone["worst_price_cents"], phone["margin_cents"], phone["loss"]) == (399_900, 199_900, False)
    # Earbuds 499: the red packet 60 first (439), then 满300减30 on 439 → 409.
    # Fee 2 % of 409 = 8.18; 409 - 420 - 30 - 8.18 = -49.18.
    assert buds["worst_price_cents"] == 40_900
    assert buds["platform_fee_cents"] == 818
    assert (buds["margin_cents"], buds["loss"]) == (-4_918, True)
    assert sorted(buds["offers"]) == ["#1 满300减30", "#2 红包60"]
    assert report["loss_makers"] == 1


def test_the_cli_prints_the_same_check_and_exits_1_on_a_loss(
    api: Api, seeded: Sale, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(platform.settings.data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
    cli = CliRunner(env={**env, "FLASHSALE_DATA_DIR": str(platform.settings.data_dir)})
    result = cli.invoke(app, ["margin", str(seeded.campaign_id), "--json"])
    assert result.exit_code == 1, result.output
    items = {i["item_id"]: i for i in json.loads(result.stdout)}
    assert items[seeded.earbuds_id]["margin_cents"] == -4_918 and not items[seeded.phone_id]["loss"]
    assert cli.invoke(app, ["margin", "99"]).exit_code == 1


def test_costs_are_validated_and_an_unknown_product_or_campaign_is_404(api: Api, sale: Sale) -> None:
    bad = api.client.put(
        "/admin/products/1/costs", json={"cost_cents": 1, "platform_fee_bp": 10_001}, headers=api.admin
    )
    assert_refused(bad, 422, "VALIDATION_ERROR")
    assert_refused(
        api.client.put("/admin/products/99/costs", json={"cost_cents": 1}, headers=api.admin),
        404,
        "NOT_FOUND",
    )
    assert_refused(api.client.get("/admin/campaigns/99/margin", headers=api.admin), 404, "NOT_FOUND")
    report = api.client.get(f"/admin/campaigns/{sale.campaign_id}/margin", headers=api.admin).json()
    assert report["loss_makers"] == 0  # costs default to 0: item creation is unchanged
