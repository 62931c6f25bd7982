"""Flash items: a product offered in a session at a flash price, with a quota and a per-user limit."""

from __future__ import annotations

from fastapi import APIRouter

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import ItemIn, ItemOut, ItemPatch, ItemStatsOut

router = APIRouter(prefix="/items", tags=["admin: items"], responses=error_responses(404))


@router.post("", status_code=201, responses=error_responses(409))
def create_item(body: ItemIn, platform: PlatformDep) -> ItemOut:
    """Put a product on sale in a session; the quota must fit the product's stock.

    A flash price above the product's list price is refused unless `allow_above_list_price` is true.
    """
    return ItemOut.model_validate(platform.catalog.create_item(**body.model_dump()))


@router.patch("/{item_id}", responses=error_responses(409))
def update_item(item_id: PathId, body: ItemPatch, platform: PlatformDep) -> ItemOut:
    """Change price, quota, limit or stacking; a quota below what is held and sold is refused (409).

    A new flash price above the list price is refused unless `allow_above_list_price` is true.
    """
    return ItemOut.model_validate(platform.catalog.update_item(item_id, **body.changes()))


@router.get("/{item_id}/stats")
def item_stats(item_id: PathId, platform: PlatformDep) -> ItemStatsOut:
    """Show the ledger's counters beside the stored orders of one item."""
    return ItemStatsOut.model_validate(platform.catalog_views.item_stats(item_id))
