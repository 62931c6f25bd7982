"""Campaigns, phases, flash sessions and daily session windows (across midnight and time zones)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from flashsale.domain.campaign import (
    MAX_PAYMENT_WINDOW_S,
    MIN_PAYMENT_WINDOW_S,
    Campaign,
    DailySlot,
    FlashSession,
    Phase,
    PhaseKind,
    SessionState,
    daily_session_windows,
)

T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def campaign(*phases: Phase, starts_at: datetime = T0, days: int = 3, window_s: int = 900) -> Campaign:
    return Campaign(
        1, "Double 11", "singles day", starts_at, starts_at + timedelta(days=days), phases, window_s
    )


def phase(kind: PhaseKind, start_h: float, end_h: float) -> Phase:
    return Phase(kind, T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h))


# -- campaigns and phases -----------------------------------------------------------------------


def test_a_campaign_with_phases_in_order_is_valid() -> None:
    made = campaign(
        phase(PhaseKind.WARM_UP, 0, 24), phase(PhaseKind.MAIN, 24, 48), phase(PhaseKind.ENCORE, 48, 72)
    )

    assert [p.kind for p in made.phases] == [PhaseKind.WARM_UP, PhaseKind.MAIN, PhaseKind.ENCORE]


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [(T0, T0), (T0, T0 - timedelta(seconds=1)), (T0.replace(tzinfo=None), T0 + timedelta(days=1))],
    ids=["empty", "backwards", "naive"],
)
def test_a_campaign_must_end_after_it_starts_in_aware_time(starts_at: datetime, ends_at: datetime) -> None:
    with pytest.raises(ValueError):
        Campaign(1, "x", "y", starts_at, ends_at)


@pytest.mark.parametrize("window_s", [0, 1, MIN_PAYMENT_WINDOW_S - 1, MAX_PAYMENT_WINDOW_S + 1, 2**31])
def test_a_campaign_refuses_a_payment_window_outside_a_minute_to_a_day(window_s: int) -> None:
    with pytest.raises(ValueError, match="payment window"):
        campaign(window_s=window_s)


@pytest.mark.parametrize("window_s", [MIN_PAYMENT_WINDOW_S, 900, MAX_PAYMENT_WINDOW_S])
def test_a_payment_window_from_a_minute_to_a_day_is_accepted(window_s: int) -> None:
    assert campaign(window_s=window_s).payment_window_s == window_s


def test_a_phase_outside_the_campaign_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        campaign(phase(PhaseKind.ENCORE, 60, 80))


def test_overlapping_phases_are_refused_but_back_to_back_ones_are_fine() -> None:
    with pytest.raises(ValueError, match="overlap"):
        campaign(phase(PhaseKind.PRE_HEAT, 0, 25), phase(PhaseKind.MAIN, 24, 48))
    assert len(campaign(phase(PhaseKind.PRE_HEAT, 0, 24), phase(PhaseKind.MAIN, 24, 48)).phases) == 2


def test_a_phase_must_itself_be_a_forward_range() -> None:
    with pytest.raises(ValueError):
        phase(PhaseKind.MAIN, 5, 5)


def test_phase_at_finds_the_running_phase_start_inclusive_end_exclusive() -> None:
    made = campaign(phase(PhaseKind.PRE_HEAT, 0, 24), phase(PhaseKind.MAIN, 30, 48))

    assert made.phase_at(T0) == made.phases[0]
    assert made.phase_at(T0 + timedelta(hours=24)) is None  # the gap between the two
    assert made.phase_at(T0 + timedelta(hours=30)) == made.phases[1]
    assert made.phase_at(T0 + timedelta(hours=48)) is None


# -- session states -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset_s", "state"),
    [
        (-60, SessionState.UPCOMING),
        (0, SessionState.OPEN),
        (599.999, SessionState.OPEN),
        (600, SessionState.CLOSED),
    ],
)
def test_a_session_is_open_from_its_start_until_just_before_its_end(
    offset_s: float, state: SessionState
) -> None:
    session = FlashSession(1, 1, "10:00", T0, T0 + timedelta(minutes=10))
    now = T0 + timedelta(seconds=offset_s)

    assert session.state(now) is state
    assert session.is_open(now) is (state is SessionState.OPEN)


def test_session_state_does_not_depend_on_the_time_zone_it_is_asked_in() -> None:
    session = FlashSession(1, 1, "10:00", T0, T0 + timedelta(minutes=10))

    assert session.state(T0.astimezone(SHANGHAI)) is SessionState.OPEN  # 18:00 in Shanghai


def test_a_session_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError):
        FlashSession(1, 1, "bad", T0, T0)


# -- daily slots --------------------------------------------------------------------------------


def test_a_daily_slot_is_that_time_of_day_on_the_given_day() -> None:
    starts, ends = DailySlot(time(10), time(10, 10)).on(T0.date())

    assert (starts, ends) == (T0, T0 + timedelta(minutes=10))


def test_a_slot_that_crosses_midnight_ends_the_next_day() -> None:
    starts, ends = DailySlot(time(23, 50), time(0, 10)).on(T0.date())

    assert starts == datetime(2026, 11, 11, 23, 50, tzinfo=UTC)
    assert ends == datetime(2026, 11, 12, 0, 10, tzinfo=UTC)


def test_a_slot_in_shanghai_time_is_eight_hours_ahead_of_utc() -> None:
    starts, ends = DailySlot(time(20), time(20, 10), tz="Asia/Shanghai").on(T0.date())

    assert starts == datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
    assert ends - starts == timedelta(minutes=10)


def test_daily_windows_repeat_every_slot_on_every_campaign_day_in_order() -> None:
    slots = [DailySlot(time(15), time(15, 10)), DailySlot(time(10), time(10, 10), name="morning")]

    windows = daily_session_windows(campaign(days=3), slots)

    assert [w[1] for w in windows] == sorted(
        T0 + timedelta(days=d, hours=h) for d in range(3) for h in (0, 5)
    )
    assert windows[0][0] == "2026-11-11 morning" and windows[1][0] == "2026-11-11 15:00–15:10"
    assert all(end - start == timedelta(minutes=10) for _, start, end in windows)


def test_daily_windows_keep_only_the_slots_wholly_inside_the_campaign() -> None:
    made = Campaign(1, "x", "y", T0 + timedelta(minutes=5), T0 + timedelta(days=1, minutes=5))

    windows = daily_session_windows(made, [DailySlot(time(10), time(10, 10))])

    assert [w[1] for w in windows] == []  # 10:00 today starts too early, 10:00 tomorrow ends too late


def test_a_midnight_slot_counts_on_the_day_it_starts_and_must_fit_entirely() -> None:
    made = Campaign(1, "x", "y", T0, T0 + timedelta(days=2))  # 11th 10:00 to 13th 10:00

    windows = daily_session_windows(made, [DailySlot(time(23, 50), time(0, 10))])

    assert [(w[1].day, w[2].day) for w in windows] == [(11, 12), (12, 13)]


def test_shanghai_slots_land_on_shanghai_days_of_a_utc_campaign() -> None:
    # 11 Nov 00:00 to 13 Nov 00:00 in Shanghai, written in UTC.
    made = Campaign(
        1, "x", "y", datetime(2026, 11, 10, 16, tzinfo=UTC), datetime(2026, 11, 12, 16, tzinfo=UTC)
    )

    windows = daily_session_windows(made, [DailySlot(time(10), time(10, 10), tz="Asia/Shanghai")])

    assert [w[0] for w in windows] == ["2026-11-11 10:00–10:10", "2026-11-12 10:00–10:10"]
    assert [w[1].astimezone(SHANGHAI).hour for w in windows] == [10, 10]


def test_a_slot_on_the_last_local_day_of_a_zone_ahead_of_the_campaign_is_kept() -> None:
    # Until 12 Nov 23:00 UTC = 13 Nov 07:00 in Shanghai: the 13 Nov 00:00–01:00 Shanghai slot fits.
    made = Campaign(
        1, "x", "y", datetime(2026, 11, 10, 16, tzinfo=UTC), datetime(2026, 11, 12, 23, tzinfo=UTC)
    )

    windows = daily_session_windows(made, [DailySlot(time(0), time(1), tz="Asia/Shanghai")])

    assert [w[0] for w in windows] == [
        "2026-11-11 00:00–01:00",
        "2026-11-12 00:00–01:00",
        "2026-11-13 00:00–01:00",
    ]
