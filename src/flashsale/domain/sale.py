"""Flash items: a SKU offered in one session at a flash price, with a quota and a per-user limit."""

from __future__ import annotations

from dataclasses import dataclass

from flashsale.domain.errors import ErrorCode

MAX_QUANTITY_PER_REQUEST = 1000


@dataclass(frozen=True, slots=True)
class FlashItem:
    """`quota` units at `flash_price_cents`; each user may hold+buy at most `per_user_limit` in total."""

    id: int
    session_id: int
    product_id: int
    flash_price_cents: int
    quota: int
    per_user_limit: int
    coupons_allowed: bool = False

    def __post_init__(self) -> None:
        if self.flash_price_cents < 0:
            raise ValueError("flash price cannot be negative")
        if self.quota < 0:
            raise ValueError("quota cannot be negative")
        if self.per_user_limit < 1:
            raise ValueError("per-user limit must be at least 1")


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

    Order matters and is part of the contract: quantity, window, stock, then the user's limit, so
    that a sold-out item answers SOLD_OUT to everyone rather than leaking who bought what.
    """
    if not 1 <= qty <= MAX_QUANTITY_PER_REQUEST:
        return ErrorCode.INVALID_QUANTITY
    if not terms.opens_at <= now < terms.closes_at:
        return ErrorCode.SESSION_NOT_OPEN
    if available <= 0:
        return ErrorCode.SOLD_OUT
    if user_used + qty > terms.per_user_limit:
        return ErrorCode.LIMIT_EXCEEDED
    if qty > available:
        return ErrorCode.INSUFFICIENT_STOCK
    return None
