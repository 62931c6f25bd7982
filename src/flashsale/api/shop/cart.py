"""A shopper's cart and its checkouts: edit lines, see the price, check out all lines or none, pay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from flashsale.api.deps import CurrentShopper, IdempotencyKey, PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import MAX_INT32, In, OrderOut, Out
from flashsale.api.shop.purchases import REPLAYED_HEADER
from flashsale.domain.price_engine import PriceKind
from flashsale.domain.sale import MAX_QUANTITY_PER_REQUEST
from flashsale.services.cart import CartView, Checkout
from flashsale.services.checkout_coupons import MAX_COUPONS_PER_CHECKOUT

router = APIRouter(tags=["cart"], responses=error_responses(401, 422))

CheckoutId = Annotated[str, Path(min_length=1, max_length=64)]
Quantity = Annotated[int, Field(strict=True, ge=0, le=MAX_QUANTITY_PER_REQUEST)]


class CartItemIn(In):
    item_id: Annotated[int, Field(strict=True, ge=1, le=MAX_INT32)]
    quantity: Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY_PER_REQUEST)] = 1


class CartQtyIn(In):
    quantity: Annotated[Quantity, Field(description="Units of the item in the cart; 0 removes the line.")]


CouponId = Annotated[str, Field(min_length=1, max_length=40)]


class CheckoutIn(In):
    coupon_ids: Annotated[
        list[CouponId],
        Field(max_length=MAX_COUPONS_PER_CHECKOUT, description="The shopper's coupons to apply (claimed)"),
    ] = Field(default_factory=list)


class AdjustmentOut(Out):
    label: str
    amount_cents: int


class CartLineOut(Out):
    item_id: int
    qty: int
    unit_price_cents: int
    price_kind: PriceKind
    subtotal_cents: int
    adjustments: list[AdjustmentOut]
    total_cents: int


class CartOut(Out):
    lines: list[CartLineOut]
    subtotal_cents: int
    discount_cents: int
    shipping_cents: int
    total_cents: int


class CheckoutLineOut(Out):
    line_no: int
    item_id: int
    qty: int
    unit_price_cents: int
    total_cents: int
    order: OrderOut | None


class CheckoutCouponOut(Out):
    coupon_id: str
    template_id: int
    discount_cents: int = Field(description="What the coupon or shop promotion took off this checkout")
    state: str = Field(description="JOURNALED, REDEEMED, or RESTORED once given back")


class CheckoutOut(Out):
    id: str
    status: str
    lines: list[CheckoutLineOut]
    coupons: list[CheckoutCouponOut]
    subtotal_cents: int
    discount_cents: int
    shipping_cents: int
    total_cents: int


def _cart_out(view: CartView) -> CartOut:
    price = view.price
    if price is None:
        return CartOut(lines=[], subtotal_cents=0, discount_cents=0, shipping_cents=0, total_cents=0)
    lines = [
        CartLineOut(
            item_id=line.item_id,
            qty=line.qty,
            unit_price_cents=priced.unit_price_cents,
            price_kind=priced.price_kind,
            subtotal_cents=priced.subtotal_cents,
            adjustments=[AdjustmentOut.model_validate(a) for a in priced.adjustments],
            total_cents=priced.total_cents,
        )
        for line, priced in zip(view.cart.lines, price.lines, strict=True)
    ]
    return CartOut(
        lines=lines,
        subtotal_cents=price.subtotal_cents,
        discount_cents=price.subtotal_cents - price.goods_cents,
        shipping_cents=price.shipping_cents,
        total_cents=price.total_cents,
    )


def _checkout_out(checkout: Checkout) -> CheckoutOut:
    return CheckoutOut.model_validate(checkout)


@router.get("/cart", responses=error_responses(404, 409))
def get_cart(
    shopper: CurrentShopper,
    platform: PlatformDep,
    coupon_id: Annotated[list[CouponId], Query(max_length=MAX_COUPONS_PER_CHECKOUT)] = [],  # noqa: B006
) -> CartOut:
    """The cart, priced as it would be checked out now: the shop's promotions in force apply by
    themselves; `coupon_id` (repeatable) prices it with the shopper's coupons applied."""
    return _cart_out(platform.carts.view(shopper, coupon_id))


@router.post("/cart/items")
def add_to_cart(body: CartItemIn, shopper: CurrentShopper, platform: PlatformDep) -> CartOut:
    """Put units of an item in the cart (added to any already there)."""
    return _cart_out(platform.carts.add(shopper, body.item_id, body.quantity))


@router.put("/cart/items/{item_id}")
def set_cart_quantity(
    item_id: PathId, body: CartQtyIn, shopper: CurrentShopper, platform: PlatformDep
) -> CartOut:
    """Set how many units of the item the cart holds; 0 removes the line."""
    return _cart_out(platform.carts.set_qty(shopper, item_id, body.quantity))


@router.delete("/cart/items/{item_id}")
def remove_from_cart(item_id: PathId, shopper: CurrentShopper, platform: PlatformDep) -> CartOut:
    """Take the item out of the cart."""
    return _cart_out(platform.carts.set_qty(shopper, item_id, 0))


@router.post(
    "/checkouts",
    status_code=201,
    response_model=CheckoutOut,
    responses=error_responses(400, 404, 409, 503),
)
def checkout(
    shopper: CurrentShopper, platform: PlatformDep, key: IdempotencyKey, body: CheckoutIn | None = None
) -> Response:
    """Turn the whole cart into orders, one per line, all or none (Idempotency-Key required).

    `coupon_ids` apply the shopper's coupons, and the shop's promotions apply by themselves: the
    discount is allocated to the lines, and each line's order is charged its discounted total. Each
    coupon is redeemed once for the checkout before anything is held; a refusal (409
    BUDGET_EXHAUSTED, COUPON_USED; 422 COUPON_NOT_APPLICABLE, COUPON_EXPIRED) holds nothing. The
    coupons come back once the checkout's orders are all cancelled, expired or refunded.

    Every line is held in the stock ledger at once under the flash rules of its item (session
    window, per-user limit); if any line is refused, nothing is held and the answer is that line's
    code (e.g. 409 SOLD_OUT). The lines of a placed checkout leave the cart; each becomes an UNPAID
    order with the payment window of its campaign. The same key answers the same checkout again
    (200 with `Idempotent-Replayed: true`, or the same refusal).
    """
    placed, replayed = platform.carts.checkout(shopper, key, body.coupon_ids if body is not None else ())
    return Response(
        _checkout_out(placed).model_dump_json(),
        status_code=200 if replayed else 201,
        headers={REPLAYED_HEADER: "true"} if replayed else None,
        media_type="application/json",
    )


@router.get("/checkouts/{checkout_id}", responses=error_responses(404))
def get_checkout(checkout_id: CheckoutId, shopper: CurrentShopper, platform: PlatformDep) -> CheckoutOut:
    """One of the shopper's checkouts, each line with its order as it is now."""
    return _checkout_out(platform.carts.get(shopper, checkout_id))


@router.post("/checkouts/{checkout_id}/pay", responses=error_responses(404, 409, 503))
def pay_checkout(checkout_id: CheckoutId, shopper: CurrentShopper, platform: PlatformDep) -> CheckoutOut:
    """Pay every line's order of a placed checkout through the sandbox; each is charged at most once."""
    return _checkout_out(platform.carts.pay(shopper, checkout_id))
