"""Free-order rules: which ranks win, what a winner gets back, which rules overlap; the money rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flashsale.domain.errors import FlashSaleError
from flashsale.domain.free_orders import FreeOrderRule, FreeOrderWin, WinStatus, refundable_cents
from flashsale.domain.orders import OrderStatus
from flashsale.domain.payments import OrderMoney


def rule(**changes: object) -> FreeOrderRule:
    fields: dict[str, object] = {"id": 1, "name": "r", "session_id": 5, "item_id": 9, "ranks": (1, 88, 888)}
    fields.update(changes)
    return FreeOrderRule(**fields)  # type: ignore[arg-type]


def test_the_listed_ranks_and_the_first_n_win_and_nothing_else() -> None:
    countdown = rule()
    assert [r for r in range(1, 1000) if countdown.wins(r)] == [1, 88, 888]
    first = rule(ranks=(), first_n=3)
    assert [r for r in range(1, 10) if first.wins(r)] == [1, 2, 3]
    assert rule(ranks=(2, 5), first_n=3).slots == 4


@pytest.mark.parametrize(
    "bad", [{"ranks": ()}, {"ranks": (0,)}, {"ranks": (2, 2)}, {"first_n": -1}, {"cap_cents": 0}]
)
def test_a_rule_that_could_never_win_or_lists_bad_ranks_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        rule(**bad)


def test_a_rebate_is_the_order_up_to_the_cap_and_a_refund_gives_back_the_rest() -> None:
    assert rule().rebate_cents(19_900) == 19_900
    assert rule(cap_cents=5_000).rebate_cents(19_900) == 5_000
    assert refundable_cents(19_900, 5_000) == 14_900
    assert refundable_cents(19_900, 19_900) == 0


def test_rules_of_one_session_overlap_unless_they_name_different_items() -> None:
    assert rule(item_id=None).overlaps(rule(item_id=3))
    assert rule(item_id=3).overlaps(rule(item_id=3))
    assert not rule(item_id=3).overlaps(rule(item_id=4))
    assert not rule(session_id=1).overlaps(rule(session_id=2))
    assert rule(item_id=None).covers(5, 42) and not rule().covers(5, 42)


def test_a_rebate_is_sent_once() -> None:
    at = datetime(2026, 11, 11, tzinfo=UTC)
    win = FreeOrderWin(1, 88, "o", "u", 9, 1, 100, WinStatus.PENDING, at)
    sent = win.rebated(at)
    assert sent.status is WinStatus.REBATED and sent.event().kind == "OrderRebated"
    assert win.event().kind == "FreeOrderWon"
    with pytest.raises(FlashSaleError):
        sent.rebated(at)


def test_a_free_order_nets_to_its_total_less_the_rebate_it_won() -> None:
    paid = OrderMoney("o", OrderStatus.PAID, 19_900, 19_900, 0, rebated_cents=5_000, won_rebate_cents=5_000)
    assert paid.problem() is None and paid.net_cents == 14_900
    unsent = OrderMoney(
        "o", OrderStatus.PAID, 19_900, 19_900, 0, pending_rebate_cents=5_000, won_rebate_cents=5_000
    )
    assert "not sent" in (unsent.problem() or "")
    stray = OrderMoney("o", OrderStatus.PAID, 19_900, 19_900, 0, rebated_cents=5_000)
    assert stray.problem() is not None  # a rebate no win explains
    refunded = OrderMoney(
        "o", OrderStatus.REFUNDED, 19_900, 19_900, 14_900, rebated_cents=5_000, won_rebate_cents=5_000
    )
    assert refunded.problem() is None
