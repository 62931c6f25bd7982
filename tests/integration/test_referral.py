"""Referral rewards on every engine: given exactly once under concurrent settles and duplicate binds,
never for a refunded first order, never for a self-referral or a loop."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from sqlalchemy import func, insert, select

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.referral import BindingStatus, pair_key
from flashsale.services.orders import Buy
from flashsale.services.referral import Referral, ReferralService
from flashsale.store.tables import ReferralBindingRow, RewardEntryRow
from tests.conftest import Sale
from tests.engines import POSTGRES_REDIS, SQLITE, drain_orders

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)  # the two ends (see tests/engines.py)


@pytest.fixture
def referrals(platform: Platform) -> ReferralService:
    service = platform.referrals
    # A two-minute refund window: the sale (10:00–10:10) is still on after it, for orders that follow.
    service.terms = replace(
        service.terms, inviter_points=100, invitee_points=50, coupon_template="NEW10", settle_s=120
    )
    return service


def bought_and_paid(platform: Platform, user: str, item_id: int, key: str = "k") -> str:
    order = platform.orders.buy(Buy(user, item_id, 1, key)).order
    drain_orders(platform)
    platform.orders.pay(order.id, user)
    return order.id


def entries(platform: Platform) -> int:
    with platform.deps.read() as r:
        return int(r.db.scalar(select(func.count()).select_from(RewardEntryRow)) or 0)


def code_error(call: object) -> ErrorCode | None:
    assert callable(call)
    try:
        call()
    except FlashSaleError as exc:
        return exc.code
    return None


def test_both_sides_are_rewarded_once_after_the_settle_period_under_concurrent_settles(
    platform: Platform, referrals: ReferralService, sale: Sale, clock: ManualClock
) -> None:
    code = referrals.code_for("ann")
    assert referrals.code_for("ann") == code
    with ThreadPoolExecutor(8) as pool:  # a double-clicked bind, many times over
        bound = list(pool.map(lambda _: referrals.bind("bob", code.lower()), range(16)))
    assert {b.status for b in bound} == {BindingStatus.BOUND} and len(set(bound)) == 1
    order_id = bought_and_paid(platform, "bob", sale.earbuds_id)

    assert referrals.settle() == 1  # qualified by the OrderPaid event; the refund window still open
    assert referrals.points("ann") == 0
    clock.advance(referrals.terms.settle_s + 1)
    with ThreadPoolExecutor(8) as pool:
        moved = list(pool.map(lambda _: referrals.settle(), range(16)))
    assert sum(moved) == 1  # exactly one settle gave the rewards
    assert (referrals.points("ann"), referrals.points("bob")) == (100, 50)
    assert [(r.coupon_template, r.order_id) for r in referrals.rewards("ann")] == [("NEW10", order_id)]
    assert entries(platform) == 2
    # Later paid orders and refunds after the period change nothing.
    platform.orders.refund(order_id)
    bought_and_paid(platform, "bob", sale.earbuds_id, "again")
    assert referrals.settle() == 0 and entries(platform) == 2
    assert referrals.referral_of("bob") == Referral("bob", "ann", code, BindingStatus.REWARDED, order_id)


def test_a_first_order_refunded_within_the_settle_period_voids_the_referral(
    platform: Platform, referrals: ReferralService, sale: Sale, clock: ManualClock
) -> None:
    referrals.bind("bob", referrals.code_for("ann"))
    first = bought_and_paid(platform, "bob", sale.earbuds_id)
    referrals.settle()
    platform.orders.refund(first)
    bought_and_paid(platform, "bob", sale.earbuds_id, "second")  # a later order does not qualify instead
    clock.advance(referrals.terms.settle_s + 1)
    referrals.settle()
    found = referrals.referral_of("bob")
    assert found is not None and (found.status, found.order_id) == (BindingStatus.VOID, first)
    assert entries(platform) == 0 and referrals.settle() == 0


def test_self_referral_loops_rebinding_and_late_binding_are_refused_and_change_nothing(
    platform: Platform, referrals: ReferralService, sale: Sale
) -> None:
    ann, bob, cat = (referrals.code_for(u) for u in ("ann", "bob", "cat"))
    assert code_error(lambda: referrals.bind("ann", ann)) is ErrorCode.SELF_REFERRAL
    assert code_error(lambda: referrals.bind("ann", "NOSUCH99")) is ErrorCode.NOT_FOUND
    referrals.bind("bob", ann)
    assert code_error(lambda: referrals.bind("ann", bob)) is ErrorCode.REFERRAL_LOOP  # A invited B
    referrals.bind("cat", bob)
    assert code_error(lambda: referrals.bind("ann", cat)) is ErrorCode.REFERRAL_LOOP  # up the line
    assert code_error(lambda: referrals.bind("bob", cat)) is ErrorCode.ALREADY_BOUND
    platform.orders.buy(Buy("dan", sale.earbuds_id, 1, "k"))
    drain_orders(platform)
    assert code_error(lambda: referrals.bind("dan", ann)) is ErrorCode.NOT_FIRST_ORDER
    assert referrals.referral_of("ann") is None and referrals.referral_of("dan") is None
    assert referrals.referral_of("bob") == Referral("bob", "ann", ann, BindingStatus.BOUND, None)


def test_an_order_placed_before_binding_but_not_yet_seen_by_bind_earns_nothing(
    platform: Platform, referrals: ReferralService, sale: Sale, clock: ManualClock
) -> None:
    earlier = platform.orders.buy(Buy("dan", sale.earbuds_id, 1, "k")).order
    clock.advance(1)
    # The binding as `bind` writes it when it runs before the order writer stored dan's order (Redis).
    binding = {
        "invitee_id": "dan",
        "inviter_id": "ann",
        "pair": pair_key("dan", "ann"),
        "code": referrals.code_for("ann"),
        "status": BindingStatus.BOUND.value,
        "bound_at": platform.deps.now(),
    }
    with platform.deps.uow() as uow:
        uow.db.execute(insert(ReferralBindingRow), [binding])
        uow.commit()
    drain_orders(platform)
    platform.orders.pay(earlier.id, "dan")
    assert referrals.settle() == 1
    clock.advance(referrals.terms.settle_s + 1)
    assert referrals.settle() == 0
    found = referrals.referral_of("dan")
    assert found is not None and found.status is BindingStatus.VOID and entries(platform) == 0


def test_two_shoppers_binding_each_others_codes_at_once_make_no_loop(
    platform: Platform, referrals: ReferralService
) -> None:
    pairs = [(f"a{n}", f"b{n}") for n in range(10)]
    codes = {u: referrals.code_for(u) for pair in pairs for u in pair}

    def bind(invitee_inviter: tuple[str, str]) -> Referral | ErrorCode:
        invitee, inviter = invitee_inviter
        try:
            return referrals.bind(invitee, codes[inviter])
        except FlashSaleError as exc:
            return exc.code

    both_ways = [(a, b) for a, b in pairs] + [(b, a) for a, b in pairs]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(bind, both_ways))
    assert {a for a in answers if isinstance(a, ErrorCode)} <= {ErrorCode.REFERRAL_LOOP}
    for a, b in pairs:  # each pair is bound one way round, never both
        bound = [x for x in (referrals.referral_of(a), referrals.referral_of(b)) if x is not None]
        assert len(bound) == 1
