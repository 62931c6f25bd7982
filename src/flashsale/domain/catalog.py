"""Products (SKUs) with list price and regular stock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Product:
    """A sellable SKU. Money is integer cents."""

    id: int
    sku: str
    name: str
    list_price_cents: int
    stock: int

    def __post_init__(self) -> None:
        if self.list_price_cents < 0:
            raise ValueError("list price cannot be negative")
        if self.stock < 0:
            raise ValueError("stock cannot be negative")
