"""The cart price engine: lines, a shopper's tier, a time and the offers in force → an itemised price.

`price_cart` works in integer cents, in this order:

1. **Line price.** A flash line costs its flash price (a member price does not stack on it). Any
   other line costs the lower of its list price and its member price for the shopper's tier.
   `subtotal` = the sum of unit price × quantity.
2. **Offers**, promotions and coupons together, in application order: `priority` (lower first),
   then promotions before coupons, then the order they were given in. Each offer sees only its
   *eligible* lines: those in its scope, and for a coupon (a shop red packet is one) only lines that
   accept coupons (a flash line whose item has `coupons_allowed` off does not: it neither counts
   toward the coupon's minimum spend nor receives any of it). Its *base* is what those lines cost
   after every earlier offer; it applies when the base reaches its minimum spend (and its first
   满减 threshold), and takes off its discount, capped by its `cap_cents` and by the base itself,
   so no line and no total ever goes below zero.
3. **Allocation.** Each offer's amount is split over its eligible lines in proportion to what they
   cost at its turn by the largest-remainder method (`allocate`): the parts sum to the amount to the
   cent, and a refund of a line gives back exactly the discount that line carried.
4. **Shipping** is the fee, or nothing once the goods total (after every discount) reaches
   `free_over_cents`. The total is the goods total plus shipping: the sum of the line totals plus
   shipping, exactly.

Rounding: the only division is in `PercentOff` and allocation. A percent discount is floored (the
shop never gives more than the percent: 15% of 19.99 is 2.99). Allocation floors each share and
hands the cents left over to the lines with the largest remainders, ties to the earlier line.

Stacking: offers without a `group` all apply. Within a group at most one applies; the engine tries
every choice (one member or none, per group) and keeps the lowest total payable, shipping included
(ties: the earliest choice in application order). A coupon the shopper applied is their choice: it
takes its group's place, and pricing refuses with a code rather than drop it silently —
`COUPON_EXPIRED` outside its validity window, `COUPON_NOT_APPLICABLE` when no line may take it, when
it shares a group with another applied coupon, or when its minimum spend is not met. A promotion
that is not in force or not reached simply does not appear.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.pricing import Adjustment
from flashsale.domain.promotions import Offer, check_unique_codes
from flashsale.domain.sale import FlashItem

# Exclusive groups are tried exhaustively; beyond this many combinations the promotion set is a
# configuration mistake, not a cart to price.
MAX_GROUP_CHOICES = 4096


class PriceKind(StrEnum):
    """Which price a line's unit price is."""

    LIST = "list"
    MEMBER = "member"
    FLASH = "flash"


class OfferSource(StrEnum):
    PROMOTION = "promotion"  # applies by itself when in force and reached
    COUPON = "coupon"  # a coupon or shop red packet the shopper applied


@dataclass(frozen=True, slots=True)
class FlashPrice:
    """A flash item's price on a cart line, and whether coupons may stack on it."""

    unit_cents: int
    coupons_allowed: bool = False

    def __post_init__(self) -> None:
        if self.unit_cents < 0:
            raise ValueError("flash price cannot be negative")

    @classmethod
    def of(cls, item: FlashItem) -> FlashPrice:
        """The flash terms of `item`, as the order path's `quote_flash_line` applies them."""
        return cls(item.flash_price_cents, item.coupons_allowed)


@dataclass(frozen=True, slots=True)
class CartLine:
    """`qty` units of a product; `member_unit_cents` maps a member tier to its unit price."""

    product_id: int
    category: str
    qty: int
    list_unit_cents: int
    member_unit_cents: Mapping[str, int] = field(default_factory=dict)
    flash: FlashPrice | None = None

    def __post_init__(self) -> None:
        if self.qty < 1:
            raise ValueError("quantity must be at least 1")
        if self.list_unit_cents < 0 or any(p < 0 for p in self.member_unit_cents.values()):
            raise ValueError("prices cannot be negative")

    @property
    def accepts_coupons(self) -> bool:
        """A flash price refuses coupon-kind offers unless its item allows stacking."""
        return self.flash is None or self.flash.coupons_allowed

    def unit_price(self, tier: str | None) -> tuple[int, PriceKind]:
        """The unit price this shopper pays before offers, and which price it is."""
        if self.flash is not None:
            return self.flash.unit_cents, PriceKind.FLASH
        member = self.member_unit_cents.get(tier) if tier is not None else None
        if member is not None and member < self.list_unit_cents:
            return member, PriceKind.MEMBER
        return self.list_unit_cents, PriceKind.LIST


@dataclass(frozen=True, slots=True)
class Shipping:
    """A flat fee, waived once the goods total after discounts reaches `free_over_cents`."""

    fee_cents: int = 0
    free_over_cents: int | None = None

    def __post_init__(self) -> None:
        if self.fee_cents < 0 or (self.free_over_cents is not None and self.free_over_cents < 0):
            raise ValueError("shipping amounts cannot be negative")

    def cost_cents(self, goods_cents: int) -> int:
        """The fee for goods worth `goods_cents` (after every discount)."""
        if self.free_over_cents is not None and goods_cents >= self.free_over_cents:
            return 0
        return self.fee_cents


FREE_SHIPPING = Shipping()


@dataclass(frozen=True, slots=True)
class AppliedOffer:
    """An offer that applied: `off_cents` taken off, `shares[i]` of it carried by line i (sum exact)."""

    code: str
    source: OfferSource
    off_cents: int
    shares: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PricedLine:
    """One line's breakdown; `adjustments` are its shares of each offer, negative like `PriceQuote`'s."""

    product_id: int
    qty: int
    list_total_cents: int
    unit_price_cents: int
    price_kind: PriceKind
    subtotal_cents: int
    adjustments: tuple[Adjustment, ...]
    total_cents: int


@dataclass(frozen=True, slots=True)
class PricedCart:
    """The itemised price: `total_cents == sum(line totals) + shipping_cents`, exactly."""

    lines: tuple[PricedLine, ...]
    list_total_cents: int
    subtotal_cents: int
    offers: tuple[AppliedOffer, ...]
    goods_cents: int
    shipping_cents: int
    total_cents: int


def allocate(amount_cents: int, weights: Sequence[int]) -> tuple[int, ...]:
    """Split `amount_cents` over `weights` in proportion, by the largest-remainder method.

    Each part is floored, then the cents left over go one each to the largest remainders, ties to
    the lower index. The parts sum to `amount_cents` exactly; when `amount_cents <= sum(weights)`
    no part exceeds its weight, and a zero weight gets nothing.
    """
    total = sum(weights)
    if amount_cents < 0 or any(w < 0 for w in weights):
        raise ValueError("allocation needs a non-negative amount and weights")
    if total == 0:
        if amount_cents:
            raise ValueError("cannot allocate an amount over nothing")
        return tuple(0 for _ in weights)
    parts = [amount_cents * w // total for w in weights]
    left = amount_cents - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(amount_cents * weights[i] % total), i))
    for i in by_remainder[:left]:
        parts[i] += 1
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class _Step:
    """An offer in force, with the indexes of the cart lines it may see."""

    offer: Offer
    source: OfferSource
    eligible: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Run:
    """The outcome of applying one choice of offers: line amounts, offers applied, coupons that missed."""

    amounts: tuple[int, ...]
    applied: tuple[AppliedOffer, ...]
    missed: tuple[_Step, ...]
    shipping_cents: int

    @property
    def total_cents(self) -> int:
        return sum(self.amounts) + self.shipping_cents


def price_cart(
    lines: Sequence[CartLine],
    *,
    now: datetime,
    tier: str | None = None,
    promotions: Sequence[Offer] = (),
    coupons: Sequence[Offer] = (),
    shipping: Shipping = FREE_SHIPPING,
) -> PricedCart:
    """Price a cart for a shopper of member `tier` at `now`; see the module docstring for the rules.

    `promotions` are the shop's rules (applied when in force and reached); `coupons` are the coupons
    and red packets the shopper applied. Raises FlashSaleError COUPON_EXPIRED / COUPON_NOT_APPLICABLE
    for an applied coupon that cannot be used, ValueError for an empty cart or a repeated offer code.
    """
    if not lines:
        raise ValueError("a cart needs at least one line")
    check_unique_codes([*promotions, *coupons])
    unit_prices = [line.unit_price(tier) for line in lines]
    subtotals = tuple(unit * line.qty for (unit, _), line in zip(unit_prices, lines, strict=True))
    steps = _steps_in_force(lines, now, promotions, coupons)
    best: _Run | None = None
    first_miss: _Step | None = None
    for chosen in _choices(steps):
        run = _apply(subtotals, chosen, shipping)
        if run.missed:
            first_miss = first_miss or run.missed[0]
        elif best is None or run.total_cents < best.total_cents:
            best = run
    if best is None:
        assert first_miss is not None  # only a coupon's missed minimum spend rules every choice out
        raise FlashSaleError(
            ErrorCode.COUPON_NOT_APPLICABLE,
            f"coupon {first_miss.offer.code!r} needs a spend of {first_miss.offer.min_base_cents} cents"
            " on the lines it applies to",
        )
    priced_lines = tuple(
        PricedLine(
            product_id=line.product_id,
            qty=line.qty,
            list_total_cents=line.list_unit_cents * line.qty,
            unit_price_cents=unit,
            price_kind=kind,
            subtotal_cents=subtotal,
            adjustments=tuple(Adjustment(a.code, -a.shares[i]) for a in best.applied if a.shares[i]),
            total_cents=amount,
        )
        for i, (line, (unit, kind), subtotal, amount) in enumerate(
            zip(lines, unit_prices, subtotals, best.amounts, strict=True)
        )
    )
    return PricedCart(
        lines=priced_lines,
        list_total_cents=sum(p.list_total_cents for p in priced_lines),
        subtotal_cents=sum(subtotals),
        offers=best.applied,
        goods_cents=sum(best.amounts),
        shipping_cents=best.shipping_cents,
        total_cents=best.total_cents,
    )


def _steps_in_force(
    lines: Sequence[CartLine], now: datetime, promotions: Sequence[Offer], coupons: Sequence[Offer]
) -> list[_Step]:
    """The offers that may apply, in application order; refuses an applied coupon that cannot."""
    steps: list[_Step] = []
    for offer in promotions:
        eligible = _eligible(lines, offer, coupon=False)
        if offer.in_force(now) and eligible:
            steps.append(_Step(offer, OfferSource.PROMOTION, eligible))
    groups_of_coupons: dict[str, str] = {}
    for offer in coupons:
        if not offer.in_force(now):
            raise FlashSaleError(ErrorCode.COUPON_EXPIRED, f"coupon {offer.code!r} is not valid at this time")
        eligible = _eligible(lines, offer, coupon=True)
        if not eligible:
            raise FlashSaleError(
                ErrorCode.COUPON_NOT_APPLICABLE,
                f"coupon {offer.code!r} applies to nothing in the cart (out of scope, or a flash price"
                " that refuses coupons)",
            )
        if offer.group is not None:
            other = groups_of_coupons.setdefault(offer.group, offer.code)
            if other != offer.code:
                raise FlashSaleError(
                    ErrorCode.COUPON_NOT_APPLICABLE, f"coupon {offer.code!r} does not stack with {other!r}"
                )
        steps.append(_Step(offer, OfferSource.COUPON, eligible))
    # Stable sort: equal priorities keep promotions first, then the order given.
    return sorted(steps, key=lambda s: s.offer.priority)


def _eligible(lines: Sequence[CartLine], offer: Offer, *, coupon: bool) -> tuple[int, ...]:
    return tuple(
        i
        for i, line in enumerate(lines)
        if offer.scope.covers(line.product_id, line.category) and (line.accepts_coupons or not coupon)
    )


def _choices(steps: list[_Step]) -> list[list[_Step]]:
    """Every admissible set of steps, each in application order: one member or none per group.

    A group holding an applied coupon has that coupon as its only choice.
    """
    members: dict[str, list[_Step | None]] = {}
    for step in steps:
        if step.offer.group is not None:
            members.setdefault(step.offer.group, []).append(step)
    options: list[list[_Step | None]] = []
    for group in members.values():
        applied_coupons: list[_Step | None] = [
            s for s in group if s is not None and s.source is OfferSource.COUPON
        ]
        options.append(applied_coupons or [*group, None])
    count = 1
    for choice in options:
        count *= len(choice)
    if count > MAX_GROUP_CHOICES:
        raise ValueError(f"exclusive groups allow {count} combinations; at most {MAX_GROUP_CHOICES}")
    choices: list[list[_Step]] = []
    for combination in itertools.product(*options):
        picked = {id(s) for s in combination if s is not None}
        choices.append([s for s in steps if s.offer.group is None or id(s) in picked])
    return choices


def _apply(subtotals: tuple[int, ...], steps: list[_Step], shipping: Shipping) -> _Run:
    amounts = list(subtotals)
    applied: list[AppliedOffer] = []
    missed: list[_Step] = []
    for step in steps:
        weights = [amounts[i] if i in step.eligible else 0 for i in range(len(amounts))]
        base = sum(weights)
        if base < step.offer.min_base_cents:
            if step.source is OfferSource.COUPON:
                missed.append(step)
            continue
        off = step.offer.discount_cents(base)
        shares = allocate(off, weights)
        amounts = [a - s for a, s in zip(amounts, shares, strict=True)]
        applied.append(AppliedOffer(step.offer.code, step.source, off, shares))
    goods = sum(amounts)
    return _Run(tuple(amounts), tuple(applied), tuple(missed), shipping.cost_cents(goods))
