"""`flashsale messages …` from the command line, and the sender inside the server's jobs."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flashsale.bootstrap import build
from flashsale.cli.main import app
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.messaging.channels.outbox import read_outbox
from flashsale.services.orders import Buy
from tests.conftest import T0, make_sale


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    for name in [k for k in os.environ if k.startswith("FLASHSALE_")]:
        monkeypatch.delenv(name)
    return CliRunner(env={"FLASHSALE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})


def test_an_operator_sets_up_a_wave_and_dry_runs_it_from_the_command_line(cli: CliRunner) -> None:
    def ok(*args: str) -> str:
        result = cli.invoke(app, ["messages", *args])
        assert result.exit_code == 0, result.output
        return result.output

    ok("member", "u1", "Ann", "--email", "ann@example.com")
    ok("member", "u2", "Bob", "--phone", "+8613800000000", "--tz", "America/New_York")
    ok("template", "launch", "zh-CN", "--subject", "开售", "--body", "{name}，今晚开抢")
    ok("opt-out", "u2", "email")
    assert "wave 1 scheduled for 2030-01-01T20:00:00+08:00" in ok(
        "wave", "launch", "launch", "email", "--send-at", "2030-01-01T20:00+0800"
    )
    plan = ok("dry-run", "1")
    assert "Ann，今晚开抢" in plan and "2030-01-01T12:00:00+00:00" in plan and "not sent: opted_out" in plan
    assert "Phone X" in ok("preview", "order_reminder", "--locale", "en")
    assert "sent 0" in ok("run", "--once")


def test_a_bad_template_or_time_zone_is_refused_and_stores_nothing(cli: CliRunner) -> None:
    refused = cli.invoke(app, ["messages", "template", "x", "zh-CN", "--subject", "s", "--body", "{price}"])
    assert refused.exit_code == 2 and "VALIDATION_ERROR" in refused.output
    assert cli.invoke(app, ["messages", "member", "u1", "Ann", "--tz", "Mars/Base"]).exit_code == 2
    listed = cli.invoke(app, ["messages", "templates"]).output
    assert "order_reminder" in listed and " x " not in listed


def test_the_server_runs_the_sender_when_told_to(tmp_path: Path) -> None:
    clock = ManualClock(T0.timestamp())
    settings = Settings(
        data_dir=tmp_path,
        jwt_secret="test-jwt-secret-0123456789abcdef",
        admin_token="a",
        payment_secret="p",
        messaging_in_serve=True,
        messaging_reminder_channel="im",
        messaging_poll_s=0.01,
    )
    platform = build(settings, clock=clock)
    try:
        sale = make_sale(platform)
        order = platform.orders.buy(Buy("ann", sale.phone_id, 1, "k")).order
        clock.set((T0 + timedelta(minutes=5)).timestamp())
        platform.start_jobs()
        outbox = tmp_path / "outbox.jsonl"
        for _ in range(3000):  # the sender's thread writes it within a few passes; wait 30 s at most
            if read_outbox(outbox):
                break
            time.sleep(0.01)
        assert [line["key"] for line in read_outbox(outbox)] == [f"remind:{order.id}:1"]
    finally:
        platform.close()
    assert platform.messenger is None
