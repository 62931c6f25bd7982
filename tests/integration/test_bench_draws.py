"""`python -m bench --only draws`: draws on one hot pool beside the flash ledger; its check can fail."""

from __future__ import annotations

import os
import random

import pytest
from bench.draws import DRAWS_PER_USER, POOL, check_pool, open_pool
from bench.workload import Request, Run, Shape

from flashsale.draws import MemoryDrawLedger
from tests.integration.test_bench_smoke import run_bench
from tests.services import REDIS_URL

SHAPE = Shape(30, 1)  # ten users, two draws each


def test_the_check_fails_on_draws_the_engine_did_not_make_or_more_than_a_user_holds() -> None:
    ledger = MemoryDrawLedger(random.Random(3))  # seeded: these rolls leave a prize to every draw
    open_pool(ledger, SHAPE)
    told = [
        Request(POOL, r.user_id, r.request_id)
        for r in SHAPE.crowd()
        if ledger.draw(pool_id=POOL, user_id=r.user_id, request_id=r.request_id, day="2026-11-11").drawn
    ]
    assert len(told) == 10 * DRAWS_PER_USER
    assert check_pool(ledger, SHAPE, Run(1.0, [], told, 30)).ok
    assert not check_pool(ledger, SHAPE, Run(1.0, [], told[:-1], 30)).ok  # a draw the client never heard of
    assert not check_pool(ledger, SHAPE, Run(1.0, [], [*told, told[0]], 30)).ok  # one draw too many


@pytest.mark.redis
def test_quick_draws_bench_runs_both_engines_beside_the_flash_ledger() -> None:
    assert REDIS_URL is not None
    done = run_bench("draws", env={**os.environ, "FLASHSALE_BENCH_REDIS_URL": REDIS_URL})

    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| flash ledger", "| draw ledger"))]
    assert len(rows) == 4 and all(row.endswith("| OK |") for row in rows), done.stdout
    assert sum("× the flash ledger's reserve" in row for row in rows) == 2 and "FAILED" not in done.stdout
