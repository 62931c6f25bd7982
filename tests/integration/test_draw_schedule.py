"""Scheduled draws: "at 16:00, N winners among today's qualifying buyers", recomputable from the record."""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.draw_schedule import ScheduleStatus
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.jobs.draw_scheduler import draw_scheduler
from flashsale.services.draw_schedule import DrawSchedule
from flashsale.store.tables import DrawAwardRow
from tests.conftest import T0, Sale
from tests.engines import IN_PROCESS
from tests.factories import release_together
from tests.integration.draw_support import make_wheel, paid_order

# The sale's session runs 10:00-10:10 UTC, which is 18:00-18:10 in the pool's zone (UTC+8): the
# draw is "at 18:05, among today's buyers", today running from 16:00 UTC the day before.
DRAW_AT = T0 + timedelta(minutes=5)
UTC_8 = 480


def buyers(platform: Platform, sale: Sale) -> tuple[list[str], list[str]]:
    """Eight phone buyers (3,999.00: qualify) and five earbud buyers (499.00: do not); their ids."""
    phones = [f"p{n}" for n in range(8)]
    buds = [f"b{n}" for n in range(5)]
    for user in phones:
        paid_order(platform, user, sale.phone_id)
    for user in buds:
        paid_order(platform, user, sale.earbuds_id)
    return phones, buds


def recompute(seed: str, entrants: list[str], n: int) -> list[str]:
    """The auditor's recomputation from the documented rule alone: the n lowest SHA-256(seed|entrant)."""
    return sorted(entrants, key=lambda e: hashlib.sha256(f"{seed}|{e}".encode()).hexdigest())[:n]


@pytest.mark.engines(*IN_PROCESS)
def test_the_winners_are_recomputed_from_the_recorded_seed_and_entrants(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    wheel = make_wheel(platform, utc_offset_min=UTC_8)
    phones, _ = buyers(platform, sale)
    schedule = DrawSchedule(platform.deps, random.Random(16))
    planned = schedule.schedule(
        pool_id=wheel.pool_id, prize_id=wheel.phone_id, name="16:00 phone draw", run_at=DRAW_AT,
        winners=3, min_order_cents=150_000,
    )  # fmt: skip
    with pytest.raises(FlashSaleError) as early:
        schedule.run(planned.id)
    assert early.value.code is ErrorCode.CONFLICT  # not time yet

    clock.set(DRAW_AT.timestamp() + 60)
    paid_order(platform, "late", sale.phone_id)  # paid after the draw's time: not an entrant
    (ran,) = schedule.run_due()
    record = schedule.get(planned.id)
    assert record == ran and record.status is ScheduleStatus.DONE
    assert list(record.entrants or ()) == sorted(
        phones
    )  # only PAID orders over the threshold, before the time
    assert record.seed is not None and len(record.seed) == 64
    assert list(record.winner_ids or ()) == recompute(record.seed, list(record.entrants or ()), 3)
    assert record.verified()

    with platform.deps.read() as read:
        awarded = read.db.execute(
            select(DrawAwardRow.user_id, DrawAwardRow.prize_id).where(
                DrawAwardRow.scheduled_draw_id == planned.id
            )
        ).all()
    assert sorted(awarded) == sorted((user, wheel.phone_id) for user in record.winner_ids or ())
    # a scheduled draw's winners do not spend the pool's own stock of the prize
    assert {lv.prize_id: lv.awarded for lv in platform.draws.pool_view(wheel.pool_id).levels}[
        wheel.phone_id
    ] == 0
    assert schedule.run_due() == []


@pytest.mark.engines(*IN_PROCESS)
def test_a_scheduled_draw_runs_once_whatever_the_number_of_runners(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    wheel = make_wheel(platform)
    buyers(platform, sale)
    schedule = DrawSchedule(platform.deps)
    planned = schedule.schedule(
        pool_id=wheel.pool_id,
        prize_id=wheel.coupon_id,
        name="coupons",
        run_at=DRAW_AT,
        winners=4,
        min_order_cents=0,
    )
    clock.set(DRAW_AT.timestamp())

    def run() -> str:
        try:
            return schedule.run(planned.id).status.value
        except FlashSaleError as exc:
            return exc.code.value

    assert Counter(release_together([run] * 8)) == {"done": 1, "CONFLICT": 7}
    with platform.deps.read() as read:
        winners = read.db.scalars(
            select(DrawAwardRow.user_id).where(DrawAwardRow.scheduled_draw_id == planned.id)
        )
        assert len(set(winners)) == 4


def test_a_prize_of_another_pool_or_a_bad_count_is_refused(platform: Platform, sale: Sale) -> None:
    wheel = make_wheel(platform)
    schedule = DrawSchedule(platform.deps)
    plan = partial(schedule.schedule, pool_id=wheel.pool_id, name="x", run_at=DRAW_AT, min_order_cents=0)
    with pytest.raises(FlashSaleError) as zero:
        plan(prize_id=wheel.phone_id, winners=0)
    other = make_wheel(platform)
    with pytest.raises(FlashSaleError) as foreign:
        plan(prize_id=other.phone_id, winners=1)
    assert zero.value.code is foreign.value.code is ErrorCode.VALIDATION_ERROR
    assert schedule.all() == []


def test_the_scheduler_job_runs_a_draw_once_its_time_has_come(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    wheel = make_wheel(platform, utc_offset_min=UTC_8)
    buyers(platform, sale)
    schedule = DrawSchedule(platform.deps)
    planned = schedule.schedule(
        pool_id=wheel.pool_id,
        prize_id=wheel.coupon_id,
        name="job",
        run_at=DRAW_AT,
        winners=2,
        min_order_cents=0,
    )
    scheduler = draw_scheduler(schedule, interval_s=0.01)
    scheduler.start()
    try:
        clock.set(DRAW_AT.timestamp())
        deadline = time.monotonic() + 30  # a bound on waiting, not a timing assertion
        while schedule.get(planned.id).status is ScheduleStatus.PENDING and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        scheduler.stop()
    assert schedule.get(planned.id).verified() and scheduler.done == 1
