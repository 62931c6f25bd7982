"""What a campaign's promotions did, for its review: coupons and shop promotions at checkout, free orders.

Read from the store only: the checkouts holding a line of the campaign's items, their coupons (kept,
or given back when every line ended), and the free-order wins of the campaign's sessions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from flashsale.services.checkout_coupons import REDEEMED, RESTORED
from flashsale.store.tables import (
    CheckoutCouponRow,
    CheckoutLineRow,
    CouponTemplateRow,
    FreeOrderRuleRow,
    FreeOrderWinRow,
    ItemRow,
    SessionRow,
)


@dataclass(frozen=True, slots=True)
class CouponFigures:
    """One coupon template's use in the campaign's checkouts (a shop promotion applies by itself)."""

    template_id: int
    name: str
    promotion: bool
    kept: int  # coupons still redeemed by a checkout with a line kept
    given_back: int  # coupons that came back: the checkout was refused, or every line ended
    discount_cents: int  # what the kept ones take off
    budget_cents: int | None


@dataclass(frozen=True, slots=True)
class FreeOrderFigures:
    """One free-order win: the rule, the winning rank, who won, and the rebate."""

    rule: str
    slot: int
    user_id: str
    order_id: str
    rebate_cents: int
    status: str  # pending | rebated


@dataclass(frozen=True, slots=True)
class PromotionsReview:
    coupons: tuple[CouponFigures, ...]
    free_orders: tuple[FreeOrderFigures, ...]

    @property
    def empty(self) -> bool:
        return not self.coupons and not self.free_orders

    @property
    def discount_cents(self) -> int:
        return sum(c.discount_cents for c in self.coupons)

    @property
    def rebate_cents(self) -> int:
        return sum(w.rebate_cents for w in self.free_orders)


def load_promotions(reads: sessionmaker[Session], campaign_id: int) -> PromotionsReview:
    """The campaign's coupons, shop promotions and free orders, as its review shows them."""
    with reads() as db:
        sessions = select(SessionRow.id).where(SessionRow.campaign_id == campaign_id)
        items = select(ItemRow.id).where(ItemRow.session_id.in_(sessions))
        checkouts = select(CheckoutLineRow.checkout_id).where(CheckoutLineRow.item_id.in_(items)).distinct()
        used = db.execute(
            select(
                CheckoutCouponRow.template_id, CheckoutCouponRow.state, CheckoutCouponRow.discount_cents
            ).where(
                CheckoutCouponRow.checkout_id.in_(checkouts),
                CheckoutCouponRow.state.in_((REDEEMED, RESTORED)),
            )
        ).all()
        kept: Counter[int] = Counter()
        back: Counter[int] = Counter()
        off: Counter[int] = Counter()
        for template_id, state, cents in used:
            if state == REDEEMED:
                kept[template_id] += 1
                off[template_id] += cents
            else:
                back[template_id] += 1
        templates = db.scalars(
            select(CouponTemplateRow).where(CouponTemplateRow.id.in_(set(kept) | set(back)))
        )
        coupons = tuple(
            CouponFigures(t.id, t.name, t.auto_apply, kept[t.id], back[t.id], off[t.id], t.budget_cents)
            for t in sorted(templates, key=lambda t: t.id)
        )
        wins = db.execute(
            select(FreeOrderRuleRow.name, FreeOrderWinRow)
            .join(FreeOrderWinRow, FreeOrderWinRow.rule_id == FreeOrderRuleRow.id)
            .where(FreeOrderRuleRow.session_id.in_(sessions))
            .order_by(FreeOrderRuleRow.id, FreeOrderWinRow.slot)
        ).all()
        free = tuple(
            FreeOrderFigures(rule, w.slot, w.user_id, w.order_id, w.rebate_cents, w.status)
            for rule, w in wins
        )
    return PromotionsReview(coupons, free)
