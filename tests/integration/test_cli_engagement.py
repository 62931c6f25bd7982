"""`flashsale groups settle` and `flashsale referral settle` on the embedded default."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flashsale.bootstrap import build
from flashsale.cli.main import app
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.domain.group_buy import GroupStatus
from flashsale.domain.orders import OrderStatus
from flashsale.store.repositories import from_epoch
from tests.factories import open_sale


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
    return CliRunner(env={**clean, "FLASHSALE_DATA_DIR": str(data_dir), "COLUMNS": "120"})


def test_settle_fails_a_group_whose_window_passed_and_refunds_its_payment(
    cli: CliRunner, data_dir: Path
) -> None:
    an_hour_ago = time.time() - 3600
    platform = build(Settings(data_dir=data_dir), clock=ManualClock(an_hour_ago))
    try:
        item_id = open_sale(
            platform, opens_at=from_epoch(an_hour_ago - 60), quota=5, per_user_limit=1, payment_window_s=600
        )
        deal = platform.groups.create_deal(item_id, size=3, price_cents=1_000, fill_window_s=60)
        group_id = platform.groups.open("lea", deal.id, "k").group.id
        platform.groups.pay(group_id, "lea")
    finally:
        platform.close()

    result = cli.invoke(app, ["groups", "settle"])
    assert (result.exit_code, result.stdout.strip()) == (0, "1 groups settled")
    assert cli.invoke(app, ["groups", "settle"]).stdout.strip() == "0 groups settled"
    platform = build(Settings(data_dir=data_dir))
    try:
        view = platform.groups.get(group_id)
        assert view.group.status is GroupStatus.FAILED
        assert [s.order_status for s in view.seats] == [OrderStatus.REFUNDED]
    finally:
        platform.close()


def test_referral_settle_on_a_fresh_database_settles_nothing(cli: CliRunner) -> None:
    result = cli.invoke(app, ["referral", "settle"])
    assert (result.exit_code, result.stdout.strip()) == (0, "0 referrals settled")
