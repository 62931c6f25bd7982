"""The retention job: every serving process forgets old finished and sold holds now and then.

Several processes may run it at once: forgetting is idempotent (services/retention.py).
"""

from __future__ import annotations

import logging

from flashsale.jobs.periodic import PeriodicJob
from flashsale.services.retention import Retention

log = logging.getLogger(__name__)


def retention_job(retention: Retention, *, interval_s: float) -> PeriodicJob:
    """Run `Retention.forget_finished` every `interval_s`, not at start-up: nothing there is old yet."""

    def forget() -> int:
        done = retention.forget_finished()
        if done.forgotten or done.sold:
            log.info("retention forgot %d finished and %d sold holds", done.forgotten, done.sold)
        return done.forgotten + done.sold

    return PeriodicJob("retention", forget, interval_s=interval_s, at_start=False)
