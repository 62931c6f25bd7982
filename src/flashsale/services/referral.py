"""Referral rewards: invite codes, bindings, and rewards given once (rules: domain/referral.py).

Driven by the order outbox: `settle` reads the `OrderPaid` events (`order_events`, written in the
same transaction as the payment) of bound invitees to find each one's first paid order, then
gives the rewards once that order has stayed paid through the settle period. It runs on every
expiry-sweeper pass and as `flashsale referral settle`; it reads the store each time rather than
keeping a cursor over the outbox, because on PostgreSQL event ids may commit out of order and a
cursor could step over one.

Exactly once, under any number of concurrent settles and duplicate requests, rests on the store:
a binding's status moves only by compare-and-set (BOUND → QUALIFIED → REWARDED | VOID), each
reward entry's `source` is UNIQUE, and the entries and the move to REWARDED commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.events import OrderPaid
from flashsale.domain.orders import OrderStatus
from flashsale.domain.referral import (
    MAX_CHAIN,
    BindingStatus,
    RewardTerms,
    Side,
    check_binding,
    new_code,
    normalised,
    pair_key,
    reward_source,
)
from flashsale.services.deps import Deps
from flashsale.store.repositories import insert_ignoring_duplicates
from flashsale.store.tables import EventRow, InviteCodeRow, OrderRow, ReferralBindingRow, RewardEntryRow
from flashsale.store.uow import ReadUnit, UnitOfWork


@dataclass(frozen=True, slots=True)
class Referral:
    invitee_id: str
    inviter_id: str
    code: str
    status: BindingStatus
    order_id: str | None


@dataclass(frozen=True, slots=True)
class Reward:
    source: str
    points: int
    coupon_template: str | None
    order_id: str | None


class ReferralService:
    """Invite codes, binding one, and the rewards of a first paid order."""

    def __init__(self, deps: Deps, terms: RewardTerms) -> None:
        self.deps = deps
        self.terms = terms

    def code_for(self, user_id: str) -> str:
        """The shopper's invite code, made on first ask (racing asks get the same one)."""
        with self.deps.read() as r:
            known = r.db.scalar(select(InviteCodeRow.code).where(InviteCodeRow.user_id == user_id))
        if known is not None:
            return known
        for _ in range(5):  # a code already taken by someone else: draw again
            with self.deps.uow() as uow:
                row = {"code": new_code(), "user_id": user_id, "created_at": self.deps.now()}
                uow.db.connection().execute(insert_ignoring_duplicates(uow.db, InviteCodeRow), [row])
                uow.commit()
            with self.deps.read() as r:
                mine = r.db.scalar(select(InviteCodeRow.code).where(InviteCodeRow.user_id == user_id))
            if mine is not None:
                return mine
        raise FlashSaleError(ErrorCode.CONFLICT, "no free invite code; try again")

    def bind(self, invitee_id: str, code: str) -> Referral:
        """Bind the invitee to the code's owner, once, before the invitee's first order.

        A repeat of the same binding answers it again; another code is ALREADY_BOUND. Refused:
        unknown code (NOT_FOUND), one's own (SELF_REFERRAL), a loop (REFERRAL_LOOP), after an order
        (NOT_FIRST_ORDER).
        """
        code = normalised(code)
        with self.deps.read() as r:
            inviter_id = r.db.scalar(select(InviteCodeRow.user_id).where(InviteCodeRow.code == code))
            if inviter_id is None:
                raise FlashSaleError(ErrorCode.NOT_FOUND, "no such invite code")
            known = self._replay(r, invitee_id, inviter_id)
            if known is not None:
                return known
            check_binding(invitee_id, inviter_id, _line_of(r, inviter_id))
            ordered = r.db.scalar(select(exists().where(OrderRow.user_id == invitee_id)))
        if ordered:
            raise FlashSaleError(ErrorCode.NOT_FIRST_ORDER, "an invite code is bound before the first order")
        row = {
            "invitee_id": invitee_id,
            "inviter_id": inviter_id,
            "pair": pair_key(invitee_id, inviter_id),
            "code": code,
            "status": BindingStatus.BOUND.value,
            "bound_at": self.deps.now(),
        }
        with self.deps.uow() as uow:
            uow.db.connection().execute(insert_ignoring_duplicates(uow.db, ReferralBindingRow), [row])
            uow.commit()
        with self.deps.read() as r:
            bound = self._replay(r, invitee_id, inviter_id)
        if bound is None:  # the pair is bound the other way round: a racing bind of the inviter won
            raise FlashSaleError(ErrorCode.REFERRAL_LOOP, "this code's owner was invited by this shopper")
        return bound

    def referral_of(self, invitee_id: str) -> Referral | None:
        """The invitee's binding, or None."""
        with self.deps.read() as r:
            row = r.db.get(ReferralBindingRow, invitee_id)
        return None if row is None else _referral(row)

    def rewards(self, user_id: str) -> list[Reward]:
        """The shopper's reward entries, oldest first."""
        with self.deps.read() as r:
            rows = r.db.scalars(
                select(RewardEntryRow).where(RewardEntryRow.user_id == user_id).order_by(RewardEntryRow.id)
            ).all()
        return [Reward(row.source, row.points, row.coupon_template, row.order_id) for row in rows]

    def points(self, user_id: str) -> int:
        """The shopper's points balance: the sum of their entries."""
        with self.deps.read() as r:
            total = r.db.scalar(
                select(func.coalesce(func.sum(RewardEntryRow.points), 0)).where(
                    RewardEntryRow.user_id == user_id
                )
            )
        return int(total or 0)

    # -- settling ------------------------------------------------------------------------------
    def settle(self, batch: int = 500) -> int:
        """Qualify bound invitees by their first OrderPaid event, then reward or void qualified ones.

        Returns how many bindings moved. Idempotent and safe to run concurrently.
        """
        return self._qualify(batch) + self._decide(batch)

    def _qualify(self, batch: int) -> int:
        """BOUND → QUALIFIED with the invitee's first paid order, as the outbox recorded it; → VOID if
        the invitee had ordered before binding (behind Redis an order row is written a moment after
        the purchase, so `bind` may not have seen it yet: this catches it)."""
        bound = select(ReferralBindingRow.invitee_id, ReferralBindingRow.bound_at).where(
            ReferralBindingRow.status == BindingStatus.BOUND.value
        )
        with self.deps.read() as r:
            paid = r.db.execute(
                select(OrderRow.user_id, EventRow.order_id, EventRow.created_at)
                .join(EventRow, EventRow.order_id == OrderRow.id)
                .where(
                    OrderRow.user_id.in_(bound.with_only_columns(ReferralBindingRow.invitee_id).limit(batch)),
                    EventRow.kind == OrderPaid.__name__,
                )
                .order_by(EventRow.id)
            ).all()
            first: dict[str, tuple[str, datetime]] = {}
            for user_id, order_id, paid_at in paid:
                first.setdefault(user_id, (order_id, paid_at))
            earlier = set(
                r.db.scalars(
                    select(ReferralBindingRow.invitee_id)
                    .join(OrderRow, OrderRow.user_id == ReferralBindingRow.invitee_id)
                    .where(
                        ReferralBindingRow.invitee_id.in_(first),
                        OrderRow.created_at < ReferralBindingRow.bound_at,
                    )
                )
            )
        moved = 0
        for invitee_id, (order_id, paid_at) in first.items():
            with self.deps.uow() as uow:
                if invitee_id in earlier:
                    moved += self._move(uow, invitee_id, BindingStatus.BOUND, BindingStatus.VOID)
                else:
                    moved += self._move(
                        uow,
                        invitee_id,
                        BindingStatus.BOUND,
                        BindingStatus.QUALIFIED,
                        order_id=order_id,
                        qualified_at=paid_at,
                    )
                uow.commit()
        return moved

    def _decide(self, batch: int) -> int:
        """QUALIFIED → VOID if the first paid order was refunded, → REWARDED once past the settle period."""
        with self.deps.read() as r:
            qualified = r.db.execute(
                select(ReferralBindingRow, OrderRow.status)
                .join(OrderRow, OrderRow.id == ReferralBindingRow.order_id)
                .where(ReferralBindingRow.status == BindingStatus.QUALIFIED.value)
                .limit(batch)
            ).all()
        settled_before = self.deps.now() - timedelta(seconds=self.terms.settle_s)
        moved = 0
        for binding, order_status in qualified:
            assert binding.qualified_at is not None  # set with the move to QUALIFIED
            invitee = binding.invitee_id
            with self.deps.uow() as uow:
                if order_status == OrderStatus.REFUNDED.value:
                    moved += self._move(uow, invitee, BindingStatus.QUALIFIED, BindingStatus.VOID)
                elif binding.qualified_at <= settled_before and self._move(
                    uow, invitee, BindingStatus.QUALIFIED, BindingStatus.REWARDED
                ):
                    self._give(uow, binding)  # in the move's transaction: both, or neither
                    moved += 1
                uow.commit()
        return moved

    def _give(self, uow: UnitOfWork, binding: ReferralBindingRow) -> None:
        """Write both sides' reward entries (each source once: a duplicate is skipped)."""
        entries = [
            {
                "user_id": user_id,
                "source": reward_source(binding.invitee_id, side),
                "points": self.terms.points(side),
                "coupon_template": self.terms.coupon_template,
                "order_id": binding.order_id,
                "created_at": self.deps.now(),
            }
            for side, user_id in ((Side.INVITER, binding.inviter_id), (Side.INVITEE, binding.invitee_id))
        ]
        uow.db.connection().execute(insert_ignoring_duplicates(uow.db, RewardEntryRow), entries)

    @staticmethod
    def _move(
        uow: UnitOfWork, invitee_id: str, source: BindingStatus, target: BindingStatus, **values: object
    ) -> int:
        """Compare-and-set a binding's status: of racing settles, exactly one moves it."""
        return int(
            uow.db.connection()
            .execute(
                update(ReferralBindingRow)
                .where(ReferralBindingRow.invitee_id == invitee_id, ReferralBindingRow.status == source.value)
                .values(status=target.value, **values)
            )
            .rowcount
        )

    @staticmethod
    def _replay(r: ReadUnit, invitee_id: str, inviter_id: str) -> Referral | None:
        """The invitee's binding if it is to this inviter; ALREADY_BOUND if to another; None if unbound."""
        row = r.db.get(ReferralBindingRow, invitee_id)
        if row is None:
            return None
        if row.inviter_id != inviter_id:
            raise FlashSaleError(ErrorCode.ALREADY_BOUND, "an invite code is bound once")
        return _referral(row)


def _line_of(r: ReadUnit, user_id: str) -> list[str]:
    """Who invited `user_id`, who invited them, … (at most MAX_CHAIN up)."""
    line: list[str] = []
    current = user_id
    while len(line) < MAX_CHAIN:
        inviter = r.db.scalar(
            select(ReferralBindingRow.inviter_id).where(ReferralBindingRow.invitee_id == current)
        )
        if inviter is None or inviter in line:
            break
        line.append(inviter)
        current = inviter
    return line


def _referral(row: ReferralBindingRow) -> Referral:
    return Referral(row.invitee_id, row.inviter_id, row.code, BindingStatus(row.status), row.order_id)
