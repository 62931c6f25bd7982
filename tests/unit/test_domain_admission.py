"""Admission's pure rules (domain/admission.py): the hoarder verdict and payment window, the live-hold
caps' terms, the early crowd's order, the ETA."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashsale.domain.admission import (
    HoarderPolicy,
    HoldCaps,
    ItemAdmission,
    admission_eta_s,
    arrival_order,
    poll_after_s,
)
from flashsale.domain.errors import ErrorCode

steps = st.none() | st.integers(1, 20)
policies = st.builds(HoarderPolicy, steps, st.integers(1, 10), steps, steps)
counts = st.integers(0, 30)


@given(policies, counts, counts, counts, st.integers(1, 10))
def test_the_verdict_follows_the_policy(
    policy: HoarderPolicy, expiries: int, cancels: int, used: int, qty: int
) -> None:
    verdict = policy.verdict(expiries=expiries, cancels=cancels, used=used, qty=qty)
    blocked = (policy.block_after is not None and expiries >= policy.block_after) or (
        policy.cancel_limit is not None and cancels >= policy.cancel_limit
    )
    throttled = policy.throttle_after is not None and expiries >= policy.throttle_after
    if blocked:
        assert verdict is ErrorCode.HOARDER_BLOCKED
    elif throttled and used + qty > policy.throttled_limit:
        assert verdict is ErrorCode.HOARDER_THROTTLED
    else:
        assert verdict is None


@given(policies, counts, counts, counts, st.integers(1, 10))
def test_more_expiries_or_cancels_are_never_treated_more_kindly(
    policy: HoarderPolicy, expiries: int, cancels: int, used: int, qty: int
) -> None:
    severity = {None: 0, ErrorCode.HOARDER_THROTTLED: 1, ErrorCode.HOARDER_BLOCKED: 2}

    def judged(e: int, c: int) -> int:
        return severity[policy.verdict(expiries=e, cancels=c, used=used, qty=qty)]

    now = judged(expiries, cancels)
    assert judged(expiries + 1, cancels) >= now and judged(expiries, cancels + 1) >= now


@pytest.mark.parametrize(
    "bad", [{"throttle_after": 0}, {"block_after": -1}, {"throttled_limit": 0}, {"cancel_limit": 0}]
)
def test_a_policy_that_means_nothing_is_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        HoarderPolicy(**bad)


@given(st.sets(st.text(min_size=1, max_size=8), max_size=60), st.integers(0, 2**63 - 1))
def test_the_early_order_is_a_permutation_fixed_by_the_seed_alone(crowd: set[str], seed: int) -> None:
    order = arrival_order(crowd, seed)
    assert sorted(order) == sorted(crowd)
    assert arrival_order(sorted(crowd, reverse=True), seed) == order  # arrival order does not matter


def test_the_eta_is_the_place_over_the_measured_rate() -> None:
    assert admission_eta_s(10, admitted=0, elapsed_s=5) is None  # nothing measured yet
    assert admission_eta_s(10, admitted=20, elapsed_s=0) is None
    assert admission_eta_s(10, admitted=20, elapsed_s=4) == pytest.approx(2.0)  # 5 a second


def test_item_terms_refuse_a_k_or_window_out_of_range() -> None:
    for bad in ({"waiting_room_k": 0}, {"waiting_room_k": 1001}, {"buy_window_s": 0}):
        with pytest.raises(ValueError):
            ItemAdmission(1, 1, 0.0, 10.0, **bad)  # type: ignore[arg-type]


def test_pages_far_back_poll_less_often() -> None:
    assert poll_after_s(None) == 5.0  # nothing measured yet
    assert poll_after_s(2.0) == 1.0  # near the front: every second
    assert poll_after_s(40.0) == 10.0
    assert poll_after_s(10_000.0) == 60.0  # far back: once a minute


def test_only_throttled_shoppers_get_the_shorter_payment_window() -> None:
    policy = HoarderPolicy(throttle_after=2, payment_window_s=30)
    assert [policy.hold_ttl_s(expiries) for expiries in (0, 1, 2, 5)] == [None, None, 30, 30]
    assert HoarderPolicy(throttle_after=1).hold_ttl_s(3) is None  # no window named: the item's
    for bad in ({"payment_window_s": 30}, {"throttle_after": 1, "payment_window_s": 5}):
        with pytest.raises(ValueError, match="payment_window_s"):
            HoarderPolicy(**bad)  # type: ignore[arg-type]


def test_hold_caps_are_off_unless_named_and_at_least_one() -> None:
    assert not HoldCaps().active and HoldCaps(per_device=1).active
    for bad in ({"per_client": 0}, {"per_device": 1001}):
        with pytest.raises(ValueError):
            HoldCaps(**bad)
