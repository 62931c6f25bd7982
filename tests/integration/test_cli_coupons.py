"""`flashsale coupons`: a template, a wave and a run of codes written as CSV, on a fresh data dir."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flashsale.cli.main import app

WINDOW = ["--valid-from", "2026-10-10T00:00:00+08:00", "--valid-until", "2026-11-12T00:00:00+08:00"]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env file is read
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
    return CliRunner(env={**env, "FLASHSALE_DATA_DIR": str(tmp_path / "data")})


def test_coupons_help_lists_its_commands(cli: CliRunner) -> None:
    result = cli.invoke(app, ["coupons", "--help"])
    assert result.exit_code == 0
    for command in ("template", "templates", "wave", "codes", "export", "reload"):
        assert command in result.output


def test_a_template_a_wave_and_a_run_of_codes_as_csv(cli: CliRunner, tmp_path: Path) -> None:
    made = cli.invoke(
        app, ["coupons", "template", "满300减30", "--kind", "threshold", "--tier", "30000:3000", *WINDOW]
    )
    assert made.exit_code == 0, made.output
    assert "template 1 created" in made.output
    wave = cli.invoke(
        app, ["coupons", "wave", "1", "--starts-at", "2026-10-10T00:00:00+08:00", "--total", "100"]
    )
    assert wave.exit_code == 0 and "wave 1 created" in wave.output, wave.output
    out = tmp_path / "codes.csv"
    codes = cli.invoke(
        app,
        [
            "coupons",
            "codes",
            "1",
            "--starts-at",
            "2026-10-10T00:00:00+08:00",
            "--total",
            "25",
            "--out",
            str(out),
        ],
    )
    assert codes.exit_code == 0, codes.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == len({r["code"] for r in rows}) == 25
    assert {(r["wave_id"], r["template_id"], r["claimed_by"]) for r in rows} == {("2", "1", "")}
    again = tmp_path / "again.csv"
    assert cli.invoke(app, ["coupons", "export", "2", "--out", str(again)]).exit_code == 0
    assert again.read_text() == out.read_text()
    listed = cli.invoke(app, ["coupons", "templates"])
    assert "满300减30" in listed.output


def test_bad_input_is_refused_and_stores_nothing(cli: CliRunner) -> None:
    bad_tier = cli.invoke(
        app, ["coupons", "template", "x", "--kind", "threshold", "--tier", "300-30", *WINDOW]
    )
    assert bad_tier.exit_code == 2 and "THRESHOLD_CENTS:OFF_CENTS" in bad_tier.output
    no_zone = [*WINDOW[:1], "2026-10-10T00:00:00", *WINDOW[2:]]
    assert (
        cli.invoke(
            app, ["coupons", "template", "x", "--kind", "amount", "--off-cents", "5", *no_zone]
        ).exit_code
        == 2
    )
    no_amount = cli.invoke(app, ["coupons", "template", "x", "--kind", "amount", *WINDOW])
    assert no_amount.exit_code == 2
    unknown = cli.invoke(
        app, ["coupons", "wave", "7", "--starts-at", "2026-10-10T00:00:00+08:00", "--total", "5"]
    )
    assert unknown.exit_code == 1 and "no coupon template 7" in unknown.output
    listed = cli.invoke(app, ["coupons", "templates"])
    assert listed.exit_code == 0 and "x" not in listed.output.split("name")[-1]
