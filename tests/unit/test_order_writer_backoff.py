"""The order writer's wait between failed passes: short at first, bounded however long an outage lasts."""

from __future__ import annotations

from flashsale.jobs.order_writer import backoff_s


def test_the_backoff_doubles_from_a_tenth_of_a_second_up_to_five() -> None:
    assert [backoff_s(n) for n in range(1, 9)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_an_outage_of_days_keeps_the_backoff_bounded() -> None:
    # About a day of failed passes 5 s apart: an uncapped 2 ** n would overflow the float.
    assert backoff_s(20_000) == 5.0
