"""Two in-process ledgers over one database would each sell the whole quota: the second must not start."""

from __future__ import annotations

import pytest

from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.store.lease import LeaseTaken


def test_a_second_platform_on_the_same_sqlite_file_refuses_to_start(
    platform: Platform, settings: Settings, clock: ManualClock
) -> None:
    with pytest.raises(LeaseTaken, match="locked by another flashsale process"):
        build(settings, clock=clock)


def test_the_lease_is_free_again_once_the_first_platform_closes(
    platform: Platform, settings: Settings, clock: ManualClock
) -> None:
    platform.close()
    again = build(settings, clock=clock)
    again.close()
