"""Coupons and shop promotions at checkout: priced in, redeemed once, given back once.

A checkout's coupons go through three states, kept in `checkout_coupons` beside its lines:

1. **JOURNALED**, written with the checkout and its priced lines (one transaction): the coupons the
   shopper applied and the shop promotions (auto-applying templates) that applied, each with the
   discount the price engine gave it. A promotion is handed to the checkout as a coupon of its own
   (claimed under the checkout's id, so a replay gets the same one): it spends the template's budget
   exactly as a claimed coupon does.
2. **REDEEMED**: before any line is held, each coupon is redeemed in the coupon ledger for the
   checkout (`order_id` = the checkout's id), which takes the discount from the budget atomically and
   is idempotent per checkout, so a double-clicked checkout redeems once. A refusal
   (BUDGET_EXHAUSTED, COUPON_USED, COUPON_EXPIRED) refuses the checkout with that code before anything
   is held. The coupons' rows are written REDEEMED in the transaction that stores the orders.
3. **RESTORED**: the coupons go back (budget and coupon, once: the ledger restores only the
   checkout's own redemption) when the checkout was refused, or when every line's order ended
   without being kept paid (CANCELLED, EXPIRED or REFUNDED). A partial cancel or refund keeps the
   coupon: the refunded line gives back the money it was charged (its total after its share of the
   discount), never the coupon.

`settle` decides 3 from the store alone and is idempotent, so it runs after each cancel, expiry and
refund, and again from the sweeper (`sweep`), which also finishes what a crash interrupted: a
checkout left PENDING longer than any hold can live is refused, and its coupons restored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, exists, literal, not_, or_, select, update
from sqlalchemy.orm import Session

from flashsale.coupons import CouponLedger
from flashsale.domain.campaign import MAX_PAYMENT_WINDOW_S
from flashsale.domain.cart import CheckoutStatus, is_checkout_line
from flashsale.domain.coupons import Coupon, CouponState, CouponTemplate
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import Order, OrderStatus
from flashsale.domain.price_engine import PricedCart
from flashsale.domain.promotions import Offer
from flashsale.services.coupons import CouponService
from flashsale.services.deps import Deps
from flashsale.store import coupon_repository as coupon_repo
from flashsale.store.repositories import changed_rows, insert_ignoring_duplicates
from flashsale.store.tables import CheckoutCouponRow, CheckoutLineRow, CheckoutRow, CouponRow, OrderRow

log = logging.getLogger(__name__)

JOURNALED, REDEEMED, RESTORED = "JOURNALED", "REDEEMED", "RESTORED"
PROMOTION_PREFIX = "promo:"  # a shop promotion's offer code in the breakdown: promo:<template id>
# Orders that ended without the shopper keeping what they paid for: the coupon may go back.
ENDED = (OrderStatus.CANCELLED.value, OrderStatus.EXPIRED.value, OrderStatus.REFUNDED.value)
# A checkout still PENDING after this long was abandoned by a crash: none of its holds can be live.
STALE_CHECKOUT_S = MAX_PAYMENT_WINDOW_S + 60
MAX_COUPONS_PER_CHECKOUT = 5


@dataclass(frozen=True, slots=True)
class Redemption:
    """A coupon a checkout uses, the template it is of, and the discount it gave."""

    coupon_id: str
    template_id: int
    discount_cents: int
    state: str = JOURNALED


@dataclass(frozen=True, slots=True)
class CartOffers:
    """What a cart may be priced with: the shopper's coupons and the shop's promotions, by offer code."""

    coupons: tuple[Offer, ...]
    promotions: tuple[Offer, ...]
    templates: dict[str, CouponTemplate]  # offer code -> its template


def checkout_of_request(request_id: str) -> str | None:
    """The checkout a line's request id belongs to (`co_…#n`), or None for a plain purchase."""
    return request_id.split("#", 1)[0] if is_checkout_line(request_id) else None


class CheckoutCoupons:
    """The coupon side of a checkout: offers to price with, redemption, and giving coupons back."""

    def __init__(self, deps: Deps, coupons: CouponService) -> None:
        self.deps = deps
        self.coupons = coupons

    @property
    def ledger(self) -> CouponLedger:
        return self.coupons.ledger

    # -- pricing -------------------------------------------------------------------------------
    def offers(self, user_id: str, coupon_ids: Sequence[str]) -> CartOffers:
        """The shopper's applied coupons (each must be theirs and unused) and the promotions in force.

        A promotion whose budget is spent is left out, so the cart's price does not promise it.
        """
        if len(coupon_ids) > MAX_COUPONS_PER_CHECKOUT:
            raise FlashSaleError(
                ErrorCode.COUPON_NOT_APPLICABLE, f"at most {MAX_COUPONS_PER_CHECKOUT} coupons per checkout"
            )
        templates: dict[str, CouponTemplate] = {}
        coupons: list[Offer] = []
        for coupon_id in dict.fromkeys(coupon_ids):
            coupon = self.ledger.get(coupon_id)
            if coupon is None or coupon.user_id != user_id:
                raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, f"no coupon {coupon_id!r} of this shopper")
            if coupon.state is CouponState.REDEEMED:
                raise FlashSaleError(ErrorCode.COUPON_USED, f"coupon {coupon_id!r} is in use")
            if coupon.state is CouponState.LAPSED:
                raise FlashSaleError(ErrorCode.COUPON_EXPIRED, f"coupon {coupon_id!r} has lapsed")
            template = self.coupons.template(coupon.template_id)
            templates[coupon_id] = template
            coupons.append(template.to_offer(coupon_id))
        promotions: list[Offer] = []
        for template in self.coupons.promotions():
            level = self.ledger.budget_level(template.id)
            if level.budget_cents is not None and level.spent_cents >= level.budget_cents:
                continue
            code = f"{PROMOTION_PREFIX}{template.id}"
            templates[code] = template
            promotions.append(template.to_offer(code))
        return CartOffers(tuple(coupons), tuple(promotions), templates)

    def affordable(self, priced: PricedCart, offers: CartOffers) -> CartOffers | None:
        """The offers without the promotions whose budget cannot cover what they would take off now.

        None when every promotion that applied fits its budget (the price stands as it is).
        """
        short = set()
        for applied in priced.offers:
            if not applied.code.startswith(PROMOTION_PREFIX):
                continue
            level = self.ledger.budget_level(offers.templates[applied.code].id)
            if level.budget_cents is not None and applied.off_cents > level.budget_cents - level.spent_cents:
                short.add(applied.code)
        if not short:
            return None
        kept = tuple(p for p in offers.promotions if p.code not in short)
        return CartOffers(offers.coupons, kept, offers.templates)

    def redemptions(
        self, user_id: str, checkout_id: str, priced: PricedCart, offers: CartOffers
    ) -> list[Redemption]:
        """The coupons a checkout priced as `priced` redeems; a promotion's coupon is claimed now.

        The claim is idempotent per (shopper, checkout, template), so a replayed checkout is handed
        the same coupon and the budget is taken once.
        """
        found = []
        for applied in priced.offers:
            template = offers.templates[applied.code]
            if applied.code.startswith(PROMOTION_PREFIX):
                coupon = self.coupons.claim_promotion(
                    user_id=user_id, template_id=template.id, request_id=f"{checkout_id}:{template.id}"
                )
                coupon_id = coupon.coupon_id
            else:
                coupon_id = applied.code
            found.append(Redemption(coupon_id, template.id, applied.off_cents))
        return found

    # -- the checkout's transactions -------------------------------------------------------------
    @staticmethod
    def journal_rows(checkout_id: str, redemptions: Iterable[Redemption]) -> list[dict[str, object]]:
        """The rows to write with the checkout (in its opening transaction)."""
        return [
            {
                "checkout_id": checkout_id,
                "coupon_id": r.coupon_id,
                "template_id": r.template_id,
                "discount_cents": r.discount_cents,
                "state": JOURNALED,
            }
            for r in redemptions
        ]

    def journaled(self, checkout_id: str) -> list[Redemption]:
        """The checkout's coupons as stored."""
        with self.deps.read() as r:
            rows = r.db.scalars(
                select(CheckoutCouponRow)
                .where(CheckoutCouponRow.checkout_id == checkout_id)
                .order_by(CheckoutCouponRow.coupon_id)
            ).all()
        return [Redemption(r.coupon_id, r.template_id, r.discount_cents, r.state) for r in rows]

    def redeem(
        self, checkout_id: str, redemptions: Sequence[Redemption]
    ) -> tuple[list[Coupon], ErrorCode | None]:
        """Redeem each coupon for the checkout (once, whatever the repeats); stop at the first refusal.

        Returns the redeemed coupons and the refusal's code, if any. What was redeemed before a
        refusal goes back with `settle`, once the checkout is stored REFUSED.
        """
        redeemed = []
        for r in redemptions:
            try:
                redeemed.append(
                    self.ledger.redeem(r.coupon_id, order_id=checkout_id, discount_cents=r.discount_cents)
                )
            except FlashSaleError as exc:
                return redeemed, exc.code
        return redeemed, None

    @staticmethod
    def record_redeemed(db: Session, checkout_id: str, coupons: Sequence[Coupon]) -> None:
        """In the transaction that places the checkout: its coupons' rows say REDEEMED."""
        for coupon in coupons:
            coupon_repo.save_coupon(db, coupon)
        if coupons:
            changed_rows(
                db,
                update(CheckoutCouponRow)
                .where(CheckoutCouponRow.checkout_id == checkout_id, CheckoutCouponRow.state == JOURNALED)
                .values(state=REDEEMED),
            )

    # -- giving back ---------------------------------------------------------------------------
    def settle(self, checkout_id: str, *, force: bool = False) -> int:
        """Give the checkout's coupons back if it was refused or all its orders ended unkept; return how many.

        Idempotent: the ledger restores only this checkout's own redemption of a coupon (a coupon
        since used by another checkout is left alone), and a RESTORED row is not looked at again
        unless `force` (a twin of the checkout that redeemed after another twin restored).
        """
        with self.deps.read() as r:
            status = r.db.scalar(select(CheckoutRow.status).where(CheckoutRow.id == checkout_id))
            if status is None:
                return 0
            rows = r.db.scalars(
                select(CheckoutCouponRow).where(
                    CheckoutCouponRow.checkout_id == checkout_id,
                    or_(CheckoutCouponRow.state != RESTORED, literal(force)),
                )
            ).all()
            if not rows:
                return 0
            if status == CheckoutStatus.PLACED:
                statuses = (
                    r.db.execute(
                        select(OrderRow.status)
                        .select_from(CheckoutLineRow)
                        .outerjoin(OrderRow, OrderRow.id == CheckoutLineRow.order_id)
                        .where(CheckoutLineRow.checkout_id == checkout_id)
                    )
                    .scalars()
                    .all()
                )
                if not statuses or any(s not in ENDED for s in statuses):
                    return 0
            elif status != CheckoutStatus.REFUSED:
                return 0
            coupon_ids = [row.coupon_id for row in rows]
        for coupon_id in coupon_ids:
            coupon = self.ledger.restore(coupon_id, order_id=checkout_id)
            with self.deps.uow() as uow:
                # Only over this checkout's own redemption (or none): a checkout that redeemed the
                # coupon since, and stored it, is newer than this snapshot.
                changed_rows(
                    uow.db,
                    update(CouponRow)
                    .where(
                        CouponRow.id == coupon_id,
                        or_(CouponRow.order_id == checkout_id, CouponRow.order_id.is_(None)),
                    )
                    .values(
                        state=coupon.state.value,
                        order_id=coupon.order_id,
                        discount_cents=coupon.discount_cents,
                    ),
                )
                changed_rows(
                    uow.db,
                    update(CheckoutCouponRow)
                    .where(
                        CheckoutCouponRow.checkout_id == checkout_id, CheckoutCouponRow.coupon_id == coupon_id
                    )
                    .values(state=RESTORED),
                )
                uow.commit()
        return len(coupon_ids)

    def closed(self, orders: Iterable[Order]) -> None:
        """An order listener: settle the checkouts of orders that were cancelled, expired or refunded."""
        for checkout_id in dict.fromkeys(checkout_of_request(o.request_id) for o in orders):
            if checkout_id is None:
                continue
            try:
                self.settle(checkout_id)
            except Exception:  # the sweeper settles it later; the order's own change stands
                log.exception("settling the coupons of checkout %s failed", checkout_id)

    def sweep(self) -> int:
        """Refuse checkouts a crash left PENDING past any hold's life; settle every checkout that may be due.

        Returns how many coupons went back. Run by the expiry sweeper; safe to run anywhere, any time.
        """
        cutoff = self.deps.now() - timedelta(seconds=STALE_CHECKOUT_S)
        with self.deps.uow() as uow:
            changed_rows(
                uow.db,
                update(CheckoutRow)
                .where(CheckoutRow.status == "PENDING", CheckoutRow.created_at < cutoff)
                .values(status=CheckoutStatus.REFUSED.value, error_code=ErrorCode.CONFLICT.value),
            )
            uow.commit()
        live_line = (
            select(CheckoutLineRow.checkout_id)
            .outerjoin(OrderRow, OrderRow.id == CheckoutLineRow.order_id)
            .where(
                CheckoutLineRow.checkout_id == CheckoutCouponRow.checkout_id,
                or_(OrderRow.status.is_(None), OrderRow.status.not_in(ENDED)),
            )
        )
        with self.deps.read() as r:
            due = r.db.scalars(
                select(CheckoutCouponRow.checkout_id)
                .join(CheckoutRow, CheckoutRow.id == CheckoutCouponRow.checkout_id)
                .where(
                    CheckoutCouponRow.state != RESTORED,
                    or_(
                        CheckoutRow.status == CheckoutStatus.REFUSED.value,
                        and_(CheckoutRow.status == CheckoutStatus.PLACED.value, not_(exists(live_line))),
                    ),
                )
                .distinct()
            ).all()
        return sum(self.settle(checkout_id) for checkout_id in due)


def journal(db: Session, checkout_id: str, redemptions: Sequence[Redemption]) -> None:
    """Write the checkout's coupons (JOURNALED) in the transaction that opens it."""
    if redemptions:
        db.connection().execute(
            insert_ignoring_duplicates(db, CheckoutCouponRow),
            CheckoutCoupons.journal_rows(checkout_id, redemptions),
        )
