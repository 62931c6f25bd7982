"""The draw scheduler: runs every scheduled draw whose time has come, in each serving process.

Several processes may run it (one per `serve` worker): a scheduled draw runs once whoever gets
there first, since its run is a compare-and-set from pending (services/draw_schedule.py), and the
others skip it.
"""

from __future__ import annotations

from flashsale.jobs.periodic import PeriodicJob
from flashsale.services.draw_schedule import DrawSchedule


def draw_scheduler(schedule: DrawSchedule, *, interval_s: float = 5.0) -> PeriodicJob:
    """Run the due scheduled draws every `interval_s` (`done`: how many ran), the first pass at once."""
    return PeriodicJob("draws", lambda: len(schedule.run_due()), interval_s=interval_s, at_start=True)
