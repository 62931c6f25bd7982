"""In a real browser (Debian's chromium through playwright): the live board moves with a sale run
against `flashsale serve` and ends equal to the ledger; a generated review shows its KPI table and
every chart rendered. Screenshots go to FLASHSALE_TEST_ARTIFACTS (default: the test's tmp dir)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from flashsale.auth import mint_shopper_token
from flashsale.bootstrap import build
from flashsale.config import Settings
from flashsale.demo.run import DemoOptions, run_demo
from tests.factories import open_sale
from tests.integration.edge_server import SECRETS, serving
from tests.services import CHROMIUM

pytestmark = pytest.mark.browser

QUOTA, BUYERS = 40, 8


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None
    with sync_playwright() as pw:
        # As root in a container chromium needs --no-sandbox; the system browser, no download.
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("FLASHSALE_TEST_ARTIFACTS", tmp_path))
    where.mkdir(parents=True, exist_ok=True)
    return where


def cell(page: Page, item_id: int, column: int) -> str:
    return page.locator(f"#ops tr[data-item='{item_id}'] td").nth(column).inner_text()


def test_the_board_moves_with_the_sale_and_ends_equal_to_the_ledger(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        jwt_secret=SECRETS["FLASHSALE_JWT_SECRET"],
        admin_token=SECRETS["FLASHSALE_ADMIN_TOKEN"],
        payment_secret=SECRETS["FLASHSALE_PAYMENT_SECRET"],
    )
    setup = build(settings)
    opens_at = datetime.now(UTC) - timedelta(minutes=1)
    item_id = open_sale(
        setup, opens_at=opens_at, hours=1, quota=QUOTA, per_user_limit=2, payment_window_s=900
    )
    setup.close()
    with serving(tmp_path) as served, httpx2.Client(base_url=f"http://127.0.0.1:{served.port}") as http:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{served.port}/board")
        page.wait_for_selector(f"#ops tr[data-item='{item_id}']")
        assert cell(page, item_id, 3) == str(QUOTA)  # available, before anyone bought
        page.screenshot(path=str(artifacts / "board-before.png"), full_page=True)

        for n in range(BUYERS):
            token = mint_shopper_token(SECRETS["FLASHSALE_JWT_SECRET"], f"u{n}", 3600, time.time())
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
            answer = http.post("/purchases", json={"item_id": item_id, "quantity": 2}, headers=headers)
            assert answer.status_code == 201, answer.text

        # The page follows the stream: within a few pushes it shows what the ledger says.
        held_cell = f"#ops tr[data-item='{item_id}'] td:nth-child(5)"
        page.wait_for_function(
            f"document.querySelector(\"{held_cell}\")?.textContent === '{2 * BUYERS}'", timeout=15_000
        )
        ledger = next(
            i for s in http.get("/board/view").json()["sessions"] for i in s["items"] if i["id"] == item_id
        )
        shown = [cell(page, item_id, c) for c in (2, 3, 4, 5, 6)]
        assert shown == [str(ledger[k]) for k in ("quota", "available", "held", "sold", "participants")]
        assert ledger["available"] == QUOTA - 2 * BUYERS
        card = page.locator("#shopper .session").first
        assert f"{BUYERS} people joined" in card.inner_text()
        page.screenshot(path=str(artifacts / "board-after.png"), full_page=True)
        page.close()


def test_a_review_shows_its_kpis_and_every_chart(browser: Browser, tmp_path: Path, artifacts: Path) -> None:
    options = DemoOptions(seed=2, shoppers=1_000, quota_scale=0.05)
    # In a thread of its own: the demo runs an event loop, and playwright's sync API holds one here.
    with ThreadPoolExecutor(1) as pool:
        report = pool.submit(run_demo, tmp_path / "data", options, review_dir=tmp_path / "review").result()
    assert report.review_path is not None
    page = browser.new_page()
    page.goto(report.review_path.as_uri())
    rows = page.locator("#kpis tbody tr")
    assert rows.count() == 11
    gmv = page.locator("#kpis tr[data-kpi='gmv_cents'] td").nth(1).inner_text()
    assert gmv == f"¥{report.total('revenue_cents') / 100:,.2f}"
    charts = page.locator("figure[data-chart] svg")
    assert charts.count() == 4  # sales per hour, sell-out curves, orders by status, channels
    for n in range(4):
        box = charts.nth(n).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50  # drawn, not empty
    page.screenshot(path=str(artifacts / "review.png"), full_page=True)
    page.close()
