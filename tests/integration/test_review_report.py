"""`flashsale report` and the review the demo writes: the files, their figures, and the demo's
numbers in them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flashsale.cli.main import app
from flashsale.demo.run import DemoOptions, run_demo

runner = CliRunner()


def test_the_demo_writes_a_review_with_its_own_numbers(tmp_path: Path) -> None:
    options = DemoOptions(seed=3, shoppers=1_500, quota_scale=0.05)
    report = run_demo(tmp_path / "data", options, review_dir=tmp_path / "review")
    assert report.review_path == tmp_path / "review" / "review.html"
    page = report.review_path.read_text(encoding="utf-8")
    assert page.count("<svg") == 5 and "id='kpis'" in page  # sales, curves, statuses, channels, coupons
    (figures,) = json.loads((tmp_path / "review" / "review.json").read_text(encoding="utf-8"))
    kpis = figures["kpis"]
    # The campaign's figures: its flash items and the regular items its basket shoppers bought.
    assert kpis["gmv_cents"] == report.campaign_total("revenue_cents") > report.total("revenue_cents")
    assert kpis["orders_paid"] == report.campaign_total("paid_orders")
    assert kpis["units_sold"] == report.campaign_total("sold")  # everything held was paid or went back
    with (tmp_path / "review" / "kpis.csv").open(encoding="utf-8") as table:
        rows = {row[0]: row[1] for row in csv.reader(table)}
    assert rows["GMV"] == str(report.campaign_total("revenue_cents"))
    # The demo's operator entered targets and channels: every unit sold meets the units target,
    # and the channels' attributed GMV is their share of the demo's own GMV.
    assert "data-kpi='units_sold' data-met='true'" in page
    goals = json.loads((tmp_path / "review" / "goals.json").read_text(encoding="utf-8"))
    assert {t["kpi"]: t["achieved"] for t in goals["targets"]}["units_sold"] == report.campaign_total("sold")
    search = next(c for c in goals["channels"]["channels"] if c["channel"]["name"] == "search")
    assert search["channel"]["attributed_gmv_cents"] == report.campaign_total("revenue_cents") * 45 // 100
    # The promotions' section: the coupon and the 满减 as the demo's audit counted them, the winners.
    assert "id='promotion-coupons'" in page and "id='free-orders'" in page
    promotions = json.loads((tmp_path / "review" / "promotions.json").read_text(encoding="utf-8"))
    audit = report.promotions
    assert audit is not None
    by_kind = {c["promotion"]: c for c in promotions["coupons"]}
    coupon = by_kind[False]
    assert coupon["kept"] == audit.coupons_redeemed
    # Given back: after every line ended (the demo's count), and from checkouts refused with it.
    back = audit.coupons_given_back
    assert back <= coupon["given_back"] <= back + audit.checkouts_refused
    assert by_kind[False]["discount_cents"] == audit.coupon_spent_cents
    assert by_kind[True]["discount_cents"] == audit.promotion_discount_cents == audit.promotion_spent_cents
    won = [(w["slot"], w["user_id"], w["rebate_cents"]) for w in promotions["free_orders"]]
    assert won == [(w.slot, w.user_id, w.rebate_cents) for w in audit.winners]


def test_flashsale_report_writes_the_files_and_compares_two_campaigns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    run_demo(data, DemoOptions(seed=5, shoppers=1_000, quota_scale=0.05))
    monkeypatch.setenv("FLASHSALE_DATA_DIR", str(data))
    done = runner.invoke(app, ["report", "1", "--compare", "1", "--out", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert "review written" in done.output
    page = (tmp_path / "out" / "review.html").read_text(encoding="utf-8")
    assert page.count("<th>Phone X launch</th>") == 2 and "+0.0%" in page  # compared with itself
    assert runner.invoke(app, ["report", "99", "--out", str(tmp_path / "none")]).exit_code == 1
    assert "--compare" in runner.invoke(app, ["report", "--help"]).output
