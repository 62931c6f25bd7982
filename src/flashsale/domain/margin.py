"""The margin check (活动价格计算): the worst price a flash item can sell at, and whether it loses money.

For one unit of an item, the worst case is the lowest price the price engine can reach with the
item's flash price and every coupon that may stack on it (`price_engine.price_cart`, exclusive groups
tried exhaustively). The engine is asked about several carts, and the lowest unit price wins:
- one unit of the item alone;
- one unit beside just enough other goods to reach each threshold of each coupon (满300减30 on a 50
  item gives it 30 × 50/300 = 5 off once other goods carry the cart to 300), since a shopper can
  always fill a cart. A fixed amount's share grows as the rest of the cart shrinks, so the smallest
  rest that reaches a threshold is the worst; more units of the item do no worse than that (two
  units of 150 reaching 300 carry 15 each, one unit beside 150 of other goods carries 15 too).
Products carry no category yet, so a coupon scoped to categories is taken to cover the item (the
worse case). Coupons are considered when their validity overlaps the session; the flash line's
`coupons_allowed` decides whether any applies at all.

Margin per unit = price − cost − shipping cost − the platform's fee on the price (basis points,
rounded up: the platform never charges less than its rate). Negative: a loss-maker. Pure; cents.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from flashsale.domain.price_engine import CartLine, FlashPrice, price_cart
from flashsale.domain.promotions import WHOLE_CART, Offer, TieredOff

BASIS_POINTS = 10_000
FILLER_PRODUCT_ID = 0  # the "other goods" line of a worst-case cart; no product has id 0
# Offers reach the engine without a validity window (judged by the caller), so any time will do.
_ANY_TIME = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class UnitCosts:
    """What selling one unit costs the shop besides the goods' price."""

    cost_cents: int = 0
    shipping_cost_cents: int = 0
    platform_fee_bp: int = 0  # 1/100 of a percent of the price paid

    def __post_init__(self) -> None:
        if min(self.cost_cents, self.shipping_cost_cents) < 0:
            raise ValueError("costs cannot be negative")
        if not 0 <= self.platform_fee_bp <= BASIS_POINTS:
            raise ValueError(f"a platform fee is 0..{BASIS_POINTS} basis points")

    def fee_cents(self, price_cents: int) -> int:
        """The platform's fee on `price_cents`, rounded up."""
        return -(-price_cents * self.platform_fee_bp // BASIS_POINTS)


@dataclass(frozen=True, slots=True)
class ItemOnSale:
    """A flash item as the margin check sees it."""

    item_id: int
    product_id: int
    sku: str
    list_price_cents: int
    flash_price_cents: int
    coupons_allowed: bool
    costs: UnitCosts


@dataclass(frozen=True, slots=True)
class Margin:
    """One item's worst case: the lowest unit price, the offers that reach it, and what is left."""

    item: ItemOnSale
    worst_price_cents: int
    offers: tuple[str, ...]
    fee_cents: int
    margin_cents: int

    @property
    def loss(self) -> bool:
        return self.margin_cents < 0


def worst_case(item: ItemOnSale, coupons: Sequence[Offer]) -> Margin:
    """The item's worst-case unit price and margin with `coupons` stackable on it (see module doc).

    Every coupon given is taken as in force: the caller picks those whose validity overlaps the sale.
    """
    offers = [_worst_scope(o) for o in coupons] if item.coupons_allowed else []
    flash = FlashPrice(item.flash_price_cents, item.coupons_allowed)
    best_price, best_codes = item.flash_price_cents, tuple[str, ...]()
    own = item.flash_price_cents
    for filler in sorted({0} | {t - own for o in offers for t in _thresholds(o) if t > own}):
        lines = [CartLine(item.product_id, "", 1, item.list_price_cents, flash=flash)]
        if filler:
            lines.append(CartLine(FILLER_PRODUCT_ID, "", 1, filler))
        # As promotions: each applies by itself when reached, and the engine keeps the cheapest choice.
        priced = price_cart(lines, now=_ANY_TIME, promotions=offers)
        if priced.lines[0].total_cents < best_price:
            best_price = priced.lines[0].total_cents
            best_codes = tuple(a.code for a in priced.offers if a.shares[0])
    fee = item.costs.fee_cents(best_price)
    margin = best_price - item.costs.cost_cents - item.costs.shipping_cost_cents - fee
    return Margin(item, best_price, best_codes, fee, margin)


def _thresholds(offer: Offer) -> set[int]:
    """Every cart amount at which the offer starts to give more: its minimum, and each 满减 tier."""
    tiers = offer.discount.tiers if isinstance(offer.discount, TieredOff) else ()
    return {offer.min_base_cents} | {max(t.threshold_cents, offer.min_spend_cents) for t in tiers}


def _worst_scope(offer: Offer) -> Offer:
    """The offer as the margin check applies it: validity already judged; categories cover everything."""
    scope = WHOLE_CART if offer.scope.categories is not None else offer.scope
    return dataclasses.replace(offer, scope=scope, valid_from=None, valid_until=None)
