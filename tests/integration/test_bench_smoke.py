"""`python -m bench --quick` runs end to end and checks what it measured; no timing is asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench.workload import Level, Request, Run, check_sale

from tests.services import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*names: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the quick benchmark suite for `names` in a subprocess from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", *names, "--out", "-"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def verdict_lines(stdout: str) -> list[str]:
    """Return the per-run lines, each of which must carry the run's conservation verdict."""
    return [line for line in stdout.splitlines() if "decisions/s —" in line]


def _run_granting(*users: str) -> Run:
    return Run(1.0, [], [Request(1, u, f"r{i}") for i, u in enumerate(users)], decisions=10)


def test_the_check_passes_only_a_sold_out_conserved_sale_within_the_limit() -> None:
    fair = _run_granting("a", "a", "b")
    assert check_sale([Level(1, 3, 0, 3, 0)], fair).ok
    assert not check_sale([Level(1, 3, 0, 3, 1)], fair).ok  # a unit out of nowhere
    assert not check_sale([Level(1, 4, 1, 3, 0)], fair).ok  # undersold although demand was higher
    assert not check_sale([Level(1, 4, 0, 4, 0)], fair).ok  # the engine holds more than it granted
    greedy = _run_granting("a", "a", "a")
    assert not check_sale([Level(1, 3, 0, 3, 0)], greedy).ok
    assert check_sale([Level(1, 3, 0, 3, 0)], greedy, user_limit_enforced=False).ok


def test_quick_memory_bench_passes_its_conservation_checks_and_prints_the_table() -> None:
    done = run_bench("memory")

    assert done.returncode == 0, done.stdout + done.stderr
    lines = verdict_lines(done.stdout)
    assert lines and all("conservation OK" in line for line in lines), done.stdout
    assert "| memory ledger, reserve | 1 hot item |" in done.stdout  # the Markdown table from --out -
    assert "FAILED" not in done.stdout


@pytest.mark.postgres
def test_quick_baseline_a_on_postgres_conserves_stock_and_gives_the_ratio() -> None:
    assert POSTGRES_URL is not None
    done = run_bench("baseline-a", "memory", env={**os.environ, "FLASHSALE_BENCH_POSTGRES_URL": POSTGRES_URL})

    assert done.returncode == 0, done.stdout + done.stderr
    baseline = [line for line in verdict_lines(done.stdout) if line.startswith("baseline A")]
    assert len(baseline) == 2 and all("conservation OK" in line for line in baseline), done.stdout
    assert "× A" in done.stdout and "FAILED" not in done.stdout


def test_quick_read_flood_bench_serves_every_get_and_conserves_stock_under_the_flood() -> None:
    done = run_bench("read-flood")

    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| HTTP buy path, embedded")]
    assert len(rows) == 4 and all(row.endswith("| OK |") for row in rows), done.stdout  # the Markdown table
    assert sum("with/without: p99" in row for row in rows) == 3  # two GET floods and the board viewers
    assert "events/s" in rows[-1]
    assert "FAILED" not in done.stdout


def test_quick_embedded_crowd_bench_reports_every_crowd_size_against_the_floor() -> None:
    done = run_bench("embedded")

    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| HTTP buy path, embedded")]
    assert len(rows) == 4 and all(row.endswith("| OK |") for row in rows), done.stdout
    crowds, limited = rows[:3], rows[3]
    assert all("of floor" in row for row in crowds)
    assert "of the 20-conn rate" in crowds[-1]
    assert "rate limits on" in limited and "of the same crowd without" in limited


def test_quick_checkout_bench_places_whole_carts_only_and_compares_with_the_buy_path() -> None:
    done = run_bench("checkout")

    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| HTTP ")]
    assert len(rows) == 3 and all(row.endswith("| OK |") for row in rows), done.stdout
    assert "POST /purchases" in rows[0]
    assert "checkouts/s" in rows[1] and "of the purchases/s above" in rows[1]
    assert "POST /coupons/claims" in rows[2] and "checkouts/s" in rows[2]


def test_quick_coupon_bench_hands_out_the_whole_wave_and_no_more() -> None:
    done = run_bench("coupons")

    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in verdict_lines(done.stdout) if line.startswith("coupon ledger")]
    assert lines and all("conservation OK" in line for line in lines), done.stdout
    assert "| coupon ledger, memory | 1 hot item |" in done.stdout


def test_quick_waiting_room_bench_answers_every_waiting_shopper_and_compares_in_one_run() -> None:
    done = run_bench("waiting-room")

    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| HTTP buy path, embedded")]
    assert len(rows) == 3 and all(row.endswith("| OK |") for row in rows), done.stdout
    assert "beside a waiting room" in rows[1] and "of its throughput" in rows[1]
    assert "polled flat out" in rows[2] and "× 429" in rows[2]
    assert "FAILED" not in done.stdout


def test_quick_board_viewers_bench_compares_each_run_with_viewers_to_the_one_alone_before_it() -> None:
    done = run_bench("board-viewers")

    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| HTTP buy path, embedded")]
    assert len(rows) == 2 and all(row.endswith("| OK |") for row in rows), done.stdout
    alone, viewers = rows
    assert "alone (pair 1)" in alone and "µs/purchase" in alone
    assert "with 500 board viewers (pair 1)" in viewers and "events/s" in viewers
    assert "with/without: p99" in viewers and "median of 1 pair(s): throughput" in viewers
    assert "FAILED" not in done.stdout


def test_quick_pays_bench_pays_every_order_once_one_by_one_and_in_batches() -> None:
    done = run_bench("pays")

    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| embedded (SQLite")]
    assert len(rows) == 2 and all(row.endswith("| OK |") for row in rows), done.stdout
    assert "1 pay/request" in rows[0] and "pay_many × 64" in rows[1]
    assert all("µs of CPU per pay" in row for row in rows)
