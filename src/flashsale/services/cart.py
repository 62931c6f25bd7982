"""The cart and its checkout: lines kept in the store, priced by the price engine, held all or none.

Checkout, for a shopper's idempotency key:
1. The checkout (named by the key, see `domain.cart.checkout_id_of`) and its lines, priced, are
   written first, status PENDING. Whoever later stores a line's order (this checkout, the order
   writer behind Redis, an expiry sweep) prices it from this record (`line_price`), never from
   the flash price alone.
2. Every line is held in one ledger call, each under its own request id, in the stored lines'
   order. A repeat of the key (a double click, a retry) sends the same request ids, so the ledger
   replays those holds instead of holding twice.
3. All held: the orders are stored (write-through) and the checkout is PLACED, the cart's lines
   for those items removed, in one transaction. Any line refused: the lines this call held go back
   at once, and the checkout is REFUSED with that line's code, which every repeat of the key
   answers again; nothing was ordered.
Paying a checkout pays each line's order through the payment desk (charged at most once each).

Coupons (`services.checkout_coupons`): the shopper's applied coupons and the shop promotions in
force are priced in at step 1, their discounts allocated to the lines (each line's order is charged
its discounted total) and journaled with the checkout; at step 2 each coupon is redeemed for the
checkout before any line is held (a refusal refuses the checkout, nothing held); they go back once
the checkout is refused or every line's order ended unkept.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update

from flashsale.domain.cart import (
    Cart,
    CartLine,
    CheckoutStatus,
    PricedItem,
    checkout_id_of,
    line_request_id,
)
from flashsale.domain.coupons import Coupon
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold
from flashsale.domain.orders import Order, OrderStatus
from flashsale.domain.price_engine import CartLine as PriceLine
from flashsale.domain.price_engine import FlashPrice, PricedCart, price_cart
from flashsale.ledger.contract import Reservation
from flashsale.services.checkout_coupons import CartOffers, CheckoutCoupons, Redemption, journal
from flashsale.services.deps import Deps
from flashsale.services.members import MemberTiers
from flashsale.services.orders import OrderService, store_placed
from flashsale.services.recall import reserve_recalling
from flashsale.store import repositories as repo
from flashsale.store.repositories import insert_ignoring_duplicates
from flashsale.store.tables import CartLineRow, CheckoutLineRow, CheckoutRow
from flashsale.store.uow import UnitOfWork

PENDING = "PENDING"  # written, not yet decided


@dataclass(frozen=True, slots=True)
class CheckoutLine:
    line_no: int
    item_id: int
    qty: int
    unit_price_cents: int
    total_cents: int
    request_id: str
    order: Order | None = None  # the line's order once placed (as it is now)


@dataclass(frozen=True, slots=True)
class Checkout:
    id: str
    user_id: str
    status: str
    lines: tuple[CheckoutLine, ...]
    subtotal_cents: int
    discount_cents: int
    shipping_cents: int
    total_cents: int
    error_code: ErrorCode | None = None
    coupons: tuple[Redemption, ...] = ()  # the coupons and shop promotions it redeems


@dataclass(frozen=True, slots=True)
class CartView:
    """A cart with its price as it would be checked out now (None for an empty cart)."""

    cart: Cart
    price: PricedCart | None


class CartService:
    """A shopper's cart: change its lines, see its price, check it out, pay the checkout."""

    def __init__(self, deps: Deps, orders: OrderService, coupons: CheckoutCoupons | None = None) -> None:
        self.deps = deps
        self.orders = orders
        self.coupons = coupons  # None: no coupons and no shop promotions (prices are the items')
        self.tiers = MemberTiers(deps)  # a member pays a regular item's member price for their tier

    # -- the cart ------------------------------------------------------------------------------
    def view(self, user_id: str, coupon_ids: Sequence[str] = ()) -> CartView:
        """The shopper's cart, priced as it would be checked out now (with these coupons applied)."""
        cart = self._load(user_id)
        return CartView(cart, self._price(user_id, cart.lines, coupon_ids)[0] if cart.lines else None)

    def add(self, user_id: str, item_id: int, qty: int) -> CartView:
        """Put `qty` more units of an item in the cart."""
        self._check_sold_here(item_id)  # UNKNOWN_ITEM before anything is written
        return self._save(self._load(user_id).added(item_id, qty), item_id)

    def set_qty(self, user_id: str, item_id: int, qty: int) -> CartView:
        """Set the item's line to `qty` units; 0 removes it."""
        cart = self._load(user_id)
        if qty and not cart.qty_of(item_id):
            self._check_sold_here(item_id)
        return self._save(cart.with_qty(item_id, qty), item_id)

    def _check_sold_here(self, item_id: int) -> None:
        self.deps.prices.get(item_id)
        with self.deps.read() as r:
            # A rehearsal's copy is sold only to its crowd, which buys with the copy's pass, never by
            # cart: to everyone else its items do not exist.
            if repo.in_rehearsal(r.db, item_id):
                raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {item_id}")

    def _load(self, user_id: str) -> Cart:
        with self.deps.read() as r:
            rows = r.db.execute(
                select(CartLineRow.item_id, CartLineRow.qty)
                .where(CartLineRow.user_id == user_id)
                .order_by(CartLineRow.position, CartLineRow.item_id)
            ).all()
        return Cart(user_id, tuple(CartLine(item_id, qty) for item_id, qty in rows))

    def _save(self, cart: Cart, item_id: int) -> CartView:
        """Write the item's line as the cart now has it (another line is untouched)."""
        qty, now = cart.qty_of(item_id), self.deps.now()
        with self.deps.uow() as uow:
            db = uow.db.connection()
            mine = (CartLineRow.user_id == cart.user_id) & (CartLineRow.item_id == item_id)
            if not qty:
                db.execute(delete(CartLineRow).where(mine))
            elif not db.execute(update(CartLineRow).where(mine).values(qty=qty, updated_at=now)).rowcount:
                last = db.scalar(
                    select(func.max(CartLineRow.position)).where(CartLineRow.user_id == cart.user_id)
                )
                row = {"user_id": cart.user_id, "item_id": item_id, "qty": qty, "position": (last or 0) + 1}
                db.execute(insert_ignoring_duplicates(uow.db, CartLineRow), [{**row, "updated_at": now}])
            uow.commit()
        return self.view(cart.user_id)

    def _price(
        self, user_id: str, lines: Sequence[CartLine], coupon_ids: Sequence[str] = ()
    ) -> tuple[PricedCart, CartOffers | None]:
        """The cart's price with the shopper's coupons and the promotions whose budget still covers them."""
        priced = []
        for line in lines:
            item, product = self.deps.prices.get(line.item_id)
            priced.append(
                PriceLine(
                    product_id=product.id,
                    category=product.category or "",
                    qty=line.qty,
                    # A regular item is the product at its shop price: a list-price line.
                    list_unit_cents=item.flash_price_cents if item.regular else product.list_price_cents,
                    member_unit_cents=dict(item.member_prices),
                    flash=None if item.regular else FlashPrice.of(item),
                )
            )
        tier = self.tiers.tier_of(user_id) if any(p.member_unit_cents for p in priced) else None
        if self.coupons is None:
            if coupon_ids:
                raise FlashSaleError(ErrorCode.UNKNOWN_COUPON, "coupons are not taken here")
            return price_cart(priced, tier=tier, now=self.deps.now()), None
        offers: CartOffers | None = self.coupons.offers(user_id, coupon_ids)
        while True:  # at most once per promotion: each pass drops the ones their budget cannot cover
            assert offers is not None
            price = price_cart(
                priced, tier=tier, now=self.deps.now(), promotions=offers.promotions, coupons=offers.coupons
            )
            cheaper = self.coupons.affordable(price, offers)
            if cheaper is None:
                return price, offers
            offers = cheaper

    # -- checkout ------------------------------------------------------------------------------
    def checkout(
        self, user_id: str, idempotency_key: str, coupon_ids: Sequence[str] = ()
    ) -> tuple[Checkout, bool]:
        """Turn the cart into orders, all lines or none; return the checkout and whether it was a replay.

        `coupon_ids` are the shopper's coupons to apply (the shop's promotions apply by themselves).
        A repeat of the key answers the same checkout (or raises the same refusal) without a new one,
        whatever coupons it names: the key's first checkout decided them.
        """
        return self._check_out(user_id, idempotency_key, None, tuple(coupon_ids))

    def check_out_priced(
        self, user_id: str, idempotency_key: str, lines: Sequence[PricedItem]
    ) -> tuple[Checkout, bool]:
        """Check out `lines` at the prices given (a group deal's price), as `checkout` does the cart.

        The lines' prices are stored before they are held, like a cart's, so every path that stores
        their orders prices them from here. The cart is neither read nor changed.
        """
        if not lines:
            raise FlashSaleError(ErrorCode.CART_EMPTY, "a checkout needs a line")
        return self._check_out(user_id, idempotency_key, tuple(lines))

    def _check_out(
        self,
        user_id: str,
        idempotency_key: str,
        lines: tuple[PricedItem, ...] | None,
        coupon_ids: tuple[str, ...] = (),
    ) -> tuple[Checkout, bool]:
        """Open (once) and decide (once) the checkout the key names: of `lines`, or of the cart when None."""
        checkout_id = checkout_id_of(user_id, idempotency_key)
        known = self._find(checkout_id)
        replayed = known is not None
        if known is None:
            if lines is None:
                cart_lines, subtotal, shipping, redemptions = self._cart_lines(
                    user_id, checkout_id, coupon_ids
                )
                self._open(user_id, idempotency_key, checkout_id, cart_lines, subtotal, shipping, redemptions)
            else:
                subtotal = sum(ln.total_cents for ln in lines)
                self._open(user_id, idempotency_key, checkout_id, lines, subtotal)
            known = self._find(checkout_id)
            assert known is not None
        if known.status == PENDING:
            self._decide(known, from_cart=lines is None)
            known = self._find(checkout_id)
            assert known is not None
        return self._answer(known), replayed

    def get(self, user_id: str, checkout_id: str) -> Checkout:
        """The shopper's checkout with each line's order as it is now; another's is not found."""
        found = self._find(checkout_id)
        if found is None or found.user_id != user_id:
            raise FlashSaleError(ErrorCode.NOT_FOUND, f"no checkout {checkout_id}")
        return found

    def pay(self, user_id: str, checkout_id: str) -> Checkout:
        """Pay every unpaid line of a placed checkout (each charged at most once); answer it as it now is."""
        placed = self.get(user_id, checkout_id)
        if placed.status != CheckoutStatus.PLACED:
            raise FlashSaleError(ErrorCode.INVALID_TRANSITION, f"checkout {checkout_id} is {placed.status}")
        for line in placed.lines:
            assert line.order is not None
            # One key per line: a repeated pay of the checkout replays each line's payment.
            self.orders.pay(line.order.id, user_id, idempotency_key=f"{checkout_id}:pay:{line.line_no}")
        return self.get(user_id, checkout_id)

    def _answer(self, checkout: Checkout) -> Checkout:
        if checkout.status == CheckoutStatus.REFUSED:
            assert checkout.error_code is not None
            raise FlashSaleError(checkout.error_code, f"checkout {checkout.id} was refused")
        return checkout

    def _cart_lines(
        self, user_id: str, checkout_id: str, coupon_ids: Sequence[str]
    ) -> tuple[list[PricedItem], int, int, list[Redemption]]:
        """The cart's lines as the price engine prices them now: lines, subtotal, shipping, coupons."""
        cart = self._load(user_id)
        if not cart.lines:
            raise FlashSaleError(ErrorCode.CART_EMPTY, "the cart is empty")
        price, offers = self._price(user_id, cart.lines, coupon_ids)
        lines = [
            PricedItem(line.item_id, line.qty, priced.unit_price_cents, priced.total_cents)
            for line, priced in zip(cart.lines, price.lines, strict=True)
        ]
        redemptions = []
        if self.coupons is not None and offers is not None:
            redemptions = self.coupons.redemptions(user_id, checkout_id, price, offers)
        return lines, price.subtotal_cents, price.shipping_cents, redemptions

    def _open(
        self,
        user_id: str,
        idempotency_key: str,
        checkout_id: str,
        lines: Sequence[PricedItem],
        subtotal_cents: int,
        shipping_cents: int = 0,
        redemptions: Sequence[Redemption] = (),
    ) -> None:
        """Write the checkout, its priced lines and its coupons, PENDING (a racing twin wrote it: no-op)."""
        goods = sum(ln.total_cents for ln in lines)
        rows = [
            {
                "checkout_id": checkout_id,
                "line_no": n,
                "user_id": user_id,
                "request_id": line_request_id(checkout_id, n),
                "item_id": line.item_id,
                "qty": line.qty,
                "unit_price_cents": line.unit_price_cents,
                "total_cents": line.total_cents,
            }
            for n, line in enumerate(lines)
        ]
        with self.deps.uow() as uow:
            db = uow.db.connection()
            row = {
                "id": checkout_id,
                "user_id": user_id,
                "idempotency_key": idempotency_key,
                "status": PENDING,
                "subtotal_cents": subtotal_cents,
                "discount_cents": subtotal_cents - goods,
                "shipping_cents": shipping_cents,
                "total_cents": goods + shipping_cents,
                "created_at": self.deps.now(),
            }
            new = db.execute(insert_ignoring_duplicates(uow.db, CheckoutRow), [row]).rowcount
            if new:
                db.execute(insert_ignoring_duplicates(uow.db, CheckoutLineRow), rows)
                journal(uow.db, checkout_id, redemptions)
            uow.commit()

    def _decide(self, checkout: Checkout, *, from_cart: bool) -> None:
        """Hold every line in one ledger call; place them all, or give back what this call held.

        Placing a checkout `from_cart` takes its items out of the cart. Twins of one checkout (a
        double click) share its request ids, hence its holds, and race to decide it: the first
        decision stored wins. Holds go back only once REFUSED is what was stored, so a twin's
        refusal never releases a hold that the other twin placed.
        """
        redeemed: list[Coupon] = []
        if checkout.coupons and self.coupons is not None:
            # Before any hold: a coupon refused (budget spent, used elsewhere) refuses the checkout.
            redeemed, refusal = self.coupons.redeem(checkout.id, checkout.coupons)
            if refusal is not None:
                self._close(checkout.id, CheckoutStatus.REFUSED, refusal)
                self.coupons.settle(checkout.id, force=True)
                return
        requests = [Reservation(ln.item_id, checkout.user_id, ln.qty, ln.request_id) for ln in checkout.lines]
        decisions = reserve_recalling(self.deps, requests)  # keys retention forgot: asked of the store
        fresh = [d.hold for d in decisions if d.hold is not None and not d.replayed]
        refused = next((d.code for d in decisions if d.hold is None), None)
        now = self.deps.clock()
        if refused is None and any(d.hold is not None and not d.hold.is_live(now) for d in decisions):
            refused = ErrorCode.CONFLICT  # a twin of this checkout was refused and gave its holds back
        placed = []
        if refused is None:
            placed = [
                (line, self.orders.priced(d.hold))
                for line, d in zip(checkout.lines, decisions, strict=True)
                if d.hold is not None
            ]
        # Behind Redis the order writer stores placed orders from the purchase stream.
        orders = [] if self.orders.write_behind else [order for _, order in placed]
        status = CheckoutStatus.PLACED if refused is None else CheckoutStatus.REFUSED
        try:
            self._close(
                checkout.id,
                status,
                refused,
                store=orders,
                placed=placed,
                from_cart=from_cart,
                coupons=redeemed,
            )
        except BaseException:
            try:
                placed_by_twin = self._status(checkout.id) == CheckoutStatus.PLACED
            except Exception:  # the store is down: nothing can have placed it
                placed_by_twin = False
            if not placed_by_twin:
                with suppress(Exception):
                    self._give_back(fresh)  # undersell guard: the units go back
            raise
        if self._status(checkout.id) == CheckoutStatus.REFUSED:
            self._give_back(fresh)
        if checkout.coupons and self.coupons is not None:
            # Refused (by this call or a twin), or placed and already undone: the coupons go back now.
            self.coupons.settle(checkout.id, force=True)

    def _give_back(self, holds: Sequence[Hold]) -> None:
        """Release holds of a refused checkout; behind Redis, store their orders cancelled.

        The order writer stores every grant from the purchase stream, so the store must say these
        were cancelled (in-process, nothing else stores a hold that was never answered).
        """
        released = []
        for hold in holds:
            with suppress(FlashSaleError):  # already released, or expired meanwhile: back either way
                released.append(self.deps.ledger.release(hold.hold_id))
        if released and self.orders.write_behind:
            with self.deps.uow() as uow:
                self._store(uow, [self.orders.priced(hold) for hold in released])
                self.deps.commit(uow)

    def _status(self, checkout_id: str) -> str | None:
        with self.deps.read() as r:
            return r.db.scalar(select(CheckoutRow.status).where(CheckoutRow.id == checkout_id))

    def _close(
        self,
        checkout_id: str,
        status: CheckoutStatus,
        code: ErrorCode | None,
        *,
        store: Sequence[Order] = (),
        placed: Sequence[tuple[CheckoutLine, Order]] = (),
        from_cart: bool = False,
        coupons: Sequence[Coupon] = (),
    ) -> None:
        """Decide a PENDING checkout with the orders to `store`; when placed, link its lines to their
        orders and (`from_cart`) take those items out of the cart, all in one transaction."""
        with self.deps.uow() as uow:
            db = uow.db.connection()
            decided = db.execute(
                update(CheckoutRow)
                .where(CheckoutRow.id == checkout_id, CheckoutRow.status == PENDING)
                .values(status=status.value, error_code=None if code is None else code.value)
            ).rowcount
            self._store(uow, store)  # a twin that decided first may have stored some: idempotent
            if decided:  # else a twin decided first and did the rest
                for line, order in placed:
                    db.execute(
                        update(CheckoutLineRow)
                        .where(
                            CheckoutLineRow.checkout_id == checkout_id,
                            CheckoutLineRow.line_no == line.line_no,
                        )
                        .values(order_id=order.id)
                    )
                if placed:
                    CheckoutCoupons.record_redeemed(uow.db, checkout_id, coupons)
                if placed and from_cart:
                    db.execute(
                        delete(CartLineRow).where(
                            CartLineRow.user_id == placed[0][1].user_id,
                            CartLineRow.item_id.in_([line.item_id for line, _ in placed]),
                        )
                    )
            self.deps.commit(uow)

    def _store(self, uow: UnitOfWork, orders: Sequence[Order]) -> None:
        """Store the orders not stored yet; one stored UNPAID whose hold went back is written cancelled.

        Behind Redis the order writer may have stored a line given back by a refused checkout as
        UNPAID (from the purchase stream) before the refusal: the store must follow the ledger.
        """
        new_ids = store_placed(uow, list(orders))
        now = self.deps.clock()
        for order in (o for o in orders if o.id not in new_ids and o.status is OrderStatus.CANCELLED):
            stored = uow.orders.get(order.id)
            if stored is not None and stored.status is OrderStatus.UNPAID:
                cancelled = stored.cancelled(now)
                if uow.orders.save_transition(stored, cancelled):
                    uow.record(cancelled.event(now))

    def _find(self, checkout_id: str) -> Checkout | None:
        """The checkout as stored, each placed line with its order as it is now."""
        with self.deps.read() as r:
            row = r.db.get(CheckoutRow, checkout_id)
            if row is None:
                return None
            line_rows = r.db.scalars(
                select(CheckoutLineRow)
                .where(CheckoutLineRow.checkout_id == checkout_id)
                .order_by(CheckoutLineRow.line_no)
            ).all()
        lines = tuple(
            CheckoutLine(
                ln.line_no,
                ln.item_id,
                ln.qty,
                ln.unit_price_cents,
                ln.total_cents,
                ln.request_id,
                # Behind Redis, `get` stores the order from the ledger's hold if the writer lags.
                None if ln.order_id is None else self.orders.get(ln.order_id),
            )
            for ln in line_rows
        )
        return Checkout(
            row.id,
            row.user_id,
            row.status,
            lines,
            row.subtotal_cents,
            row.discount_cents,
            row.shipping_cents,
            row.total_cents,
            None if row.error_code is None else ErrorCode(row.error_code),
            tuple(self.coupons.journaled(checkout_id)) if self.coupons is not None else (),
        )
