"""A crowd released at once on a small quota, with threads and with asyncio tasks, on every engine.

Each round: about 1,300 clicks from 1,000 buyers (some ask for two, some double-click with one key,
some try to beat the limit with several keys), all released together. Then, while the first
winners pay or cancel concurrently, a second crowd buys what comes free. After each phase:
conservation, exactly min(quota, demand) units granted, every user within the limit, and no
request id granted twice. FLASHSALE_STRESS=full runs 20 rounds of 5,000 buyers.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode
from flashsale.domain.holds import Hold
from flashsale.ledger import Decision, Ledger
from tests.contract.checks import assert_conserved
from tests.contract.conftest import LedgerFactory
from tests.factories import (
    OPENS_AT,
    Request,
    crowd,
    demand,
    release_together,
    single_unit_buyers,
    stress_size,
    terms,
)

pytestmark = pytest.mark.stress

ROUNDS = stress_size(5, 20)
BUYERS = stress_size(1000, 5000)
LIMIT = 2
SOLD_OUT_QUOTA = 50
REFUSALS = {ErrorCode.SOLD_OUT, ErrorCode.INSUFFICIENT_STOCK, ErrorCode.LIMIT_EXCEEDED}

Storm = Callable[[Ledger, Sequence[Request]], list[Decision]]


def storm_with_threads(ledger: Ledger, clicks: Sequence[Request]) -> list[Decision]:
    """Start one thread per click, release them all at once through a barrier, return the answers."""
    return release_together(
        [
            partial(ledger.reserve, item_id=1, user_id=req.user_id, qty=req.qty, request_id=req.request_id)
            for req in clicks
        ]
    )


async def _storm_with_tasks(ledger: Ledger, clicks: Sequence[Request]) -> list[Decision]:
    gate = asyncio.Event()

    async def click(req: Request) -> Decision:
        await gate.wait()
        return await asyncio.to_thread(
            ledger.reserve, item_id=1, user_id=req.user_id, qty=req.qty, request_id=req.request_id
        )

    tasks = [asyncio.create_task(click(req)) for req in clicks]
    await asyncio.sleep(0)  # every task is now parked at the gate
    gate.set()
    return list(await asyncio.gather(*tasks))


def storm_with_tasks(ledger: Ledger, clicks: Sequence[Request]) -> list[Decision]:
    """Run one asyncio task per click on a 64-thread executor, all released by one event."""

    async def main() -> list[Decision]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(64))
        return await _storm_with_tasks(ledger, clicks)

    return asyncio.run(main())


STORMS = [pytest.param(storm_with_threads, id="threads"), pytest.param(storm_with_tasks, id="asyncio")]


def fresh_grants(clicks: Sequence[Request], answers: Sequence[Decision]) -> list[Hold]:
    """Check every answer is a grant, a replay of one, or a fair refusal; return the grants."""
    assert len(answers) == len(clicks)
    grants = [a.hold for a in answers if a.hold is not None and not a.replayed]
    by_key = {(h.user_id, h.request_id): h.hold_id for h in grants}
    assert len(by_key) == len(grants), "a request id was granted twice"
    for req, answer in zip(clicks, answers, strict=True):
        if answer.hold is None:
            assert answer.code in REFUSALS, answer
        else:
            assert (answer.hold.user_id, answer.hold.request_id, answer.hold.qty) == (
                req.user_id,
                req.request_id,
                req.qty,
            )
        if answer.replayed:
            assert answer.hold is not None and by_key[(req.user_id, req.request_id)] == answer.hold.hold_id
    return grants


def assert_within_limits(ledger: Ledger, live: Sequence[Hold]) -> None:
    """Check the ledger's per-user counts equal the live holds, and none exceeds the limit."""
    per_user = Counter[str]()
    for hold in live:
        per_user[hold.user_id] += hold.qty
    for user, units in per_user.items():
        assert ledger.used_by(1, user) == units <= LIMIT


def one_round(ledger: Ledger, storm: Storm, *, seed: int, quota: int | None) -> None:
    """Run both phases of one round; `quota=None` sizes the quota to the first crowd's exact demand."""
    rng = random.Random(seed)
    first = crowd(rng, buyers=BUYERS, limit=LIMIT, prefix="a")
    wanted = demand(first, LIMIT)
    quota = wanted if quota is None else quota
    assert quota <= single_unit_buyers(first) or quota == wanted  # so min(quota, demand) must sell
    ledger.configure(terms(1, quota=quota, per_user_limit=LIMIT))

    grants = fresh_grants(first, storm(ledger, first))

    level = assert_conserved(ledger, 1)
    assert sum(h.qty for h in grants) == level.held == min(quota, wanted)
    assert_within_limits(ledger, grants)

    # Phase two: the winners pay or cancel while a second crowd buys whatever comes free.
    second = crowd(rng, buyers=BUYERS // 2, limit=LIMIT, prefix="b")
    with ThreadPoolExecutor(16) as pool:
        paying = [pool.submit(ledger.confirm, h.hold_id) for h in grants[::2]]
        cancelling = [pool.submit(ledger.release, h.hold_id) for h in grants[1::2]]
        late = fresh_grants(second, storm(ledger, second))
    paid = [f.result() for f in paying]
    assert all(f.result().hold_id == h.hold_id for f, h in zip(cancelling, grants[1::2], strict=True))

    level = assert_conserved(ledger, 1)
    assert level.sold == sum(h.qty for h in paid)
    assert level.held == sum(h.qty for h in late)
    assert_within_limits(ledger, [*paid, *late])


@pytest.mark.parametrize("storm", STORMS)
def test_a_released_crowd_gets_exactly_the_quota_and_nobody_more_than_the_limit(
    make_ledger: LedgerFactory, storm: Storm
) -> None:
    for seed in range(ROUNDS):
        # Even rounds sell out 50 units; odd rounds bring exactly as many units as the crowd may take.
        quota = SOLD_OUT_QUOTA if seed % 2 == 0 else None
        one_round(make_ledger(ManualClock(OPENS_AT)), storm, seed=seed, quota=quota)
