"""Scheduled draws: plan one, run the due ones, verify a run from its record.

A run reads the day's qualifying buyers (PAID orders over the threshold, paid from the pool's
midnight until the draw's time), draws a 256-bit seed from the injected RNG, picks the winners
(flashsale.domain.draw_schedule.winners) and, in one transaction, records seed, entrants and
winners and gives each winner an award of the draw's prize. The run is a compare-and-set from
pending: of two runners (two processes, a retry), one runs and the other is told CONFLICT.
"""

from __future__ import annotations

from datetime import datetime

from flashsale.domain.draw_schedule import ScheduledDraw
from flashsale.domain.draws import Award, AwardStatus, day_bounds
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.draws.rng import Rng, new_seed, system_rng
from flashsale.ledger.ids import new_hold_ids
from flashsale.services.catalog import _domain_check as domain_check
from flashsale.services.deps import Deps
from flashsale.store import draw_repository as repo
from flashsale.store.tables import ScheduledDrawRow


class DrawSchedule:
    def __init__(self, deps: Deps, rng: Rng | None = None) -> None:
        self.deps = deps
        self._rng = rng or system_rng()

    def schedule(
        self, *, pool_id: int, prize_id: int, name: str, run_at: datetime, winners: int, min_order_cents: int
    ) -> ScheduledDraw:
        """Plan a draw of `winners` winners of `prize_id` among the buyers of the day of `run_at`."""
        with self.deps.uow() as uow:
            repo.load_pool(uow.db, pool_id)
            if repo.load_prize(uow.db, prize_id).pool_id != pool_id:
                raise FlashSaleError(ErrorCode.VALIDATION_ERROR, f"prize {prize_id} is not in pool {pool_id}")
            domain_check(lambda: ScheduledDraw(0, pool_id, prize_id, name, run_at, winners, min_order_cents))
            row = ScheduledDrawRow(
                pool_id=pool_id, prize_id=prize_id, name=name, run_at=run_at, winners=winners,
                min_order_cents=min_order_cents, status="pending",
            )  # fmt: skip
            repo.add_rows(uow.db, [row])
            planned = repo.scheduled_of(row)
            uow.commit()
        return planned

    def get(self, draw_id: int) -> ScheduledDraw:
        with self.deps.read() as read:
            return repo.load_scheduled(read.db, draw_id)

    def all(self) -> list[ScheduledDraw]:
        with self.deps.read() as read:
            return repo.scheduled_draws(read.db)

    def run(self, draw_id: int) -> ScheduledDraw:
        """Run one scheduled draw now; CONFLICT when it is not due yet or ran already."""
        with self.deps.uow() as uow:
            before = repo.load_scheduled(uow.db, draw_id)
            pool = repo.load_pool(uow.db, before.pool_id)
            day = pool.day(before.run_at.timestamp())
            since, _ = day_bounds(day, pool.utc_offset_min)
            entrants = repo.qualifying_buyers(
                uow.db, since=since, until=before.run_at, min_order_cents=before.min_order_cents
            )
            now = self.deps.now()
            after = before.run(seed=new_seed(self._rng), entrants=entrants, at=now)
            if not repo.save_scheduled_run(uow.db, before, after):
                raise FlashSaleError(ErrorCode.CONFLICT, f"scheduled draw {draw_id} ran already")
            winners = after.winner_ids or ()
            request_id = f"scheduled:{draw_id}"  # one award per winner per scheduled draw
            awards = [
                Award(award_id, pool.id, user, request_id, before.prize_id, AwardStatus.AWARDED, day, now)
                for award_id, user in zip(new_hold_ids(len(winners)), winners, strict=True)
            ]
            repo.insert_awards(uow.db, awards, scheduled_draw_id=draw_id)
            uow.commit()
        return after

    def run_due(self) -> list[ScheduledDraw]:
        """Run every pending draw whose time has come; one that another runner took first is skipped."""
        with self.deps.read() as read:
            due = repo.scheduled_draws(read.db, due_by=self.deps.now())
        ran = []
        for planned in due:
            try:
                ran.append(self.run(planned.id))
            except FlashSaleError as exc:
                if exc.code is not ErrorCode.CONFLICT:
                    raise
        return ran
