"""The price step of the order path: flash price times quantity, then pluggable adjustments.

Promotions (coupons, 满减, points) arrive later as `PriceStep`s; the flash item decides whether
coupon-kind steps may stack on its price at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from flashsale.domain.catalog import Product
from flashsale.domain.sale import FlashItem


class StepKind(StrEnum):
    COUPON = "coupon"  # coupons and points: blocked unless the flash item allows stacking
    PROMOTION = "promotion"  # shop-wide rules that always apply


@dataclass(frozen=True, slots=True)
class Adjustment:
    label: str
    amount_cents: int  # negative lowers the price


@dataclass(frozen=True, slots=True)
class PriceQuote:
    unit_price_cents: int
    qty: int
    list_total_cents: int
    subtotal_cents: int
    adjustments: tuple[Adjustment, ...]
    total_cents: int


class PriceStep(Protocol):
    kind: StepKind

    def adjust(self, subtotal_cents: int, qty: int) -> Adjustment | None:
        """Return this step's adjustment for an order line, or None when it does not apply."""
        ...


def quote_flash_line(
    item: FlashItem, product: Product, qty: int, steps: Iterable[PriceStep] = ()
) -> PriceQuote:
    """Price `qty` units of a flash item; the total never drops below zero."""
    if qty < 1:
        raise ValueError("quantity must be at least 1")
    subtotal = item.flash_price_cents * qty
    running = subtotal
    applied: list[Adjustment] = []
    for step in steps:
        if step.kind is StepKind.COUPON and not item.coupons_allowed:
            continue
        adj = step.adjust(running, qty)
        if adj is None:
            continue
        # A discount may take the line to zero but never below; surcharges are not clamped.
        amount = max(adj.amount_cents, -running)
        if amount == 0:
            continue
        applied.append(Adjustment(adj.label, amount))
        running += amount
    return PriceQuote(
        unit_price_cents=item.flash_price_cents,
        qty=qty,
        list_total_cents=product.list_price_cents * qty,
        subtotal_cents=subtotal,
        adjustments=tuple(applied),
        total_cents=running,
    )
