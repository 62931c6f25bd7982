"""Shoppers' member tiers: which member price of a regular item a shopper pays (services/cart.py)."""

from __future__ import annotations

from sqlalchemy import delete, select

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.services.deps import Deps
from flashsale.store.repositories import insert_ignoring_duplicates
from flashsale.store.tables import MemberTierRow

MAX_TIER_LENGTH = 32


class MemberTiers:
    """Each shopper's tier ("gold"), or none: the operator sets it, carts price with it."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def tier_of(self, user_id: str) -> str | None:
        """The shopper's tier, or None (not a member: shop prices)."""
        with self.deps.read() as r:
            return r.db.scalar(select(MemberTierRow.tier).where(MemberTierRow.user_id == user_id))

    def set_tier(self, user_id: str, tier: str | None) -> str | None:
        """Make the shopper a member of `tier` (None: no longer a member); return the tier now held."""
        if tier is not None and not 0 < len(tier) <= MAX_TIER_LENGTH:
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, f"a tier is 1..{MAX_TIER_LENGTH} characters")
        with self.deps.uow() as uow:
            uow.db.execute(delete(MemberTierRow).where(MemberTierRow.user_id == user_id))
            if tier is not None:
                row = {"user_id": user_id, "tier": tier}
                uow.db.connection().execute(insert_ignoring_duplicates(uow.db, MemberTierRow), [row])
            uow.commit()
        return tier
