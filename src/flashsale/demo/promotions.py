"""The demo's promotions audit: coupons, the 满减 promotion, the basket checkouts and the free orders,
read back from the store and the ledgers after the sale."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select

from flashsale.bootstrap import Platform
from flashsale.demo.baskets import BasketTally
from flashsale.demo.campaign import DemoCampaign
from flashsale.domain.cart import CheckoutStatus
from flashsale.domain.coupons import CouponState
from flashsale.domain.free_orders import WinStatus
from flashsale.domain.group_buy import seat_key
from flashsale.domain.orders import OrderStatus
from flashsale.services.checkout_coupons import REDEEMED, RESTORED
from flashsale.store.tables import CheckoutCouponRow, CheckoutLineRow, CheckoutRow, CouponRow, OrderRow

GROUP_KEY_PREFIX = seat_key("", 0, "").split(":", 1)[0] + ":"  # "group:"

PROMOTION_DEFINITIONS = {
    "coupons_once": (
        "no coupon has two REDEEMED checkout rows, every coupon stored REDEEMED is the one REDEEMED"
        " row's (same checkout) and vice versa, and no REDEEMED row belongs to a checkout whose"
        " orders all ended (its coupon should have come back)"
    ),
    "budget": (
        "per template (the coupon's and the promotion's), the budget the coupon ledger says is spent"
        " equals Σ discounts of its checkout rows still REDEEMED, and never exceeds the budget"
    ),
    "cart_stock": (
        "per regular item, available + held + sold == stock in the ledger, sold == units of PAID"
        " orders and held == units of UNPAID orders in the database"
    ),
    "free_orders": (
        "one winner per winning rank the phone's paid orders reached, each rebated in full, and"
        " Σ rebates == the rebates in the payments journal"
    ),
}


@dataclass(frozen=True, slots=True)
class RegularStock:
    """One regular item at the end: the ledger's counters beside the database's orders."""

    item_id: int
    name: str
    stock: int
    available: int
    held: int
    sold: int
    db_sold: int
    db_held: int
    paid_orders: int
    revenue_cents: int  # what the paid orders were charged, after their share of the discounts

    @property
    def conserved(self) -> bool:
        return self.available + self.held + self.sold == self.stock and (self.sold, self.held) == (
            self.db_sold,
            self.db_held,
        )


@dataclass(frozen=True, slots=True)
class Winner:
    """A free order: its slot (the rank of its payment), who won it and what came back."""

    slot: int
    user_id: str
    order_id: str
    rebate_cents: int
    rebated: bool


@dataclass(frozen=True, slots=True)
class PromotionAudit:
    """The promotions around the flash sale, counted from the store, and the checks that must hold."""

    tally: BasketTally
    coupons_claimed: int
    coupons_redeemed: int  # the wave's coupons still REDEEMED: kept by a paid (or still open) checkout
    coupons_given_back: int  # coupons restored after their checkout's orders were all cancelled or expired
    coupon_budget_cents: int
    coupon_spent_cents: int
    promotion_discount_cents: int  # 满减 taken off the checkouts still kept
    promotion_budget_cents: int
    promotion_spent_cents: int
    checkouts_placed: int
    checkouts_paid: int
    checkouts_cancelled: int
    checkouts_expired: int
    checkouts_refused: int
    coupons_redeemed_twice: int  # see PROMOTION_DEFINITIONS["coupons_once"]: must stay 0
    budget_mismatch_cents: int  # Σ |spent − Σ REDEEMED discounts| + overspend, over both templates
    regular: tuple[RegularStock, ...]
    free_order_ranks: tuple[int, ...]
    free_order_paid: int  # the phone's orders the rule counted (its last rank)
    winners: tuple[Winner, ...]
    rebated_cents_journal: int  # the payments journal's rebates

    @property
    def ranks_reached(self) -> int:
        return sum(1 for rank in self.free_order_ranks if rank <= self.free_order_paid)

    @property
    def cart_stock_conserved(self) -> bool:
        return all(item.conserved for item in self.regular)

    @property
    def free_orders_ok(self) -> bool:
        return (
            len(self.winners) == self.ranks_reached
            and all(w.rebated for w in self.winners)
            and sum(w.rebate_cents for w in self.winners) == self.rebated_cents_journal
        )

    @property
    def ok(self) -> bool:
        """True when every promotions check holds and no basket call failed or doubled a checkout."""
        return (
            self.coupons_redeemed_twice == 0
            and self.budget_mismatch_cents == 0
            and self.cart_stock_conserved
            and self.free_orders_ok
            and self.tally.duplicate_checkouts == 0
            and not self.tally.failures
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the audit as plain JSON-ready data."""
        tally = self.tally
        return {
            "basket_shoppers": {
                "coupon_claims": tally.claims,
                "claim_refusals": {c.value: n for c, n in sorted(tally.claim_refusals.items())},
                "checkout_calls": tally.checkout_calls,
                "checkouts": tally.checkouts,
                "replays": tally.replays,
                "double_clicks": tally.double_clicks,
                "duplicate_checkouts": tally.duplicate_checkouts,
                "refusals": {c.value: n for c, n in sorted(tally.refusals.items())},
                "without_coupon": tally.without_coupon,
                "failures": dict(sorted(tally.failures.items())),
            },
            "coupons": {
                "claimed": self.coupons_claimed,
                "redeemed": self.coupons_redeemed,
                "given_back": self.coupons_given_back,
                "budget_cents": self.coupon_budget_cents,
                "spent_cents": self.coupon_spent_cents,
            },
            "promotion": {
                "discount_cents": self.promotion_discount_cents,
                "budget_cents": self.promotion_budget_cents,
                "spent_cents": self.promotion_spent_cents,
            },
            "checkouts": {
                "placed": self.checkouts_placed,
                "paid": self.checkouts_paid,
                "cancelled": self.checkouts_cancelled,
                "expired": self.checkouts_expired,
                "refused": self.checkouts_refused,
            },
            "regular_items": [{**asdict(i), "conserved": i.conserved} for i in self.regular],
            "free_orders": {
                "ranks": list(self.free_order_ranks),
                "paid_orders_counted": self.free_order_paid,
                "ranks_reached": self.ranks_reached,
                "winners": [asdict(w) for w in self.winners],
            },
            "coupons_redeemed_twice": self.coupons_redeemed_twice,
            "budget_mismatch_cents": self.budget_mismatch_cents,
            "cart_stock_conserved": self.cart_stock_conserved,
            "free_orders_ok": self.free_orders_ok,
            "ok": self.ok,
            "definitions": PROMOTION_DEFINITIONS,
        }


def audit_promotions(
    platform: Platform, campaign: DemoCampaign, tally: BasketTally, *, rebated_cents: int
) -> PromotionAudit:
    """Count and check the promotions of the demo's campaign.

    `rebated_cents`: the rebates the payments audit found in the journal.
    """
    promos = campaign.promotions
    assert promos is not None
    templates = (promos.coupon_template_id, promos.promotion_template_id)
    with platform.deps.read() as r:
        db = r.db
        coupons = db.execute(
            select(CouponRow.id, CouponRow.state, CouponRow.order_id).where(
                CouponRow.wave_id == promos.coupon_wave_id
            )
        ).all()
        journal = db.execute(
            select(
                CheckoutCouponRow.checkout_id,
                CheckoutCouponRow.coupon_id,
                CheckoutCouponRow.template_id,
                CheckoutCouponRow.discount_cents,
                CheckoutCouponRow.state,
                CheckoutRow.status,
            ).join(CheckoutRow, CheckoutRow.id == CheckoutCouponRow.checkout_id)
        ).all()
        # The basket shoppers' checkouts: a group seat's one-line checkout is the group deal's (its audit).
        checkouts = dict(
            db.execute(
                select(CheckoutRow.id, CheckoutRow.status).where(
                    CheckoutRow.idempotency_key.not_like(f"{GROUP_KEY_PREFIX}%")
                )
            ).all()
        )
        line_statuses: defaultdict[str, set[str]] = defaultdict(set)
        for checkout_id, status in db.execute(
            select(CheckoutLineRow.checkout_id, OrderRow.status).join(
                OrderRow, OrderRow.id == CheckoutLineRow.order_id
            )
        ):
            line_statuses[checkout_id].add(status)
        regular_ids = [item.id for item in campaign.regular]
        stored = {
            (item_id, status): (int(n), int(qty or 0), int(cents or 0))
            for item_id, status, n, qty, cents in db.execute(
                select(
                    OrderRow.item_id,
                    OrderRow.status,
                    func.count(),
                    func.sum(OrderRow.qty),
                    func.sum(OrderRow.total_cents),
                )
                .where(OrderRow.item_id.in_(regular_ids))
                .group_by(OrderRow.item_id, OrderRow.status)
            )
        }
    ended = {OrderStatus.CANCELLED.value, OrderStatus.EXPIRED.value, OrderStatus.REFUNDED.value}
    placed = [c for c, status in checkouts.items() if status == CheckoutStatus.PLACED]

    def all_lines(checkout_id: str, status: OrderStatus) -> bool:
        return line_statuses[checkout_id] == {status.value}

    redeemed_rows = [row for row in journal if row.state == REDEEMED]
    per_coupon = Counter(row.coupon_id for row in redeemed_rows)
    stored_redeemed = {cid: order for cid, state, order in coupons if state == CouponState.REDEEMED}
    journal_redeemed = {
        row.coupon_id: row.checkout_id
        for row in redeemed_rows
        if row.template_id == promos.coupon_template_id
    }
    redeemed_twice = (
        sum(1 for n in per_coupon.values() if n > 1)
        + len(set(stored_redeemed.items()) ^ set(journal_redeemed.items()))
        + sum(1 for row in redeemed_rows if line_statuses[row.checkout_id] <= ended)
    )
    mismatch = 0
    levels = {t: platform.coupons.budget(t) for t in templates}
    for template_id, level in levels.items():
        kept = sum(row.discount_cents for row in redeemed_rows if row.template_id == template_id)
        mismatch += abs(level.spent_cents - kept)
        if level.budget_cents is not None:
            mismatch += max(0, level.spent_cents - level.budget_cents)
    regular = []
    for item in campaign.regular:
        stock = platform.ledger.stock(item.id)
        paid_orders, paid_units, revenue = stored.get((item.id, OrderStatus.PAID.value), (0, 0, 0))
        regular.append(
            RegularStock(
                item_id=item.id,
                name=item.spec.name,
                stock=stock.quota,
                available=stock.available,
                held=stock.held,
                sold=stock.sold,
                db_sold=paid_units,
                db_held=stored.get((item.id, OrderStatus.UNPAID.value), (0, 0, 0))[1],
                paid_orders=paid_orders,
                revenue_cents=revenue,
            )
        )
    rule = next(v for v in platform.free_orders.rules() if v.rule.id == promos.free_order_rule_id)
    winners = tuple(
        Winner(w.slot, w.user_id, w.order_id, w.rebate_cents, w.status is WinStatus.REBATED)
        for w in platform.free_orders.winners(promos.free_order_rule_id)
    )
    coupon_level, promotion_level = levels[promos.coupon_template_id], levels[promos.promotion_template_id]
    return PromotionAudit(
        tally=tally,
        coupons_claimed=len(coupons),
        coupons_redeemed=len(stored_redeemed),
        coupons_given_back=sum(
            1
            for row in journal
            if row.state == RESTORED
            and row.template_id == promos.coupon_template_id
            and row.status == CheckoutStatus.PLACED
        ),
        coupon_budget_cents=coupon_level.budget_cents or 0,
        coupon_spent_cents=coupon_level.spent_cents,
        promotion_discount_cents=sum(
            row.discount_cents for row in redeemed_rows if row.template_id == promos.promotion_template_id
        ),
        promotion_budget_cents=promotion_level.budget_cents or 0,
        promotion_spent_cents=promotion_level.spent_cents,
        checkouts_placed=len(placed),
        checkouts_paid=sum(1 for c in placed if all_lines(c, OrderStatus.PAID)),
        checkouts_cancelled=sum(1 for c in placed if all_lines(c, OrderStatus.CANCELLED)),
        checkouts_expired=sum(1 for c in placed if all_lines(c, OrderStatus.EXPIRED)),
        checkouts_refused=sum(1 for status in checkouts.values() if status == CheckoutStatus.REFUSED),
        coupons_redeemed_twice=redeemed_twice,
        budget_mismatch_cents=mismatch,
        regular=tuple(regular),
        free_order_ranks=promos.free_order_ranks,
        free_order_paid=rule.paid_count,
        winners=winners,
        rebated_cents_journal=rebated_cents,
    )
