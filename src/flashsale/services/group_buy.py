"""Group buy (团购 / 拼单): deals, groups, seats, and settling groups that filled or ran out of time.

Where "never more than N members" is decided: in the store, not the ledger. The ledger decides
units of stock per item, and a group's seats are not stock (a deal's groups share the item's
quota, and a seat freed by an expired hold must be taken again by someone else). A join takes a
seat in one transaction that first raises the group row's `members` with a conditional UPDATE
(`status = OPEN AND deadline > now AND members < size`), then inserts the seat row with the lowest
free number of 1..size. The UPDATE is the turnstile: on PostgreSQL it takes the group row's lock,
so joins of one group (from any process) take turns and each re-reads `members` after the one
before it committed; on SQLite the store has a single writer. The primary key (group, seat) over
seats 1..size and the unique (group, user) are the backstop that holds even if the count were
wrong: no seat is taken twice, no member holds two. Failing a group moves the same row out of
OPEN, so a join either took its seat before (and is failed with the group) or is refused.

A join then holds the member's unit through a one-line cart checkout at the deal's price
(`CartService.check_out_priced`): the price is stored before the hold, so every path that stores
the order prices it at the group price, and the checkout's key (named by the seat's claim) makes a
retry, or a settle after a crash, replay the same hold instead of taking a second one.

Settling (`settle`, `settle_due`) is idempotent and safe to kill at any point: every step reads
where the last one got to (a seat without its order is placed again by its key, a failing group's
orders are cancelled or refunded through the payment desk, each step a no-op when done).
"""

from __future__ import annotations

import logging
import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from flashsale.domain.cart import CheckoutStatus, PricedItem, checkout_id_of
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.group_buy import Group, GroupDeal, GroupStatus, Seat, free_seat, group_id_of, seat_key
from flashsale.domain.orders import Order, OrderStatus
from flashsale.services.cart import CartService
from flashsale.services.deps import Deps
from flashsale.services.orders import OrderService
from flashsale.store.repositories import insert_ignoring_duplicates
from flashsale.store.tables import GroupDealRow, GroupRow, GroupSeatRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Membership:
    """A member's seat in a group and the order holding their unit."""

    group: Group
    seat: int
    order: Order


@dataclass(frozen=True, slots=True)
class GroupView:
    group: Group
    seats: tuple[Seat, ...]


class GroupBuyService:
    """Operators offer deals; shoppers open and join groups and pay; `settle` closes or fails them."""

    def __init__(self, deps: Deps, orders: OrderService, carts: CartService) -> None:
        self.deps = deps
        self.orders = orders
        self.carts = carts

    # -- deals ---------------------------------------------------------------------------------
    def create_deal(self, item_id: int, size: int, price_cents: int, fill_window_s: int) -> GroupDeal:
        """Offer groups of `size` one unit each of the item at `price_cents`, filled within the window."""
        GroupDeal.check(size, price_cents, fill_window_s)
        self.deps.prices.get(item_id)  # UNKNOWN_ITEM before anything is written
        with self.deps.uow() as uow:
            row = GroupDealRow(
                item_id=item_id,
                size=size,
                price_cents=price_cents,
                fill_window_s=fill_window_s,
                created_at=self.deps.now(),
            )
            uow.db.add(row)
            uow.db.flush()
            deal = _deal(row)
            uow.commit()
        return deal

    def deal(self, deal_id: int) -> GroupDeal:
        with self.deps.read() as r:
            row = r.db.get(GroupDealRow, deal_id)
        if row is None:
            raise FlashSaleError(ErrorCode.NOT_FOUND, f"no group deal {deal_id}")
        return _deal(row)

    def deals(self) -> list[GroupDeal]:
        with self.deps.read() as r:
            return [_deal(row) for row in r.db.scalars(select(GroupDealRow).order_by(GroupDealRow.id))]

    # -- groups --------------------------------------------------------------------------------
    def open(self, leader_id: str, deal_id: int, idempotency_key: str) -> Membership:
        """Open a group on the deal with the leader in seat 1; the same key answers the same group.

        If the leader's unit cannot be held (sold out, over the limit) the empty group is FAILED and
        the refusal raised. The key reused on another deal is IDEMPOTENCY_MISMATCH.
        """
        deal = self.deal(deal_id)
        group_id = group_id_of(leader_id, idempotency_key)
        now = self.deps.now()
        with self.deps.uow() as uow:
            row = {
                "id": group_id,
                "deal_id": deal.id,
                "leader_id": leader_id,
                "status": GroupStatus.OPEN.value,
                "members": 0,
                "opened_at": now,
                "deadline": deal.deadline(now),
            }
            uow.db.connection().execute(insert_ignoring_duplicates(uow.db, GroupRow), [row])
            uow.commit()
        if self.get(group_id).group.deal_id != deal.id:
            raise FlashSaleError(ErrorCode.IDEMPOTENCY_MISMATCH, "this key opened a group on another deal")
        try:
            return self.join(group_id, leader_id)
        except FlashSaleError:
            self._move(group_id, GroupStatus.OPEN, GroupStatus.FAILED, only_empty=True)
            raise

    def join(self, group_id: str, user_id: str) -> Membership:
        """Take a free seat and hold one unit at the group price; a member who has a seat gets it back.

        Refused with GROUP_FULL (every seat taken), GROUP_CLOSED (filled, failed or past the deadline),
        or the ledger's refusal of the unit (the seat is then free again).
        """
        group = self.get(group_id).group
        seat = self._seat_of(group_id, user_id) or self._claim(group, user_id)
        return self._place(group, seat)

    def pay(self, group_id: str, user_id: str, provider: str = "sandbox") -> Membership:
        """Pay the member's order (charged at most once), then settle the group (the last pay fills it)."""
        group = self.get(group_id).group
        seat = self._seat_of(group_id, user_id)
        if seat is None:
            raise FlashSaleError(ErrorCode.NOT_FOUND, f"{user_id} has no seat in group {group_id}")
        member = self._place(group, seat)
        self.orders.pay(member.order.id, user_id, provider, idempotency_key=f"{seat.claim}:pay")
        self.settle(group_id)
        return self._membership(group_id, seat)

    def get(self, group_id: str) -> GroupView:
        """The group and its taken seats, each with its order's status as it is now."""
        with self.deps.read() as r:
            found = r.db.execute(
                select(GroupRow, GroupDealRow).join(GroupDealRow).where(GroupRow.id == group_id)
            ).first()
            if found is None:
                raise FlashSaleError(ErrorCode.NOT_FOUND, f"no group {group_id}")
            seat_rows = r.db.scalars(
                select(GroupSeatRow).where(GroupSeatRow.group_id == group_id).order_by(GroupSeatRow.seat)
            ).all()
        group = _group(*found)
        seats = []
        for row in seat_rows:
            order = None if row.order_id is None else self.orders.get(row.order_id)
            seats.append(
                Seat(
                    row.seat,
                    row.user_id,
                    row.claim,
                    None if order is None else order.status,
                    None if order is None else order.paid_at,
                )
            )
        return GroupView(group, tuple(seats))

    # -- settling ------------------------------------------------------------------------------
    def settle(self, group_id: str) -> GroupStatus:
        """Bring the group up to date: place seats a crash left without an order, free seats whose order
        ended unpaid, close it FILLED, or fail it past its deadline (cancel and refund every order).

        Idempotent; a run killed half-way is finished by the next.
        """
        view = self.get(group_id)
        for seat in (s for s in view.seats if s.order_status is None):
            with suppress(FlashSaleError):  # a refused seat is freed by `_place`
                self._place(view.group, seat)
        view = self.get(group_id)
        if view.group.status is GroupStatus.OPEN:
            for seat in (s for s in view.seats if s.freed):
                self._free(group_id, seat)
            view = self.get(group_id)
            if view.group.filled_by(view.seats):
                self._move(group_id, GroupStatus.OPEN, GroupStatus.FILLED)
            elif self.deps.now() >= view.group.deadline:
                self._move(group_id, GroupStatus.OPEN, GroupStatus.FAILING)
            view = self.get(group_id)
        if view.group.status is GroupStatus.FAILING:
            self._unwind(view)
            view = self.get(group_id)
            if view.group.settled_by(view.seats):
                self._move(group_id, GroupStatus.FAILING, GroupStatus.FAILED)
                view = self.get(group_id)
        return view.group.status

    def settle_due(self, batch: int = 100) -> int:
        """Settle the groups that may have moved: past their deadline, failing, or with every seat taken.

        Run by the expiry sweeper and by `flashsale groups settle`; returns how many were settled (a
        group whose settle failed is logged and retried on the next pass).
        """
        now = self.deps.now()
        with self.deps.read() as r:
            due = r.db.scalars(
                select(GroupRow.id)
                .join(GroupDealRow)
                .where(
                    ((GroupRow.status == GroupStatus.OPEN.value) & (GroupRow.deadline <= now))
                    | (GroupRow.status == GroupStatus.FAILING.value)
                    | ((GroupRow.status == GroupStatus.OPEN.value) & (GroupRow.members >= GroupDealRow.size))
                )
                .order_by(GroupRow.deadline)
                .limit(batch)
            ).all()
        settled = 0
        for group_id in due:
            try:
                self.settle(group_id)
            except (
                Exception
            ):  # one group's failure (a provider down for its refund) must not hold up the rest
                log.exception("settling group %s failed; the next pass retries it", group_id)
                continue
            settled += 1
        return settled

    def _unwind(self, view: GroupView) -> None:
        """Cancel every unpaid order of a failing group, then refund every paid one, through the desk."""
        for seat in view.seats:
            order = self._order_of(view.group.id, seat)
            if order is not None and order.status is OrderStatus.UNPAID:
                with suppress(FlashSaleError):  # paid or expired meanwhile: the refund below or nothing
                    self.orders.cancel(order.id)
        for seat in view.seats:
            order = self._order_of(view.group.id, seat)
            if order is not None and order.status is OrderStatus.PAID:
                self.orders.refund(order.id)

    # -- seats ---------------------------------------------------------------------------------
    def _claim(self, group: Group, user_id: str) -> Seat:
        """Take the lowest free seat in one transaction behind the group row's conditional UPDATE."""
        for attempt in range(2):
            now = self.deps.now()
            claim = secrets.token_hex(12)
            with self.deps.uow() as uow:
                db = uow.db.connection()
                took = db.execute(
                    update(GroupRow)
                    .where(
                        GroupRow.id == group.id,
                        GroupRow.status == GroupStatus.OPEN.value,
                        GroupRow.deadline > now,
                        GroupRow.members < group.size,
                    )
                    .values(members=GroupRow.members + 1)
                ).rowcount
                if took:
                    of_group = GroupSeatRow.group_id == group.id
                    seats = db.execute(select(GroupSeatRow.seat, GroupSeatRow.user_id).where(of_group)).all()
                    number = free_seat([n for n, _ in seats], group.size)
                    if number is not None and user_id not in {u for _, u in seats}:
                        row = {"group_id": group.id, "seat": number, "user_id": user_id, "claim": claim}
                        try:
                            db.execute(insert(GroupSeatRow), [{**row, "claimed_at": now}])
                        except IntegrityError:  # the backstop: a seat or a member taken twice
                            pass
                        else:
                            uow.commit()
                            return Seat(number, user_id, claim)
            # Not taken (the transaction rolled back): this member won a racing join, or none is free.
            mine = self._seat_of(group.id, user_id)
            if mine is not None:
                return mine
            view = self.get(group.id)
            if attempt == 0 and view.group.open_at(now) and any(s.freed for s in view.seats):
                self.settle(group.id)  # free the seats of members whose holds ended unpaid, then retry
        fresh = self.get(group.id).group
        raise FlashSaleError(fresh.refusal(self.deps.now()), f"group {group.id} takes no member now")

    def _place(self, group: Group, seat: Seat) -> Membership:
        """Hold the seat's unit at the group price through a one-line checkout (a replay when placed)."""
        key = seat_key(group.id, seat.seat, seat.claim)
        line = PricedItem(group.item_id, 1, group.price_cents, group.price_cents)
        try:
            checkout, _ = self.carts.check_out_priced(seat.user_id, key, [line])
        except FlashSaleError:
            with suppress(FlashSaleError):  # NOT_FOUND: the checkout was not even written
                stored = self.carts.get(seat.user_id, checkout_id_of(seat.user_id, key))
                if stored.status == CheckoutStatus.REFUSED:  # for good: nothing held, the seat goes back
                    self._free(group.id, seat)
            raise
        order = checkout.lines[0].order
        assert order is not None
        with self.deps.uow() as uow:
            uow.db.connection().execute(
                update(GroupSeatRow)
                .where(
                    GroupSeatRow.group_id == group.id,
                    GroupSeatRow.seat == seat.seat,
                    GroupSeatRow.claim == seat.claim,
                )
                .values(order_id=order.id)
            )
            uow.commit()
        return Membership(group, seat.seat, order)

    def _free(self, group_id: str, seat: Seat) -> None:
        """Give the seat back: its row goes and the group's count with it, in one transaction."""
        with self.deps.uow() as uow:
            db = uow.db.connection()
            gone = db.execute(
                delete(GroupSeatRow).where(
                    GroupSeatRow.group_id == group_id,
                    GroupSeatRow.seat == seat.seat,
                    GroupSeatRow.claim == seat.claim,
                )
            ).rowcount
            if gone:
                db.execute(
                    update(GroupRow).where(GroupRow.id == group_id).values(members=GroupRow.members - 1)
                )
            uow.commit()

    def _seat_of(self, group_id: str, user_id: str) -> Seat | None:
        with self.deps.read() as r:
            row = r.db.scalars(
                select(GroupSeatRow).where(GroupSeatRow.group_id == group_id, GroupSeatRow.user_id == user_id)
            ).first()
        return None if row is None else Seat(row.seat, row.user_id, row.claim)

    def _order_of(self, group_id: str, seat: Seat) -> Order | None:
        with self.deps.read() as r:
            order_id = r.db.scalar(
                select(GroupSeatRow.order_id).where(
                    GroupSeatRow.group_id == group_id, GroupSeatRow.seat == seat.seat
                )
            )
        return None if order_id is None else self.orders.get(order_id)

    def _membership(self, group_id: str, seat: Seat) -> Membership:
        view = self.get(group_id)
        order = self._order_of(group_id, seat)
        assert order is not None
        return Membership(view.group, seat.seat, order)

    def _move(
        self, group_id: str, source: GroupStatus, target: GroupStatus, *, only_empty: bool = False
    ) -> bool:
        """Compare-and-set the group's status; of racing settles exactly one moves it."""
        condition = (GroupRow.id == group_id) & (GroupRow.status == source.value)
        if only_empty:
            condition &= GroupRow.members == 0
        closed_at: datetime | None = None if target is GroupStatus.FAILING else self.deps.now()
        with self.deps.uow() as uow:
            moved = (
                uow.db.connection()
                .execute(update(GroupRow).where(condition).values(status=target.value, closed_at=closed_at))
                .rowcount
            )
            uow.commit()
        return bool(moved)


def _deal(row: GroupDealRow) -> GroupDeal:
    return GroupDeal(row.id, row.item_id, row.size, row.price_cents, row.fill_window_s)


def _group(row: GroupRow, deal: GroupDealRow) -> Group:
    return Group(
        row.id,
        row.deal_id,
        deal.item_id,
        deal.size,
        deal.price_cents,
        row.leader_id,
        GroupStatus(row.status),
        row.opened_at,
        row.deadline,
        row.members,
    )
