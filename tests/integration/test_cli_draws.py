"""`flashsale draws ...` in process: a pool, a prize, a scheduled draw run and verified; refusals exit 1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flashsale.cli.main import app


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
    return CliRunner(env={**clean, "FLASHSALE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "160"})


def test_draws_help_lists_its_commands(cli: CliRunner) -> None:
    result = cli.invoke(app, ["draws", "--help"])
    assert result.exit_code == 0
    for command in ("pools", "show", "create-pool", "add-prize", "schedule", "run-due", "verify"):
        assert command in result.output


def test_a_pool_a_prize_and_a_scheduled_draw_from_the_command_line(cli: CliRunner) -> None:
    created = cli.invoke(
        app, ["draws", "create-pool", "Wheel", "--rule", "share:1:3", "--rule", "paid_order:2:5:150000"]
    )
    assert created.exit_code == 0, created.output
    pool = json.loads(created.output)
    assert [(r["source"], r["min_order_cents"]) for r in pool["rules"]] == [
        ("share", 0),
        ("paid_order", 150000),
    ]
    prize = cli.invoke(
        app, ["draws", "add-prize", "1", "¥50 off", "--kind", "coupon", "--weight", "1", "--stock", "5",
              "--coupon-template", "7"],
    )  # fmt: skip
    assert prize.exit_code == 0, prize.output
    shown = cli.invoke(app, ["draws", "show", "1"])
    assert "¥50 off" in shown.output and "coupon" in shown.output
    planned = cli.invoke(
        app,
        ["draws", "schedule", "1", "1", "16:00 draw", "--at", "2026-01-01T16:00:00+08:00", "--winners", "2"],
    )
    assert json.loads(planned.output)["status"] == "pending"
    unverified = cli.invoke(app, ["draws", "verify", "1"])
    assert unverified.exit_code == 1  # not run yet: nothing to verify
    ran = cli.invoke(app, ["draws", "run-due"])
    assert json.loads(ran.output)["status"] == "done"
    verified = cli.invoke(app, ["draws", "verify", "1"])
    assert verified.exit_code == 0 and json.loads(verified.output)["verified"]


REFUSED = [
    ["create-pool", "X", "--rule", "lottery-ticket"],
    ["create-pool", "X", "--rule", "share:1:3:0:9"],
    ["add-prize", "1", "x", "--kind", "coupon", "--weight", "1", "--stock", "1"],
    ["add-prize", "9", "x", "--kind", "points", "--weight", "1", "--stock", "1", "--points", "5"],
    ["show", "9"],
]


def test_refusals_exit_1_with_their_reason_and_change_nothing(cli: CliRunner) -> None:
    assert cli.invoke(app, ["draws", "create-pool", "Wheel"]).exit_code == 0
    for args in REFUSED:
        result = cli.invoke(app, ["draws", *args])
        assert result.exit_code == 1, args
        assert "refused:" in result.output
    assert cli.invoke(app, ["draws", "pools"]).output.count("Wheel") == 1
    assert "│ X " not in cli.invoke(app, ["draws", "pools"]).output
    shown = cli.invoke(app, ["draws", "show", "1"]).output
    assert "coupon" not in shown and "points" not in shown  # no prize was added
