"""Group buy on every engine: seats never over-filled under a crowd, failed groups released and refunded.

Every test ends with the ledger's counters checked against the order rows and the payments journal
(`assert_store_matches_ledger`: units conserved, limits held, charges − refunds == each order's due).
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.group_buy import GroupDeal, GroupStatus, Seat, group_id_of
from flashsale.domain.orders import OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.services.group_buy import GroupBuyService, Membership
from flashsale.services.orders import Buy
from tests.conftest import T0, Sale
from tests.engines import POSTGRES_REDIS, SQLITE, drain_orders
from tests.integration import group_joiner
from tests.integration.ledger_store_checks import assert_store_matches_ledger

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)  # the two ends (see tests/engines.py)

JOINER = Path(group_joiner.__file__)
GROUP_PRICE = 29_900  # earbuds at the group price (flash price 49_900)
HOUR = 3600


@pytest.fixture
def groups(platform: Platform) -> GroupBuyService:
    return platform.groups


@pytest.fixture
def item(platform: Platform, sale: Sale) -> int:
    """Earbuds in a two-hour session (quota 40, two per shopper): payment windows end inside it."""
    cat = platform.catalog
    session = cat.create_session(
        campaign_id=sale.campaign_id, name="all morning", starts_at=T0, ends_at=T0 + timedelta(hours=2)
    )
    product = cat.create_product(sku="BUDS-G", name="Earbuds (group)", list_price_cents=99_900, stock=100)
    return cat.create_item(
        session_id=session.id, product_id=product.id, flash_price_cents=49_900, quota=40, per_user_limit=2
    ).id


def deal_on(groups: GroupBuyService, item: int, size: int, window_s: int = HOUR) -> GroupDeal:
    return groups.create_deal(item, size=size, price_cents=GROUP_PRICE, fill_window_s=window_s)


def settled_stock(platform: Platform, item: int) -> None:
    """Write down expiries, let the Redis writer catch up, and check store, ledger and journal agree."""
    platform.orders.expire_due()
    drain_orders(platform)
    assert_store_matches_ledger(platform, item, limit=2)
    assert audit_payments(platform.deps.sessions).clean


def test_a_group_fills_when_every_member_paid_at_the_group_price(
    platform: Platform, groups: GroupBuyService, item: int
) -> None:
    deal = deal_on(groups, item, size=3)
    leader = groups.open("lea", deal.id, "k1")
    assert leader.seat == 1 and leader.order.total_cents == GROUP_PRICE
    assert groups.open("lea", deal.id, "k1").order.id == leader.order.id  # the same key: the same group
    other = deal_on(groups, item, size=5)
    with pytest.raises(FlashSaleError) as mismatch:
        groups.open("lea", other.id, "k1")
    assert mismatch.value.code is ErrorCode.IDEMPOTENCY_MISMATCH
    members = [groups.join(leader.group.id, user) for user in ("ben", "cat")]
    assert [m.seat for m in members] == [2, 3]
    assert groups.join(leader.group.id, "ben").order.id == members[0].order.id  # a rejoin is the same seat
    with pytest.raises(FlashSaleError) as full:
        groups.join(leader.group.id, "dan")
    assert full.value.code is ErrorCode.GROUP_FULL

    for user in ("lea", "ben"):
        assert groups.pay(leader.group.id, user).group.status is GroupStatus.OPEN
    last = groups.pay(leader.group.id, "cat")
    assert last.group.status is GroupStatus.FILLED and last.order.status is OrderStatus.PAID
    assert {s.order_status for s in groups.get(leader.group.id).seats} == {OrderStatus.PAID}
    assert platform.ledger.stock(item).sold == 3
    with pytest.raises(FlashSaleError) as closed:
        groups.join(leader.group.id, "dan")
    assert closed.value.code is ErrorCode.GROUP_CLOSED
    settled_stock(platform, item)


def test_a_crowd_joining_one_group_takes_exactly_its_seats(
    platform: Platform, groups: GroupBuyService, item: int
) -> None:
    deal = deal_on(groups, item, size=6)
    group_id = groups.open("lead", deal.id, "k").group.id
    crowd = [f"u{n:02d}" for n in range(20)]

    def join(user: str) -> Membership | ErrorCode:
        try:
            return groups.join(group_id, user)
        except FlashSaleError as exc:
            return exc.code

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(join, crowd + crowd))  # every member double-clicks
    joined = [a for a in answers if isinstance(a, Membership)]
    assert {a for a in answers if isinstance(a, ErrorCode)} == {ErrorCode.GROUP_FULL}
    seats = groups.get(group_id).seats
    assert sorted(s.seat for s in seats) == [1, 2, 3, 4, 5, 6]
    assert len({s.user_id for s in seats}) == 6
    assert {m.order.id for m in joined} == {groups.join(group_id, s.user_id).order.id for s in seats[1:]}
    assert groups.get(group_id).group.members == 6
    drain_orders(platform)
    assert platform.ledger.stock(item).held == 6  # one unit per seat, none for the refused
    settled_stock(platform, item)


def test_a_group_that_does_not_fill_in_time_releases_every_hold_and_refunds_every_payment(
    platform: Platform, groups: GroupBuyService, item: int, clock: ManualClock
) -> None:
    quota = platform.ledger.stock(item).available
    deal = deal_on(groups, item, size=4, window_s=600)
    group_id = groups.open("lea", deal.id, "k").group.id
    for user in ("ben", "cat"):
        groups.join(group_id, user)
    for user in ("lea", "ben"):
        groups.pay(group_id, user)
    clock.advance(601)
    with pytest.raises(FlashSaleError) as late:
        groups.join(group_id, "dan")
    assert late.value.code is ErrorCode.GROUP_CLOSED

    assert groups.settle_due() == 1
    view = groups.get(group_id)
    assert view.group.status is GroupStatus.FAILED
    assert sorted(s.order_status for s in view.seats) == sorted(
        [OrderStatus.REFUNDED, OrderStatus.REFUNDED, OrderStatus.CANCELLED]
    )
    assert groups.settle_due() == 0 and groups.settle(group_id) is GroupStatus.FAILED  # idempotent
    settled_stock(platform, item)
    level = platform.ledger.stock(item)
    assert (level.available, level.held, level.sold) == (quota, 0, 0)  # every unit back on sale


def test_a_settle_killed_half_way_is_finished_by_the_next(
    platform: Platform, groups: GroupBuyService, item: int, clock: ManualClock
) -> None:
    deal = deal_on(groups, item, size=3, window_s=600)
    group_id = groups.open("lea", deal.id, "k").group.id
    groups.join(group_id, "ben")
    for user in ("lea", "ben"):
        groups.pay(group_id, user)
    # A join killed between taking its seat and holding its unit: the seat has no order yet.
    group = groups.get(group_id).group
    orphan = groups._claim(group, "cat")
    assert groups.get(group_id).seats[2] == Seat(3, "cat", orphan.claim)
    clock.advance(601)
    # A settle killed after failing the group and refunding one payment of two.
    assert groups._move(group_id, GroupStatus.OPEN, GroupStatus.FAILING)
    first = next(s for s in groups.get(group_id).seats if s.user_id == "lea")
    order = groups._order_of(group_id, first)
    assert order is not None
    platform.orders.refund(order.id)

    assert groups.settle(group_id) is GroupStatus.FAILED  # the orphan seat is placed, then cancelled
    assert sorted(s.order_status for s in groups.get(group_id).seats) == sorted(
        [OrderStatus.REFUNDED, OrderStatus.REFUNDED, OrderStatus.CANCELLED]
    )
    settled_stock(platform, item)


def test_a_member_whose_hold_expires_unpaid_frees_the_seat(
    platform: Platform, groups: GroupBuyService, item: int, clock: ManualClock
) -> None:
    deal = deal_on(groups, item, size=2)
    group_id = groups.open("lea", deal.id, "k").group.id
    groups.pay(group_id, "lea")
    groups.join(group_id, "ben")
    clock.advance(16 * 60)  # past ben's payment window (15 min), inside the group's hour
    platform.orders.expire_due()
    drain_orders(platform)
    cat = groups.join(group_id, "cat")  # the group was full: settling it freed ben's seat
    assert cat.seat == 2 and [s.user_id for s in groups.get(group_id).seats] == ["lea", "cat"]
    assert groups.pay(group_id, "cat").group.status is GroupStatus.FILLED
    settled_stock(platform, item)


def test_bad_group_input_is_refused_and_changes_nothing(
    platform: Platform, groups: GroupBuyService, item: int
) -> None:
    for size, price, window in ((1, 100, 60), (3, -1, 60), (3, 100, 0)):
        with pytest.raises(FlashSaleError) as bad:
            groups.create_deal(item, size=size, price_cents=price, fill_window_s=window)
        assert bad.value.code is ErrorCode.VALIDATION_ERROR
    with pytest.raises(FlashSaleError) as unknown:
        groups.create_deal(999_999, size=3, price_cents=100, fill_window_s=60)
    assert unknown.value.code is ErrorCode.UNKNOWN_ITEM
    assert groups.deals() == []
    for call in (lambda: groups.join("gb_nothing", "ben"), lambda: groups.open("lea", 42, "k")):
        with pytest.raises(FlashSaleError) as missing:
            call()
        assert missing.value.code is ErrorCode.NOT_FOUND
    # A leader over the item's per-user limit: the refusal is raised and the empty group failed.
    deal = deal_on(groups, item, size=2)
    platform.orders.buy(Buy("lea", item, 2, "two"))
    with pytest.raises(FlashSaleError) as over:
        groups.open("lea", deal.id, "k")
    assert over.value.code is ErrorCode.LIMIT_EXCEEDED
    failed = groups.get(group_id_of("lea", "k"))
    assert failed.group.status is GroupStatus.FAILED and failed.seats == ()
    settled_stock(platform, item)


@pytest.mark.engines(POSTGRES_REDIS, reason="several processes share a ledger only on Redis")
def test_crowds_in_several_processes_joining_one_group_take_exactly_its_seats(
    platform: Platform, groups: GroupBuyService, item: int, clock: ManualClock
) -> None:
    deal = deal_on(groups, item, size=8)
    group_id = groups.open("lead", deal.id, "k").group.id
    settings = platform.settings.model_dump_json()
    children = [
        subprocess.Popen(
            [sys.executable, str(JOINER), settings, group_id, str(clock()), f"p{n}-", "8"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    answers: list[str] = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        answers += out.splitlines()
    joined = sorted(int(a.split()[1]) for a in answers if a.startswith("joined "))
    assert joined == list(range(2, 9))  # seat 1 is the leader's; each other seat went to one child's shopper
    assert answers.count(ErrorCode.GROUP_FULL.value) == len(answers) - 7 == 2 * 8 - 7
    seats = groups.get(group_id).seats
    assert sorted(s.seat for s in seats) == list(range(1, 9)) and groups.get(group_id).group.members == 8
    drain_orders(platform)
    assert platform.ledger.stock(item).held == 8
    settled_stock(platform, item)
