"""The demo's group buy (拼团): groups of five buy the USB-C cable at a group price.

In the second session, after the basket shoppers, group shoppers (drawn from the same seed but their
own generator) open groups and join them, on the shop's thread pool through `GroupBuyService`. Each
group that fills gets more joiners than seats, all at once: the seats go to the first and the rest
are told GROUP_FULL. Every member pays; the last payment fills the group. One group does not fill
in time: one of its members never pays, and once its deadline passed, `settle_due` (the sweeper's
step) cancels its unpaid hold and refunds the members who paid. The audit reads it all back.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from flashsale.bootstrap import Platform
from flashsale.demo.campaign import DemoCampaign
from flashsale.demo.crowd import shopper_ids
from flashsale.demo.shop import PoolDoor
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.group_buy import ENDED, GroupDeal, GroupStatus
from flashsale.domain.orders import OrderStatus
from flashsale.services.group_buy import GroupBuyService, Membership
from flashsale.store.tables import GroupRow, GroupSeatRow, OrderRow, PaymentRow

GROUP_SKU = "CABLE-C"
GROUP_SIZE = 5
GROUP_PRICE_CENTS = 3_900  # ¥39 in a group of five, ¥59 alone
FILL_WINDOW_S = 120  # short enough that the unfilled group's deadline passes inside the session's end
EXTRA_JOINERS = 2  # joiners beyond the seats of a group that fills: told GROUP_FULL
FAILING_MEMBERS = 3  # the group that does not fill: three members, one of whom never pays
GROUPS_PER_SHOPPERS = 1_000  # one group per this many flash shoppers
MIN_GROUPS = 3

GROUP_DEFINITIONS = {
    "groups": (
        "no group holds more seats than its size (seat rows, its member count and its PAID orders);"
        " every FILLED group has exactly its size of PAID orders at the group price; no group is left"
        " OPEN or FAILING"
    ),
    "failed_groups": (
        "every order of a FAILED group was cancelled, expired or refunded, and its refunds equal the"
        " payments its members made"
    ),
    "group_stock": (
        "the group item's available + held + sold == stock in the ledger, sold == units of PAID"
        " orders and held == units of UNPAID orders in the database"
    ),
}


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """One group: its leader, the joiners racing for its seats, and who among the seated never pays."""

    leader: str
    joiners: tuple[str, ...]
    fills: bool
    walks_away: str | None = None  # a member who never pays (only in the group that does not fill)


def group_count(shoppers: int) -> int:
    """How many groups open beside a flash crowd of `shoppers`."""
    return max(MIN_GROUPS, shoppers // GROUPS_PER_SHOPPERS)


def plan_groups(shoppers: int, *, seed: int) -> list[GroupPlan]:
    """Draw the groups beside a flash crowd of `shoppers`; one of them does not fill in time."""
    rng = random.Random(f"groups-{seed}")  # its own stream: the other crowds' draws stay as they were
    count = group_count(shoppers)
    failing = rng.randrange(count)
    sizes = [FAILING_MEMBERS if n == failing else GROUP_SIZE + EXTRA_JOINERS for n in range(count)]
    ids = iter(shopper_ids("g", sum(sizes)))
    plans = []
    for n, size in enumerate(sizes):
        members = [next(ids) for _ in range(size)]
        walker = rng.choice(members[1:]) if n == failing else None
        plans.append(GroupPlan(members[0], tuple(members[1:]), n != failing, walker))
    return plans


@dataclass
class GroupTally:
    """What the group shoppers saw."""

    groups_opened: int = 0
    joins: int = 0  # seats taken (the leaders' included)
    join_refusals: Counter[ErrorCode] = field(default_factory=Counter)
    payments: int = 0
    walked_away: int = 0
    settled: int = 0  # groups `settle_due` settled after the deadline
    failures: Counter[str] = field(default_factory=Counter)  # unexpected refusals: must stay empty


class GroupDoor(PoolDoor):
    """The group shoppers' door to the group-buy service, in process on the shop's thread pool."""

    def __init__(self, groups: GroupBuyService, pool: Executor, deal: GroupDeal) -> None:
        super().__init__(pool)
        self._groups = groups
        self.deal = deal
        self.tally = GroupTally()

    async def open(self, leader: str) -> Membership | None:
        try:
            member = await self._run(self._groups.open, leader, self.deal.id, f"{leader}-group")
        except FlashSaleError as exc:
            self.tally.failures[f"open: {exc.code}"] += 1
            return None
        self.tally.groups_opened += 1
        self.tally.joins += 1
        return member

    async def join(self, group_id: str, user_id: str) -> Membership | None:
        try:
            member = await self._run(self._groups.join, group_id, user_id)
        except FlashSaleError as exc:
            self.tally.join_refusals[exc.code] += 1
            return None
        self.tally.joins += 1
        return member

    async def pay(self, member: Membership) -> None:
        try:
            await self._run(self._groups.pay, member.group.id, member.order.user_id)
        except FlashSaleError as exc:
            self.tally.failures[f"pay: {exc.code}"] += 1
        else:
            self.tally.payments += 1

    async def settle_due(self) -> None:
        """Settle every group that may have moved, as the sweeper would, until none is left to settle."""
        while settled := await self._run(self._groups.settle_due):
            self.tally.settled += settled


async def play_group(door: GroupDoor, plan: GroupPlan) -> datetime | None:
    """Open the group, let its joiners race for the seats, then the members pay; return its deadline."""
    leader = await door.open(plan.leader)
    if leader is None:
        return None
    joined = await asyncio.gather(*(door.join(leader.group.id, user) for user in plan.joiners))
    members = [leader, *(m for m in joined if m is not None)]
    paying = [m for m in members if m.order.user_id != plan.walks_away]
    door.tally.walked_away += len(members) - len(paying)
    await asyncio.gather(*(door.pay(m) for m in paying))
    return leader.group.deadline


def create_deal(groups: GroupBuyService, campaign: DemoCampaign) -> GroupDeal:
    """Offer groups of five the cable at the group price."""
    cable = next(i for i in campaign.regular if i.spec.sku == GROUP_SKU)
    return groups.create_deal(
        cable.id, size=GROUP_SIZE, price_cents=GROUP_PRICE_CENTS, fill_window_s=FILL_WINDOW_S
    )


@dataclass(frozen=True, slots=True)
class GroupAudit:
    """The group deal, counted from the store and the ledger, and the checks that must hold."""

    tally: GroupTally
    size: int
    price_cents: int
    item_name: str
    statuses: dict[str, int]  # groups by status
    members: int  # seats taken at the end
    paid: int  # PAID orders of the deal's seats
    refunds: int
    refunded_cents: int  # refunds in the payments journal on the deal's orders
    over_filled: int  # groups over their size, or FILLED without exactly their size paid: must stay 0
    left_unsettled: int  # groups still OPEN or FAILING: must stay 0
    failed_unreleased: int  # orders of FAILED groups that still hold a unit or money: must stay 0
    failed_paid_cents: int  # what the FAILED groups' members paid (charges on their orders)
    stock: int
    available: int
    held: int
    sold: int
    db_sold: int
    db_held: int

    @property
    def groups_ok(self) -> bool:
        return self.over_filled == 0 and self.left_unsettled == 0

    @property
    def failed_released(self) -> bool:
        return self.failed_unreleased == 0 and self.refunded_cents == self.failed_paid_cents

    @property
    def stock_conserved(self) -> bool:
        return self.available + self.held + self.sold == self.stock and (self.sold, self.held) == (
            self.db_sold,
            self.db_held,
        )

    @property
    def ok(self) -> bool:
        return self.groups_ok and self.failed_released and self.stock_conserved and not self.tally.failures

    def count(self, status: GroupStatus) -> int:
        return self.statuses.get(status.value, 0)

    def as_dict(self) -> dict[str, Any]:
        """Return the audit as plain JSON-ready data."""
        tally = self.tally
        return {
            "group_shoppers": {
                "groups_opened": tally.groups_opened,
                "joins": tally.joins,
                "join_refusals": {c.value: n for c, n in sorted(tally.join_refusals.items())},
                "payments": tally.payments,
                "walked_away": tally.walked_away,
                "settled": tally.settled,
                "failures": dict(sorted(tally.failures.items())),
            },
            "size": self.size,
            "price_cents": self.price_cents,
            "groups": dict(sorted(self.statuses.items())),
            "members": self.members,
            "paid": self.paid,
            "refunds": self.refunds,
            "refunded_cents": self.refunded_cents,
            "stock": {
                "stock": self.stock,
                "available": self.available,
                "held": self.held,
                "sold": self.sold,
                "db_sold": self.db_sold,
                "db_held": self.db_held,
            },
            "groups_ok": self.groups_ok,
            "failed_released": self.failed_released,
            "stock_conserved": self.stock_conserved,
            "ok": self.ok,
            "definitions": GROUP_DEFINITIONS,
        }


def audit_groups(
    platform: Platform, campaign: DemoCampaign, deal: GroupDeal, tally: GroupTally
) -> GroupAudit:
    """Count and check the deal's groups, seats and orders, and the group item's stock."""
    with platform.deps.read() as r:
        db = r.db
        groups = db.execute(
            select(GroupRow.id, GroupRow.status, GroupRow.members).where(GroupRow.deal_id == deal.id)
        ).all()
        seats = db.execute(
            select(GroupSeatRow.group_id, OrderRow.id, OrderRow.status, OrderRow.total_cents)
            .join(GroupRow, GroupRow.id == GroupSeatRow.group_id)
            .outerjoin(OrderRow, OrderRow.id == GroupSeatRow.order_id)
            .where(GroupRow.deal_id == deal.id)
        ).all()
        stored = {
            status: int(units or 0)
            for status, units in db.execute(
                select(OrderRow.status, func.sum(OrderRow.qty))
                .where(OrderRow.item_id == deal.item_id)
                .group_by(OrderRow.status)
            )
        }
    orders = [s.id for s in seats if s.id is not None]
    charged, refunded_journal = _journal(platform, orders, "charge"), _journal(platform, orders, "refund")
    per_group: dict[str, list[Any]] = {g.id: [] for g in groups}
    for seat in seats:
        per_group[seat.group_id].append(seat)
    over_filled = failed_unreleased = failed_paid = 0
    ended = {s.value for s in ENDED}
    for group in groups:
        mine = per_group[group.id]
        paid = sum(s.status == OrderStatus.PAID.value for s in mine)
        if len(mine) > deal.size or group.members != len(mine) or paid > deal.size:
            over_filled += 1
        if group.status == GroupStatus.FILLED.value and (
            paid != deal.size or any(s.total_cents != deal.price_cents for s in mine)
        ):
            over_filled += 1
        if group.status == GroupStatus.FAILED.value:
            failed_unreleased += sum(s.status not in ended for s in mine)
            failed_paid += sum(charged.get(s.id, 0) for s in mine)
    refunded = [s for s in seats if s.status == OrderStatus.REFUNDED.value]
    stock = platform.ledger.stock(deal.item_id)
    item = next(i for i in campaign.regular if i.id == deal.item_id)
    return GroupAudit(
        tally=tally,
        size=deal.size,
        price_cents=deal.price_cents,
        item_name=item.spec.name,
        statuses=dict(Counter(g.status for g in groups)),
        members=len(seats),
        paid=sum(s.status == OrderStatus.PAID.value for s in seats),
        refunds=len(refunded),
        refunded_cents=sum(refunded_journal.values()),
        over_filled=over_filled,
        left_unsettled=sum(g.status in (GroupStatus.OPEN.value, GroupStatus.FAILING.value) for g in groups),
        failed_unreleased=failed_unreleased,
        failed_paid_cents=failed_paid,
        stock=stock.quota,
        available=stock.available,
        held=stock.held,
        sold=stock.sold,
        db_sold=stored.get(OrderStatus.PAID.value, 0),
        db_held=stored.get(OrderStatus.UNPAID.value, 0),
    )


def _journal(platform: Platform, order_ids: Sequence[str], kind: str) -> dict[str, int]:
    """The done payments of `kind` (charge, refund) on each order, from the payments journal."""
    if not order_ids:
        return {}
    with platform.deps.read() as r:
        rows = r.db.execute(
            select(PaymentRow.order_id, func.sum(PaymentRow.amount_cents))
            .where(PaymentRow.order_id.in_(order_ids), PaymentRow.kind == kind, PaymentRow.status == "done")
            .group_by(PaymentRow.order_id)
        ).all()
    return {order_id: int(cents) for order_id, cents in rows}
