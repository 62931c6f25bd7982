"""Campaigns, their phases, and the timed flash sessions (秒杀时段) inside them."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_PAYMENT_WINDOW_S = 15 * 60
# A shopper needs at least a minute to pay; a hold kept for more than a day is stock withheld from
# the sale, not a payment window.
MIN_PAYMENT_WINDOW_S = 60
MAX_PAYMENT_WINDOW_S = 24 * 60 * 60

# Names the zone database ships that are not IANA zones: the host's own setting, a placeholder.
_NOT_IANA_ZONES = frozenset({"localtime", "posixrules", "Factory"})


class PhaseKind(StrEnum):
    """The classic rhythm of a big promotion."""

    WARM_UP = "warm_up"  # 蓄水: collect interest, coupons, reminders
    PRE_HEAT = "pre_heat"  # 预热: prices visible, carts filled
    MAIN = "main"  # 爆发: the sale itself
    ENCORE = "encore"  # 返场: last chance


class SessionState(StrEnum):
    UPCOMING = "upcoming"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Phase:
    kind: PhaseKind
    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        _check_range(self.starts_at, self.ends_at, f"phase {self.kind}")


@dataclass(frozen=True, slots=True)
class Campaign:
    """A promotion with a time range, phases and per-campaign settings (payment window)."""

    id: int
    name: str
    theme: str
    starts_at: datetime
    ends_at: datetime
    phases: tuple[Phase, ...] = ()
    payment_window_s: int = DEFAULT_PAYMENT_WINDOW_S
    # A load rehearsal's copy: not in the shop window, bought only with its rehearsal pass.
    rehearsal: bool = False

    def __post_init__(self) -> None:
        _check_range(self.starts_at, self.ends_at, "campaign")
        if not MIN_PAYMENT_WINDOW_S <= self.payment_window_s <= MAX_PAYMENT_WINDOW_S:
            raise ValueError(
                f"payment window must be {MIN_PAYMENT_WINDOW_S}..{MAX_PAYMENT_WINDOW_S} seconds,"
                f" not {self.payment_window_s}"
            )
        for phase in self.phases:
            if phase.starts_at < self.starts_at or phase.ends_at > self.ends_at:
                raise ValueError(f"phase {phase.kind} lies outside the campaign")
        kinds = [p.kind for p in self.phases]
        if len(set(kinds)) != len(kinds):
            raise ValueError("each phase kind may appear once per campaign")
        ordered = sorted(self.phases, key=lambda p: p.starts_at)
        for earlier, later in itertools.pairwise(ordered):
            if later.starts_at < earlier.ends_at:
                raise ValueError(f"phases {earlier.kind} and {later.kind} overlap")

    def phase_at(self, now: datetime) -> Phase | None:
        """Return the phase running at `now`, if any."""
        return next((p for p in self.phases if p.starts_at <= now < p.ends_at), None)


@dataclass(frozen=True, slots=True)
class FlashSession:
    """A timed window in which a campaign's flash items can be bought: [starts_at, ends_at)."""

    id: int
    campaign_id: int
    name: str
    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        _check_range(self.starts_at, self.ends_at, "session")

    def state(self, now: datetime) -> SessionState:
        if now < self.starts_at:
            return SessionState.UPCOMING
        if now < self.ends_at:
            return SessionState.OPEN
        return SessionState.CLOSED

    def is_open(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass(frozen=True, slots=True)
class DailySlot:
    """A time-of-day window such as 10:00–10:10, repeated every day of a campaign."""

    start: time
    end: time
    tz: str = "UTC"
    name: str = field(default="")

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("a slot's times are local to its `tz` and carry no zone of their own")
        if self.start == self.end:
            # `on` reads end <= start as crossing midnight, so this would silently become 24 hours.
            raise ValueError(f"slot {self.start:%H:%M}–{self.end:%H:%M} is empty: start and end are equal")
        if not is_iana_zone(self.tz):
            raise ValueError(f"unknown time zone {self.tz!r}: give an IANA name such as 'Asia/Shanghai'")

    @property
    def key(self) -> tuple[time, time, str]:
        """Return what makes two slots the same slot, whatever they are called."""
        return self.start, self.end, self.tz

    def on(self, day: date) -> tuple[datetime, datetime]:
        zone = ZoneInfo(self.tz)
        starts = datetime.combine(day, self.start, zone)
        ends = datetime.combine(day, self.end, zone)
        if ends <= starts:  # a slot like 23:50–00:10 crosses midnight
            ends += timedelta(days=1)
        return starts, ends


def distinct_slots(slots: Iterable[DailySlot]) -> list[DailySlot]:
    """Return the slots as a list, refusing the same slot (start, end, zone) given twice."""
    slots = list(slots)
    seen: set[tuple[time, time, str]] = set()
    for slot in slots:
        if slot.key in seen:
            raise ValueError(f"slot {slot.start:%H:%M}–{slot.end:%H:%M} {slot.tz} is given twice")
        seen.add(slot.key)
    return slots


def daily_session_windows(
    campaign: Campaign, slots: Iterable[DailySlot], *, limit: int | None = None
) -> list[tuple[str, datetime, datetime]]:
    """List (name, start, end) for every slot on every day the campaign covers, inside its range.

    Generation stops once more than `limit` windows exist, so a mistyped year costs nothing. The
    same slot twice, or slots whose sessions would overlap, are refused (ValueError): one request
    describes one timetable, and a timetable that overlaps itself is a typo.
    """
    slots = distinct_slots(slots)
    windows: list[tuple[str, datetime, datetime]] = []
    day = campaign.starts_at.date() - timedelta(days=1)
    # One day of slack on both sides: a slot in a zone ahead of or behind UTC may fall on another date.
    while day <= campaign.ends_at.date() + timedelta(days=1) and (limit is None or len(windows) <= limit):
        for slot in slots:
            starts, ends = slot.on(day)
            if starts >= campaign.starts_at and ends <= campaign.ends_at:
                label = slot.name or f"{slot.start:%H:%M}–{slot.end:%H:%M}"
                windows.append((f"{starts.date()} {label}", starts, ends))
        day += timedelta(days=1)
    windows.sort(key=lambda w: w[1])
    for (earlier, _, earlier_ends), (later, later_starts, _) in itertools.pairwise(windows):
        if later_starts < earlier_ends:
            raise ValueError(f"slots overlap: sessions {earlier!r} and {later!r}")
    return windows


def is_iana_zone(name: str) -> bool:
    """Tell whether `name` is an IANA time zone name such as 'Asia/Shanghai' or 'UTC'.

    ZoneInfo alone also opens host files ('localtime', 'posixrules') and refuses paths only by
    accident, so the zone list is the allow-list.
    """
    return name in _iana_zones()


@functools.cache
def _iana_zones() -> frozenset[str]:
    # Reference data read once per process (it walks the zone directory), like ZoneInfo's own cache.
    return frozenset(available_timezones()) - _NOT_IANA_ZONES


def _check_range(starts_at: datetime, ends_at: datetime, what: str) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError(f"{what} times must be timezone-aware")
    if ends_at <= starts_at:
        raise ValueError(f"{what} must end after it starts")
