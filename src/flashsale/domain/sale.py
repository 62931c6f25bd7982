"""Flash items: a SKU offered in one session at a flash price, with a quota and a per-user limit."""

from __future__ import annotations

from dataclasses import dataclass

from flashsale.domain.errors import ErrorCode

MAX_QUANTITY_PER_REQUEST = 1000


@dataclass(frozen=True, slots=True)
class FlashItem:
    """`quota` units at `flash_price_cents`; each user may hold+buy at most `per_user_limit` in total.

    A `regular` item is the product sold at its shop price during the session rather than as a
    flash deal: its quota is the stock put on sale, and in a cart it is a list-price line that
    coupons and 满减 apply to. Its units go through the same ledger as flash units.
    """

    id: int
    session_id: int
    product_id: int
    flash_price_cents: int
    quota: int
    per_user_limit: int
    coupons_allowed: bool = False
    regular: bool = False
    # A regular item's unit price per member tier, as (tier, cents) pairs: the lower of it and the
    # shop price is what a shopper of that tier pays. A flash price is never lowered further.
    member_prices: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.flash_price_cents < 0:
            raise ValueError("flash price cannot be negative")
        if self.member_prices and not self.regular:
            raise ValueError("member prices go with regular items: a flash price is not lowered further")
        if any(not tier or cents < 0 for tier, cents in self.member_prices):
            raise ValueError("a member price names its tier and is not negative")
        if self.quota < 0:
            raise ValueError("quota cannot be negative")
        # The most one request may buy is also the most a flash-sale limit may be: beyond that it
        # limits nothing, and a value like 2**31 is a typo.
        if not 1 <= self.per_user_limit <= MAX_QUANTITY_PER_REQUEST:
            raise ValueError(
                f"per-user limit must be 1..{MAX_QUANTITY_PER_REQUEST}, not {self.per_user_limit}"
            )


@dataclass(frozen=True, slots=True)
class ItemTerms:
    """What the stock ledger needs to decide a hold for one item; epoch seconds for speed."""

    item_id: int
    quota: int
    per_user_limit: int
    opens_at: float
    closes_at: float
    hold_ttl_s: float


def check_hold_request(
    *, terms: ItemTerms, qty: int, now: float, available: int, user_used: int
) -> ErrorCode | None:
    """Return why a hold of `qty` must be refused, or None when it may be granted.

    Order matters and is part of the contract: quantity, window, the user's limit, then stock
    (SOLD_OUT, INSUFFICIENT_STOCK). A request the limit forbids is told LIMIT_EXCEEDED whatever the
    stock: SOLD_OUT would invite a retry when units come back that the limit refuses anyway. It
    leaks nothing about others, since it depends only on the asker's own held+sold.
    """
    if not 1 <= qty <= MAX_QUANTITY_PER_REQUEST:
        return ErrorCode.INVALID_QUANTITY
    if not terms.opens_at <= now < terms.closes_at:
        return ErrorCode.SESSION_NOT_OPEN
    if user_used + qty > terms.per_user_limit:
        return ErrorCode.LIMIT_EXCEEDED
    if available <= 0:
        return ErrorCode.SOLD_OUT
    if qty > available:
        return ErrorCode.INSUFFICIENT_STOCK
    return None
