"""Rules an operator's input must follow: daily slots, IANA zones, flash vs list price, per-user limit."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashsale.domain.campaign import Campaign, DailySlot, daily_session_windows, distinct_slots, is_iana_zone
from flashsale.domain.catalog import Product
from flashsale.domain.sale import MAX_QUANTITY_PER_REQUEST, FlashItem

T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
IANA = sorted(available_timezones() - {"localtime", "posixrules", "Factory"})
IANA_SET = frozenset(IANA)


def three_days() -> Campaign:
    return Campaign(1, "Double 11", "", T0, T0 + timedelta(days=3))


def phone(list_price_cents: int = 1000) -> Product:
    return Product(1, "PHONE-X", "Phone X", list_price_cents, stock=10)


# -- daily slots --------------------------------------------------------------------------------


@pytest.mark.parametrize("at", [time(0), time(10), time(23, 59, 59)])
def test_a_slot_that_starts_and_ends_at_the_same_time_is_empty_not_a_whole_day(at: time) -> None:
    with pytest.raises(ValueError, match="empty"):
        DailySlot(at, at)


def test_a_slot_with_a_zone_on_its_times_is_refused() -> None:
    with pytest.raises(ValueError, match="tz"):
        DailySlot(time(10, tzinfo=UTC), time(10, 10))


def test_the_same_slot_twice_is_refused_whatever_it_is_called() -> None:
    with pytest.raises(ValueError, match="twice"):
        distinct_slots([DailySlot(time(10), time(10, 10)), DailySlot(time(10), time(10, 10), name="again")])


def test_the_same_times_in_two_zones_are_two_slots() -> None:
    slots = [DailySlot(time(10), time(10, 10)), DailySlot(time(10), time(10, 10), tz="Asia/Shanghai")]
    assert distinct_slots(slots) == slots


@pytest.mark.parametrize(
    "slots",
    [
        [DailySlot(time(10), time(10, 30)), DailySlot(time(10, 15), time(10, 45))],
        [DailySlot(time(10), time(12)), DailySlot(time(10, 30), time(11))],  # one inside the other
        [DailySlot(time(23, 50), time(0, 10)), DailySlot(time(0), time(0, 5))],  # across midnight
        # The same instant written in two zones: 10:00 UTC is 18:00 in Shanghai.
        [DailySlot(time(10), time(10, 10)), DailySlot(time(18), time(18, 10), tz="Asia/Shanghai")],
    ],
    ids=["staggered", "nested", "midnight", "two-zones"],
)
def test_slots_whose_sessions_overlap_are_refused(slots: list[DailySlot]) -> None:
    with pytest.raises(ValueError, match="overlap"):
        daily_session_windows(three_days(), slots)


def test_back_to_back_slots_do_not_overlap() -> None:
    slots = [DailySlot(time(10), time(10, 10)), DailySlot(time(10, 10), time(10, 20))]
    windows = daily_session_windows(three_days(), slots)
    assert len(windows) == 6


clock_times = st.times().map(lambda t: t.replace(second=0, microsecond=0))
timetables = st.lists(
    st.tuples(clock_times, clock_times, st.sampled_from(["UTC", "Asia/Shanghai"])), max_size=4
)


@given(timetables)
def test_the_windows_of_any_accepted_timetable_never_overlap_and_stay_inside_the_campaign(
    timetable: list[tuple[time, time, str]],
) -> None:
    slots = [DailySlot(start, end, tz) for start, end, tz in timetable if start != end]
    made = three_days()
    try:
        windows = daily_session_windows(made, slots)
    except ValueError as refused:
        assert "twice" in str(refused) or "overlap" in str(refused)
        return
    for (_, _, earlier_ends), (_, later_starts, _) in itertools.pairwise(windows):
        assert earlier_ends <= later_starts
    assert all(made.starts_at <= s < e <= made.ends_at for _, s, e in windows)


# -- time zones ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "localtime",  # the host's own setting, whatever it is today
        "posixrules",
        "Factory",  # a placeholder zone whose abbreviation is "-00"
        "/usr/share/zoneinfo/UTC",
        "../zoneinfo/UTC",
        "posix/UTC",
        "right/UTC",
        "asia/shanghai",
        "UTC ",
        "",
        "Mars/Olympus_Mons",
        "+08:00",
    ],
)
def test_names_that_are_not_iana_zones_are_refused(name: str) -> None:
    assert not is_iana_zone(name)
    with pytest.raises(ValueError, match="time zone"):
        DailySlot(time(10), time(10, 10), tz=name)


@pytest.mark.parametrize("name", ["UTC", "Asia/Shanghai", "America/New_York", "Etc/GMT-8", "US/Pacific"])
def test_iana_names_including_links_are_accepted(name: str) -> None:
    assert DailySlot(time(10), time(10, 10), tz=name).tz == name


@given(st.text(max_size=40).filter(lambda name: name not in IANA_SET))
def test_any_text_that_is_not_an_iana_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        DailySlot(time(10), time(10, 10), tz=name)


@given(st.sampled_from(IANA))
def test_every_iana_name_makes_a_slot(name: str) -> None:
    assert DailySlot(time(10), time(10, 10), tz=name).on(T0.date())[0].tzinfo is not None


# -- flash price against list price -------------------------------------------------------------


@pytest.mark.parametrize("flash", [0, 999, 1000])
def test_a_flash_price_up_to_the_list_price_is_accepted(flash: int) -> None:
    phone().check_flash_price(flash)


def test_a_flash_price_above_the_list_price_needs_the_override() -> None:
    with pytest.raises(ValueError, match=r"above the list price 1000.*allow_above_list_price"):
        phone().check_flash_price(1001)
    phone().check_flash_price(1001, allow_above_list_price=True)


def test_lowering_a_list_price_below_a_live_items_flash_price_needs_the_override() -> None:
    live = {7: 900, 8: 500}
    with pytest.raises(ValueError, match="item\\(s\\) 7 "):
        phone().check_list_price_change(800, live, allow_above_list_price=False)
    phone().check_list_price_change(800, live, allow_above_list_price=True)
    phone().check_list_price_change(900, live, allow_above_list_price=False)  # equal is not above


def test_raising_a_list_price_never_needs_the_override() -> None:
    # Item 7 was priced above the list with the override; a higher list price does not make it worse.
    phone().check_list_price_change(1100, {7: 1500}, allow_above_list_price=False)


# -- per-user limit -----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1, MAX_QUANTITY_PER_REQUEST + 1, 2**31])
def test_a_per_user_limit_outside_one_to_the_request_maximum_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="per-user limit"):
        FlashItem(1, 1, 1, 100, 10, limit)


@pytest.mark.parametrize("limit", [1, MAX_QUANTITY_PER_REQUEST])
def test_a_per_user_limit_within_bounds_is_accepted(limit: int) -> None:
    assert FlashItem(1, 1, 1, 100, 10, limit).per_user_limit == limit
