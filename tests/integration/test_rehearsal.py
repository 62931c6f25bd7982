"""`flashsale rehearse` against a real `flashsale serve`: 2x a small forecast, on a throwaway copy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from flashsale.cli.main import app
from tests.integration.edge_server import SECRETS, serving

runner = CliRunner()
FORECAST = {"shoppers": 40, "span_s": 2}  # entered with `flashsale plan forecast`


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[httpx.Client]:
    """A `flashsale serve` on the embedded engine, and an admin client of it."""
    (tmp_path / "server").mkdir()
    with (
        serving(tmp_path / "server") as served,
        httpx.Client(
            base_url=f"http://127.0.0.1:{served.port}",
            headers={"Authorization": f"Bearer {SECRETS['FLASHSALE_ADMIN_TOKEN']}"},
        ) as client,
    ):
        yield client


def create_campaign(admin: httpx.Client) -> tuple[int, int, list[int]]:
    """A campaign whose one session opens tomorrow: a phone (quota 12, limit 1) and a case (20, limit 2)."""
    now = datetime.now(UTC)

    def post(path: str, body: dict[str, object]) -> dict[str, object]:
        response = admin.post(path, json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    campaign = post(
        "/admin/campaigns",
        {"name": "Launch", "starts_at": now.isoformat(), "ends_at": (now + timedelta(days=2)).isoformat()},
    )
    session = post(
        f"/admin/campaigns/{campaign['id']}/sessions",
        {
            "name": "10:00",
            "starts_at": (now + timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=1, minutes=10)).isoformat(),
        },
    )
    items = []
    for sku, quota, limit in (("PHONE", 12, 1), ("CASE", 20, 2)):
        product = post(
            "/admin/products", {"sku": sku, "name": sku.title(), "list_price_cents": 9_900, "stock": 50}
        )
        item = post(
            "/admin/items",
            {
                "session_id": session["id"],
                "product_id": product["id"],
                "flash_price_cents": 4_900,
                "quota": quota,
                "per_user_limit": limit,
            },
        )
        items.append(int(str(item["id"])))
    return int(str(campaign["id"])), int(str(session["id"])), items


def test_a_rehearsal_at_twice_the_forecast_reports_p99_and_no_oversell_on_a_copy_and_in_the_review(
    admin: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign, session, items = create_campaign(admin)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FLASHSALE_DATA_DIR", str(tmp_path / "server"))  # `flashsale report` reads it
    out = tmp_path / "reports"
    entry = f"{session}={FORECAST['shoppers']}/{FORECAST['span_s']}"
    planned = runner.invoke(app, ["plan", "forecast", str(campaign), entry, "--url", str(admin.base_url)])
    assert planned.exit_code == 0, planned.output

    done = runner.invoke(
        app, ["rehearse", str(campaign), "--url", str(admin.base_url), "--load", "2x", "--out", str(out)]
    )

    assert done.exit_code == 0, done.output
    assert "p99" in done.output and "the sale held" in done.output
    (written,) = out.glob("rehearsal-*.json")
    result = json.loads(written.read_text(encoding="utf-8"))
    assert result["load"] == 2.0 and result["shoppers"] == 2 * FORECAST["shoppers"]
    assert result["copy_campaign_id"] != campaign
    assert result["latency"]["p99_s"] >= result["latency"]["p50_s"] > 0
    assert result["requests"] == sum(
        result["latency_by_kind"][k]["requests"] for k in result["latency_by_kind"]
    )
    assert sum(second["requests"] for second in result["timeline"]) == result["requests"]
    assert result["oversell"] == 0 and result["undersell"] == 0 and result["faults"] == 0
    assert result["held"] is True
    assert result["errors"]["SOLD_OUT"] > 0  # 80 shoppers for 32 units: the copy sold out
    copied = {i["source_item_id"]: i for i in result["items"]}
    assert set(copied) == set(items)
    for item in copied.values():
        assert item["ledger_agrees_with_db"] and item["sold"] + item["held"] <= item["quota"]
    # The real campaign's stock is untouched: nothing held or sold of its items.
    for item_id in items:
        stock = admin.get(f"/admin/items/{item_id}/stats").json()["stock"]
        assert (stock["held"], stock["sold"], stock["available"]) == (0, 0, stock["quota"])

    # The operator enters targets and channels with `flashsale plan`; the campaign's review shows
    # them, and the rehearsal as its own section.
    url = ["--url", str(admin.base_url)]
    targets = runner.invoke(app, ["plan", "targets", str(campaign), "units_sold=32", "conversion=0.8", *url])
    assert targets.exit_code == 0, targets.output
    table = tmp_path / "channels.csv"
    table.write_text(
        "name,budget_cents,spend_cents,attributed_orders,attributed_gmv_cents\nsearch,10000,9000,0,0\n",
        encoding="utf-8",
    )
    channels = runner.invoke(app, ["plan", "channels", str(campaign), str(table), *url])
    assert channels.exit_code == 0, channels.output
    reviewed = runner.invoke(app, ["report", str(campaign), "--out", str(out)])
    assert reviewed.exit_code == 0, reviewed.output
    page = (out / "review.html").read_text(encoding="utf-8")
    assert "<section id='rehearsals'>" in page
    assert f"data-copy='{result['copy_campaign_id']}'" in page and "data-chart='rehearsal-latency'" in page
    assert f"{result['latency']['p99_s'] * 1000:,.1f} ms" in page
    assert "<section id='goals'>" in page and "data-kpi='units_sold' data-met='false'" in page
    assert (
        (out / "channels.csv")
        .read_text(encoding="utf-8")
        .splitlines()[1]
        .startswith("search,10000,9000,0,0,")
    )
