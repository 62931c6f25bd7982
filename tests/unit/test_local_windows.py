"""LocalWindows answers every hit and every window's stats as `limits`' sliding window counter does."""

from __future__ import annotations

from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from flashsale.services.local_windows import SWEEP_EVERY_S, LocalWindows

LIMITS = [parse(text) for text in ("3/second", "2/2 seconds", "5/minute", "4/hour")]
START = 1_794_391_200.25  # an instant inside a window, not on a boundary

steps = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=90, allow_nan=False) | st.sampled_from([0.0, 0.001, 1.0, 60.0]),
        st.integers(0, len(LIMITS) - 1),
        st.sampled_from(["u1", "u2", "10.0.0.1"]),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=300)
@given(steps=steps)
def test_every_hit_and_every_window_is_answered_as_limits_answers_it(
    steps: list[tuple[float, int, str]],
) -> None:
    now = [START]
    mine = LocalWindows(clock=lambda: now[0])
    with mock.patch("time.time", lambda: now[0]):
        theirs = SlidingWindowCounterRateLimiter(MemoryStorage())
        for wait, which, who in steps:
            now[0] += wait
            limit = LIMITS[which]
            assert mine.hit(limit, "purchase:shopper", who) == theirs.hit(limit, "purchase:shopper", who)
            reset_at, remaining = mine.get_window_stats(limit, "purchase:shopper", who)
            expected = theirs.get_window_stats(limit, "purchase:shopper", who)
            assert remaining == expected.remaining
            assert abs(reset_at - expected.reset_time) < 1e-6


def test_counters_of_windows_past_are_dropped() -> None:
    now = [START]
    windows = LocalWindows(clock=lambda: now[0])
    second = parse("1/second")
    for shopper in range(100):
        assert windows.hit(second, "purchase:shopper", f"u{shopper}")
    now[0] += SWEEP_EVERY_S
    assert windows.hit(second, "purchase:shopper", "late")
    assert len(windows._counts) == 1  # only the shopper of now's window is kept
    assert not windows.hit(second, "purchase:shopper", "late")  # and still counted
