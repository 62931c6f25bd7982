"""Products (SKUs) with list price and regular stock."""

from __future__ import annotations

from fastapi import APIRouter

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import ProductIn, ProductOut, ProductPatch

router = APIRouter(prefix="/products", tags=["admin: products"])


@router.post("", status_code=201, responses=error_responses(409))
def create_product(body: ProductIn, platform: PlatformDep) -> ProductOut:
    """Create a product; its SKU must be new."""
    return ProductOut.model_validate(platform.catalog.create_product(**body.model_dump()))


@router.get("")
def list_products(platform: PlatformDep) -> list[ProductOut]:
    """List every product."""
    return [ProductOut.model_validate(p) for p in platform.catalog_views.list_products()]


@router.patch("/{product_id}", responses=error_responses(404, 409))
def update_product(product_id: PathId, body: ProductPatch, platform: PlatformDep) -> ProductOut:
    """Change a product's SKU, name, list price or stock.

    Lowering the list price below the flash price of an item whose session has not ended is refused
    unless `allow_above_list_price` is true: lower the item's flash price first.
    """
    return ProductOut.model_validate(platform.catalog.update_product(product_id, **body.changes()))
