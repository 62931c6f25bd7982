"""Shoppers' member tiers: which member price of a regular item each shopper pays in a cart."""

from __future__ import annotations

from fastapi import APIRouter

from flashsale.api.deps import PlatformDep, ShopperId
from flashsale.api.schemas import ShopperTierIn, ShopperTierOut

router = APIRouter(prefix="/shoppers", tags=["admin: shoppers"])


@router.put("/{user_id}/tier")
def set_tier(user_id: ShopperId, body: ShopperTierIn, platform: PlatformDep) -> ShopperTierOut:
    """Make the shopper a member of a tier (null: no longer a member); carts price with it from now."""
    return ShopperTierOut(user_id=user_id, tier=platform.carts.tiers.set_tier(user_id, body.tier))


@router.get("/{user_id}/tier")
def get_tier(user_id: ShopperId, platform: PlatformDep) -> ShopperTierOut:
    """The shopper's member tier (null: not a member)."""
    return ShopperTierOut(user_id=user_id, tier=platform.carts.tiers.tier_of(user_id))
