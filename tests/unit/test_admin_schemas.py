"""Operator bodies are strict: no bool for a number, no text for a number, no number for a date.

FastAPI validates a body as the Python value of the parsed JSON; pydantic's JSON mode is checked
alongside so the rules do not depend on which of the two a future FastAPI uses.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from flashsale.api.schemas import (
    CampaignIn,
    CampaignPatch,
    DailySessionsIn,
    ItemIn,
    ItemPatch,
    PhaseIn,
    ProductIn,
    ProductPatch,
    SessionIn,
    SessionPatch,
    SlotIn,
)
from flashsale.domain.errors import FlashSaleError

Body = dict[str, Any]
# Each field below is one parametrized case: a few dozen draws each keep the unit folder fast.
PER_FIELD = settings(max_examples=25)
WHEN, LATER = "2026-11-11T10:00:00+08:00", "2026-11-12T10:00:00Z"
VALID: dict[type[BaseModel], Body] = {
    CampaignIn: {"name": "C", "starts_at": WHEN, "ends_at": LATER},
    CampaignPatch: {},
    PhaseIn: {"kind": "main", "starts_at": WHEN, "ends_at": LATER},
    SessionIn: {"name": "10:00", "starts_at": WHEN, "ends_at": LATER},
    SessionPatch: {},
    SlotIn: {"start": "10:00", "end": "10:10"},
    DailySessionsIn: {"slots": [{"start": "10:00", "end": "10:10"}]},
    ProductIn: {"sku": "S", "name": "N", "list_price_cents": 100, "stock": 5},
    ProductPatch: {},
    ItemIn: {"session_id": 1, "product_id": 1, "flash_price_cents": 50, "quota": 5},
    ItemPatch: {},
}
INT_FIELDS = [
    (CampaignIn, "payment_window_s"),
    (CampaignPatch, "payment_window_s"),
    (ProductIn, "list_price_cents"),
    (ProductIn, "stock"),
    (ProductPatch, "list_price_cents"),
    (ProductPatch, "stock"),
    (ItemIn, "session_id"),
    (ItemIn, "product_id"),
    (ItemIn, "flash_price_cents"),
    (ItemIn, "quota"),
    (ItemIn, "per_user_limit"),
    (ItemPatch, "flash_price_cents"),
    (ItemPatch, "quota"),
    (ItemPatch, "per_user_limit"),
]
BOOL_FIELDS = [
    (ItemIn, "coupons_allowed"),
    (ItemIn, "allow_above_list_price"),
    (ItemPatch, "coupons_allowed"),
    (ItemPatch, "allow_above_list_price"),
    (ProductPatch, "allow_above_list_price"),
]
DATE_FIELDS = [
    (CampaignIn, "starts_at"),
    (CampaignPatch, "ends_at"),
    (PhaseIn, "starts_at"),
    (SessionIn, "starts_at"),
    (SessionPatch, "starts_at"),
]
MODES: dict[str, Callable[[type[BaseModel], Body], BaseModel]] = {
    "python": lambda model, body: model.model_validate(body),
    "json": lambda model, body: model.model_validate_json(json.dumps(body)),
}


def refused(model: type[BaseModel], body: Body) -> None:
    """Check both validation modes refuse the body."""
    for validate in MODES.values():
        with pytest.raises(ValidationError):
            validate(model, body)


def accepted(model: type[BaseModel], body: Body) -> list[BaseModel]:
    """Validate the body in both modes; return both results."""
    return [validate(model, body) for validate in MODES.values()]


@pytest.mark.parametrize("model", VALID, ids=lambda m: m.__name__)
def test_the_plain_bodies_used_below_are_valid(model: type[BaseModel]) -> None:
    first, second = accepted(model, VALID[model])
    assert first == second


numbers_in_disguise = (
    st.booleans()
    | st.integers(-(10**6), 10**6).map(str)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.just("7")
    | st.just(" 7")
    | st.none().map(lambda _: [7])
)


@pytest.mark.parametrize(("model", "field"), INT_FIELDS, ids=lambda v: getattr(v, "__name__", v))
@PER_FIELD
@given(value=numbers_in_disguise)
def test_a_number_field_takes_only_a_json_integer(model: type[BaseModel], field: str, value: Any) -> None:
    refused(model, {**VALID[model], field: value})


@pytest.mark.parametrize(("model", "field"), BOOL_FIELDS, ids=lambda v: getattr(v, "__name__", v))
@PER_FIELD
@given(value=st.integers() | st.sampled_from(["true", "false", "1", "0", "yes", "on"]))
def test_a_flag_takes_only_true_or_false(model: type[BaseModel], field: str, value: Any) -> None:
    refused(model, {**VALID[model], field: value})


@pytest.mark.parametrize(("model", "field"), DATE_FIELDS, ids=lambda v: getattr(v, "__name__", v))
@PER_FIELD
@given(value=st.integers(0, 2**40) | st.integers(0, 2**40).map(str) | st.floats(0, 2**40))
def test_a_moment_is_never_a_timestamp_number(model: type[BaseModel], field: str, value: Any) -> None:
    refused(model, {**VALID[model], field: value})


# ISO 8601 / RFC 3339 offsets are whole minutes (±HH:MM); Python can print finer ones, clients do not.
offsets = st.just(UTC) | st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(moment=st.datetimes(datetime(1971, 1, 1), datetime(2998, 12, 31), timezones=offsets))
def test_an_iso_moment_with_an_offset_is_read_alike_in_both_modes(moment: datetime) -> None:
    phases: list[Any] = accepted(PhaseIn, {**VALID[PhaseIn], "starts_at": moment.isoformat()})
    assert [p.starts_at for p in phases] == [moment.astimezone(UTC)] * 2


@given(text=st.text(max_size=40))
def test_any_text_for_a_moment_is_either_read_or_refused_never_an_error(text: str) -> None:
    for validate in MODES.values():
        with contextlib.suppress(ValidationError):
            validate(SessionPatch, {"starts_at": text})


@pytest.mark.parametrize("value", [36_000, 36_000.0, "36000", True])
def test_a_slot_time_is_iso_text_not_seconds(value: Any) -> None:
    refused(SlotIn, {**VALID[SlotIn], "start": value})


IANA = frozenset(available_timezones()) - {"localtime", "posixrules", "Factory"}


@given(name=st.text(max_size=64).filter(lambda name: name not in IANA))
def test_a_slot_zone_that_is_not_an_iana_name_is_refused(name: str) -> None:
    refused(SlotIn, {**VALID[SlotIn], "tz": name})


@pytest.mark.parametrize("name", ["localtime", "Factory", "posixrules", "posix/UTC", "/etc/localtime"])
def test_zone_names_the_host_has_but_iana_does_not_are_refused(name: str) -> None:
    refused(SlotIn, {**VALID[SlotIn], "tz": name})


def test_an_empty_or_repeated_slot_is_a_validation_error_at_the_edge() -> None:
    empty = DailySessionsIn.model_validate({"slots": [{"start": "10:00", "end": "10:00"}]})
    with pytest.raises(FlashSaleError, match="empty"):
        empty.to_domain()
    twice = DailySessionsIn.model_validate({"slots": [VALID[SlotIn], {**VALID[SlotIn], "name": "again"}]})
    with pytest.raises(FlashSaleError, match="twice"):
        twice.to_domain()


@pytest.mark.parametrize(
    ("model", "field", "low", "high"),
    [
        (CampaignIn, "payment_window_s", 60, 86_400),
        (CampaignPatch, "payment_window_s", 60, 86_400),
        (ItemIn, "per_user_limit", 1, 1000),
        (ItemPatch, "per_user_limit", 1, 1000),
    ],
)
def test_ranged_fields_refuse_just_outside_and_accept_the_ends(
    model: type[BaseModel], field: str, low: int, high: int
) -> None:
    for outside in (low - 1, high + 1):
        refused(model, {**VALID[model], field: outside})
    for inside in (low, high):
        accepted(model, {**VALID[model], field: inside})
