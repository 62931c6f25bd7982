"""The `flashsale` command: the installed script in a subprocess, and each command in process."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flashsale.auth import verify_shopper_token
from flashsale.bootstrap import build
from flashsale.cli.main import app
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.services.orders import Buy
from flashsale.store.repositories import from_epoch
from tests.factories import open_sale

SCRIPT = Path(sys.executable).parent / "flashsale"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def env(data_dir: Path) -> dict[str, str]:
    """The environment of a fresh install: only FLASHSALE_DATA_DIR set, pointing at an empty dir."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
    return {**clean, "FLASHSALE_DATA_DIR": str(data_dir), "COLUMNS": "120"}


def run_script(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def cli(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    return CliRunner(env=env)


def test_help_lists_every_command(env: dict[str, str], tmp_path: Path) -> None:
    result = run_script(env, tmp_path, "--help")

    assert result.returncode == 0, result.stderr
    for command in ("demo", "serve", "token", "expire", "db"):
        assert command in result.stdout


def test_demo_help_shows_its_options(env: dict[str, str], tmp_path: Path) -> None:
    result = run_script(env, tmp_path, "demo", "--help")

    assert result.returncode == 0, result.stderr
    for option in ("--seed", "--shoppers", "--data-dir", "--concurrency", "--json"):
        assert option in result.stdout


def test_serve_refuses_several_workers_on_the_in_process_ledger(env: dict[str, str], tmp_path: Path) -> None:
    result = run_script(env, tmp_path, "serve", "--workers", "2")

    assert result.returncode == 2
    assert "in-process ledger" in result.stderr
    assert "--workers 1" in result.stderr


def test_db_upgrade_creates_the_schema_in_the_data_dir(
    env: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    result = run_script(env, tmp_path, "db", "upgrade")

    assert result.returncode == 0, result.stderr
    with sqlite3.connect(data_dir / "flashsale.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"campaigns", "flash_items", "orders", "payments"} <= tables


def test_db_url_names_the_sqlite_file_in_the_data_dir(cli: CliRunner, data_dir: Path) -> None:
    result = cli.invoke(app, ["db", "url"])

    assert result.exit_code == 0
    assert result.stdout.strip() == f"sqlite:///{data_dir / 'flashsale.db'}"


def test_token_is_signed_with_the_data_dirs_secret(cli: CliRunner, data_dir: Path) -> None:
    result = cli.invoke(app, ["token", "u00042", "--ttl", "600"])

    assert result.exit_code == 0
    secrets = json.loads((data_dir / "secrets.json").read_text())
    assert verify_shopper_token(secrets["jwt_secret"], result.stdout.strip()) == "u00042"


def test_admin_token_is_the_stored_operator_token(cli: CliRunner, data_dir: Path) -> None:
    result = cli.invoke(app, ["token", "--admin"])

    assert result.exit_code == 0
    secrets = json.loads((data_dir / "secrets.json").read_text())
    assert result.stdout.strip() == secrets["admin_token"]


def test_token_without_a_user_is_a_usage_error(cli: CliRunner) -> None:
    assert cli.invoke(app, ["token"]).exit_code == 2


def test_expire_on_a_fresh_database_expires_nothing(cli: CliRunner) -> None:
    result = cli.invoke(app, ["expire"])

    assert result.exit_code == 0
    assert result.stdout.strip() == "0 holds expired"


def test_forget_finished_on_a_fresh_database_forgets_nothing(cli: CliRunner) -> None:
    result = cli.invoke(app, ["forget-finished", "--older-than-hours", "1"])

    assert result.exit_code == 0
    assert (
        result.stdout.strip() == "0 finished holds forgotten (0 orders written first), 0 sold holds forgotten"
    )


def test_expire_writes_down_a_hold_whose_payment_window_passed(cli: CliRunner, data_dir: Path) -> None:
    an_hour_ago = time.time() - 3600
    platform = build(Settings(data_dir=data_dir), clock=ManualClock(an_hour_ago))
    try:
        item_id = open_sale(
            platform, opens_at=from_epoch(an_hour_ago - 60), quota=5, per_user_limit=1, payment_window_s=60
        )
        order = platform.orders.buy(Buy("u1", item_id, 1, "r1")).order
    finally:
        platform.close()

    result = cli.invoke(app, ["expire"])

    assert result.exit_code == 0
    assert result.stdout.strip() == "1 holds expired"
    with sqlite3.connect(data_dir / "flashsale.db") as db:
        assert db.execute("SELECT status FROM orders WHERE id = ?", (order.id,)).fetchone() == ("EXPIRED",)


def test_expire_refuses_while_another_process_owns_the_ledger(cli: CliRunner, data_dir: Path) -> None:
    running = build(Settings(data_dir=data_dir))
    try:
        result = cli.invoke(app, ["expire"])
    finally:
        running.close()

    assert result.exit_code == 1
    assert "refused" in result.stderr


def test_serve_refuses_a_database_whose_ledger_another_process_owns(
    env: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    running = build(Settings(data_dir=data_dir))
    try:
        result = run_script(env, tmp_path, "serve", "--port", "0")
    finally:
        running.close()

    assert result.returncode == 1
    assert "already runs the in-process ledger" in result.stderr


def test_demo_json_reports_a_clean_sell_out(cli: CliRunner) -> None:
    result = cli.invoke(app, ["demo", "--shoppers", "600", "--quota-scale", "0.06", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert (report["oversell"], report["undersell"]) == (0, 0)
    assert report["totals"]["sold"] == report["totals"]["quota"] == 210
    assert report["rejections"]["SOLD_OUT"] > 0


def test_demo_refuses_a_data_dir_that_holds_a_database(cli: CliRunner, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "flashsale.db").touch()

    result = cli.invoke(app, ["demo", "--data-dir", str(stale)])

    assert result.exit_code == 2
    assert "a database is there already" in result.output


def test_demo_refuses_a_crowd_too_small_to_sell_out(cli: CliRunner) -> None:
    result = cli.invoke(app, ["demo", "--shoppers", "50"])

    assert result.exit_code == 2
    assert "too few" in result.output
