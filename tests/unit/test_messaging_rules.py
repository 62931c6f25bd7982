"""Messaging rules: rest hours in the shopper's zone, the order of verdicts, reminder steps, templates."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from flashsale.config import Settings
from flashsale.domain.errors import FlashSaleError
from flashsale.messaging.rules import (
    DEFAULT_QUIET,
    Outcome,
    QuietHours,
    Reason,
    Recipient,
    decide,
    parse_steps,
    reminder_times,
)
from flashsale.messaging.templates import BUILT_IN, Facts, Template, check_template, pick, render, yuan

REST = QuietHours.parse(DEFAULT_QUIET)
ZONES = st.sampled_from(["Asia/Shanghai", "America/New_York", "Europe/London", "UTC", "Asia/Kolkata"])
MOMENTS = st.floats(min_value=1.7e9, max_value=1.9e9, allow_nan=False)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_minute(epoch: float, tz: ZoneInfo) -> int:
    moment = datetime.fromtimestamp(epoch, tz)
    return moment.hour * 60 + moment.minute


@given(MOMENTS, ZONES)
def test_the_next_allowed_moment_is_outside_the_rest_hours_and_no_allowed_minute_is_skipped(
    epoch: float, name: str
) -> None:
    tz = ZoneInfo(name)
    allowed = REST.next_allowed(epoch, tz)
    assert allowed is not None and allowed >= epoch
    assert not REST.quiet_at(local_minute(allowed, tz))
    if allowed > epoch:  # every whole minute between was quiet
        assert datetime.fromtimestamp(allowed, tz).second == 0
        minute = epoch - epoch % 60 + 60
        while minute < allowed:
            assert REST.quiet_at(local_minute(minute, tz))
            minute += 60


def test_rest_hours_are_read_in_the_shoppers_zone() -> None:
    noon_utc = datetime(2026, 11, 11, 12, 0, tzinfo=UTC).timestamp()  # 20:00 in Shanghai, 07:00 in New York
    assert REST.next_allowed(noon_utc, SHANGHAI) == noon_utc
    new_york_nine = datetime(2026, 11, 11, 14, 0, tzinfo=UTC).timestamp()
    assert REST.next_allowed(noon_utc, ZoneInfo("America/New_York")) == new_york_nine


def test_a_channel_quiet_all_day_never_allows_a_message() -> None:
    assert QuietHours.parse("00:00-24:00").next_allowed(1.8e9, SHANGHAI) is None


@pytest.mark.parametrize("spec", ["9-8", "25:00-26:00", "09:00", "10:00-10:00", "08:61-09:00"])
def test_unreadable_rest_hours_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        QuietHours.parse(spec)


def recipient(**changes: object) -> Recipient:
    values: dict[str, object] = {"tz": SHANGHAI, "opted_out": False, "has_address": True, "sent_in_window": 0}
    values.update(changes)
    return Recipient(**values)  # type: ignore[arg-type]


EVENING = datetime(2026, 11, 11, 10, 0, tzinfo=UTC).timestamp()  # 18:00 in Shanghai
NIGHT = datetime(2026, 11, 11, 14, 0, tzinfo=UTC).timestamp()  # 22:00 in Shanghai


@given(
    order_open=st.booleans(),
    opted_out=st.booleans(),
    has_address=st.booleans(),
    sent=st.integers(0, 5),
    cap=st.integers(0, 5),
    night=st.booleans(),
    expires_in=st.none() | st.floats(1, 3 * 86400),
)
def test_a_message_goes_out_only_when_every_rule_allows_it_and_a_deferral_lands_before_expiry(
    order_open: bool,
    opted_out: bool,
    has_address: bool,
    sent: int,
    cap: int,
    night: bool,
    expires_in: float | None,
) -> None:
    now = NIGHT if night else EVENING
    expires_at = None if expires_in is None else now + expires_in
    who = recipient(opted_out=opted_out, has_address=has_address, sent_in_window=sent)
    verdict = decide(
        now=now, quiet=REST, cap=cap, recipient=who, order_open=order_open, expires_at=expires_at
    )
    if verdict.outcome is Outcome.SEND:
        assert order_open and not opted_out and has_address and sent < cap and not night
    elif verdict.outcome is Outcome.DEFER:
        assert night and verdict.at is not None and verdict.at > now
        assert expires_at is None or verdict.at < expires_at
    else:
        assert verdict.reason is not None
        assert not order_open or opted_out or not has_address or sent >= cap or night


def test_the_most_final_reason_is_named() -> None:
    closed = decide(
        now=NIGHT, quiet=REST, cap=0, recipient=recipient(opted_out=True), order_open=False, expires_at=None
    )
    assert closed.reason is Reason.ORDER_CLOSED
    late = decide(now=NIGHT, quiet=REST, cap=3, recipient=recipient(), order_open=True, expires_at=NIGHT + 60)
    assert late.outcome is Outcome.DROP and late.reason is Reason.QUIET_HOURS


def test_reminder_steps_after_the_payment_deadline_are_not_planned() -> None:
    assert reminder_times(1000.0, 1000.0 + 15 * 60, (5, 10, 15, 20)) == [(1, 1300.0), (2, 1600.0)]
    assert parse_steps("5, 10,14") == (5, 10, 14)
    for bad in ("10,5", "0,5", "5,5"):
        with pytest.raises(ValueError):
            parse_steps(bad)


@given(st.integers(-(10**12), 10**12))
def test_yuan_shows_every_cent(cents: int) -> None:
    shown = yuan(cents)
    digits = shown.replace("¥", "").replace(".", "").lstrip("-")
    assert int(digits) == abs(cents) and shown.startswith("-¥" if cents < 0 else "¥")


def test_a_reminder_renders_in_the_members_locale_with_money_in_yuan_and_a_local_deadline() -> None:
    texts = {t.locale: t for t in BUILT_IN}
    facts = Facts("Ann", SHANGHAI, "O1", "Phone X", 399_900, EVENING + 15 * 60)
    chinese = render(pick(texts, "zh-CN") or BUILT_IN[0], facts)
    assert "¥3999.00" in chinese.body and "2026-11-11 18:15" in chinese.body and "Phone X" in chinese.body
    english = pick(texts, "en-GB")
    assert english is not None and english.locale == "en"
    assert pick(texts, "fr") is texts["zh-CN"]  # the shop's default locale


@pytest.mark.parametrize("body", ["{price}", "{name!r}", "{0}", "{name:>10}", "{name", "  "])
def test_a_template_with_an_unknown_or_formatted_placeholder_is_refused(body: str) -> None:
    with pytest.raises(FlashSaleError):
        check_template(Template("t", "zh-CN", "s", body))


def test_a_template_needing_an_order_cannot_render_without_one() -> None:
    with pytest.raises(FlashSaleError):
        render(BUILT_IN[0], Facts("Ann", SHANGHAI))


@pytest.mark.parametrize(
    "setting",
    [
        {"messaging_quiet_hours": "21:00-09:00"},
        {"messaging_reminder_steps": "10,5"},
        {"messaging_default_tz": "Mars/Base"},
        {"messaging_quiet_hours_by_channel": {"fax": ""}},
        {"messaging_quiet_hours_by_channel": {"sms": "noon"}},
    ],
)
def test_settings_the_sender_cannot_read_refuse_to_load(setting: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**setting)  # type: ignore[arg-type]
