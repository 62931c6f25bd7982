"""Products (SKUs) with list price and regular stock, and how a flash price must relate to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

OVERRIDE_FIELD = "allow_above_list_price"  # what an operator sends to price above the list on purpose


@dataclass(frozen=True, slots=True)
class Product:
    """A sellable SKU. Money is integer cents."""

    id: int
    sku: str
    name: str
    list_price_cents: int
    stock: int
    category: str | None = None  # what kind of goods ("phones", "accessories"): a message segment

    def __post_init__(self) -> None:
        if self.list_price_cents < 0:
            raise ValueError("list price cannot be negative")
        if self.stock < 0:
            raise ValueError("stock cannot be negative")

    def check_flash_price(self, flash_price_cents: int, *, allow_above_list_price: bool = False) -> None:
        """Refuse a flash price above this product's list price unless the operator overrides it.

        A "flash sale" dearer than the everyday price is almost always a typo (an extra digit), and
        advertising it as a discount would mislead shoppers, so it takes an explicit decision.
        """
        if flash_price_cents > self.list_price_cents and not allow_above_list_price:
            raise ValueError(
                f"flash price {flash_price_cents} is above the list price {self.list_price_cents} of"
                f" product {self.sku!r}; send {OVERRIDE_FIELD}: true if that is intended"
            )

    def check_list_price_change(
        self, new_list_price_cents: int, live_flash_prices: Mapping[int, int], *, allow_above_list_price: bool
    ) -> None:
        """Refuse lowering the list price below the flash price of a live item, unless overridden.

        `live_flash_prices` maps the id of every item of this product whose session has not ended
        to its flash price. Items of ended sessions are history: a past price does not block a new
        list price. Raising the list price never leaves an item above it that was not already.
        """
        if allow_above_list_price or new_list_price_cents >= self.list_price_cents:
            return
        above = sorted(item for item, price in live_flash_prices.items() if price > new_list_price_cents)
        if above:
            raise ValueError(
                f"list price {new_list_price_cents} is below the flash price of item(s)"
                f" {', '.join(map(str, above))} still to be sold; lower their flash price first, or send"
                f" {OVERRIDE_FIELD}: true if that is intended"
            )
