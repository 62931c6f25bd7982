"""The rules of when a message may go out: quiet hours, frequency caps, opt-outs, reminder steps. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from flashsale.domain.errors import ErrorCode, FlashSaleError

DAY_MIN = 24 * 60
CAP_WINDOW_S = 24 * 3600  # the frequency cap counts messages sent in the rolling last day
DEFAULT_QUIET = "00:00-09:00,11:30-14:00,21:00-24:00"  # the shop's rest hours, in the shopper's zone
CHANNELS = ("email", "sms", "im", "webhook")


@dataclass(frozen=True, slots=True)
class Window:
    """A quiet span of the local day in minutes since midnight, `start` included, `end` excluded."""

    start: int
    end: int

    def covers(self, minute: int) -> bool:
        return self.start <= minute < self.end


def _minute_of(text: str) -> int:
    hours, _, minutes = text.strip().partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= DAY_MIN or not 0 <= int(minutes or 0) < 60:
        raise ValueError(f"{text!r} is not a time of day")
    return value


@dataclass(frozen=True, slots=True)
class QuietHours:
    """The local times of day when a channel must stay silent."""

    windows: tuple[Window, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> QuietHours:
        """Read `"00:00-09:00,21:00-24:00"` (empty: never quiet); raise ValueError naming a bad part."""
        windows = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            start, sep, end = part.partition("-")
            if not sep:
                raise ValueError(f"{part!r} is not a HH:MM-HH:MM span")
            window = Window(_minute_of(start), _minute_of(end))
            if window.start >= window.end:
                raise ValueError(f"{part!r} ends before it starts (split a span over midnight in two)")
            windows.append(window)
        return cls(tuple(sorted(windows, key=lambda w: w.start)))

    def quiet_at(self, minute: int) -> bool:
        return any(w.covers(minute) for w in self.windows)

    def next_allowed(self, at: float, tz: ZoneInfo) -> float | None:
        """Return `at` if it is allowed, else the first allowed minute after it; None if never allowed.

        The answer is a whole local minute (the end of the quiet span), computed in `tz` so a
        shopper in another zone is not woken at their night.
        """
        local = datetime.fromtimestamp(at, tz)
        moved = False
        for _ in range(2 * len(self.windows) + 2):  # each step leaves one window; two days cover all
            minute = local.hour * 60 + local.minute
            window = next((w for w in self.windows if w.covers(minute)), None)
            if window is None:
                return local.timestamp() if moved else at
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
            local = (midnight + timedelta(minutes=window.end)).replace(tzinfo=tz)
            moved = True
        return None


class Outcome(StrEnum):
    SEND = "send"
    DEFER = "defer"  # not now: try again at `Verdict.at`
    DROP = "drop"  # never: `Verdict.reason` says why


class Reason(StrEnum):
    """Why a message was held back; the delivery log and the reports count these."""

    QUIET_HOURS = "quiet_hours"  # deferred, or dropped as it would land after it stops mattering
    CAP = "cap"
    OPTED_OUT = "opted_out"
    ORDER_CLOSED = "order_closed"  # paid, expired or cancelled meanwhile
    NO_ADDRESS = "no_address"
    TOO_LATE = "too_late"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    at: float | None = None
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """What the rules need to know about the shopper at the moment of sending."""

    tz: ZoneInfo
    opted_out: bool
    has_address: bool
    sent_in_window: int  # messages sent (or being sent) to them in the last CAP_WINDOW_S


def decide(
    *,
    now: float,
    quiet: QuietHours,
    cap: int,
    recipient: Recipient,
    order_open: bool,
    expires_at: float | None,
) -> Verdict:
    """Decide whether a due message goes out now, waits for the end of quiet hours, or is dropped.

    Checked in this order, so the log names the most final reason: the order closed, the
    shopper opted out, no address, past its expiry, quiet hours (wait, or drop if the wait ends
    at or after `expires_at`), the frequency cap.
    """
    if not order_open:
        return Verdict(Outcome.DROP, reason=Reason.ORDER_CLOSED)
    if recipient.opted_out:
        return Verdict(Outcome.DROP, reason=Reason.OPTED_OUT)
    if not recipient.has_address:
        return Verdict(Outcome.DROP, reason=Reason.NO_ADDRESS)
    if expires_at is not None and now >= expires_at:
        return Verdict(Outcome.DROP, reason=Reason.TOO_LATE)
    allowed = quiet.next_allowed(now, recipient.tz)
    if allowed is None or (expires_at is not None and allowed >= expires_at):
        return Verdict(Outcome.DROP, reason=Reason.QUIET_HOURS)
    if allowed > now:
        return Verdict(Outcome.DEFER, at=allowed, reason=Reason.QUIET_HOURS)
    if recipient.sent_in_window >= cap:
        return Verdict(Outcome.DROP, reason=Reason.CAP)
    return Verdict(Outcome.SEND, at=now)


def reminder_times(
    placed_at: float, expires_at: float, steps_min: tuple[int, ...]
) -> list[tuple[int, float]]:
    """Return (step, due time) of each 催付 step T+k minutes after the order, while it can still be paid."""
    due = ((step, placed_at + minutes * 60.0) for step, minutes in enumerate(steps_min, start=1))
    return [(step, at) for step, at in due if at < expires_at]


def parse_steps(spec: str) -> tuple[int, ...]:
    """Read reminder steps `"5,10,14"` (minutes after the order, increasing); raise ValueError if not."""
    steps = tuple(int(p) for p in spec.split(",") if p.strip())
    if any(s <= 0 for s in steps) or list(steps) != sorted(set(steps)):
        raise ValueError(f"{spec!r}: reminder steps are increasing positive minutes")
    return steps


def zone(name: str) -> ZoneInfo:
    """Return the time zone `name`, or refuse with VALIDATION_ERROR."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise FlashSaleError(ErrorCode.VALIDATION_ERROR, f"unknown time zone {name!r}") from None


def check_channel(channel: str) -> str:
    """Return `channel` if it is one we deliver on, else refuse with VALIDATION_ERROR."""
    if channel not in CHANNELS:
        raise FlashSaleError(ErrorCode.VALIDATION_ERROR, f"channel must be one of {', '.join(CHANNELS)}")
    return channel
