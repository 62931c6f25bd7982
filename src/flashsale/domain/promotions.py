"""Promotions and coupons as data: what a rule takes off, which lines it sees, when and how it stacks.

An `Offer` is one shop rule (满减, percent off) or one coupon / shop red packet. It carries:
- its `discount`, computed on the amount of the lines it applies to (`AmountOff`, `PercentOff`,
  `TieredOff` for 满减 single and tiered, `EveryOff` for 每满 repeating);
- its `scope` (all, categories, product ids), `min_spend_cents` and `cap_cents`;
- its validity window [valid_from, valid_until), aware datetimes like campaigns and sessions;
- how it stacks: `priority` (lower applies first; later offers see the amount after earlier ones)
  and an optional exclusive `group` (at most one offer of a group applies).

Whether an offer is a shop rule or a coupon is not a field: it is which list it is handed to
`price_engine.price_cart` in (promotions apply by themselves, coupons are the shopper's choice).
Pure: no I/O, no clock; money is integer cents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AmountOff:
    """A fixed amount off: a shop red packet, an amount coupon, or 满X减Y with `min_spend_cents`."""

    off_cents: int

    def __post_init__(self) -> None:
        if self.off_cents <= 0:
            raise ValueError("an amount off must be positive")

    @property
    def threshold_cents(self) -> int:
        return 0

    def raw_cents(self, base_cents: int) -> int:
        """The discount before the offer's cap and before clamping to `base_cents`."""
        return self.off_cents


@dataclass(frozen=True, slots=True)
class PercentOff:
    """`percent`% off (8折 is 20). The discount is floored: the shop never gives more than the percent."""

    percent: int

    def __post_init__(self) -> None:
        if not 1 <= self.percent <= 100:
            raise ValueError(f"percent off must be 1..100, not {self.percent}")

    @property
    def threshold_cents(self) -> int:
        return 0

    def raw_cents(self, base_cents: int) -> int:
        """The discount before the offer's cap and before clamping to `base_cents`."""
        return base_cents * self.percent // 100


@dataclass(frozen=True, slots=True)
class Tier:
    """满 `threshold_cents` 减 `off_cents`."""

    threshold_cents: int
    off_cents: int


@dataclass(frozen=True, slots=True)
class TieredOff:
    """满减: the highest tier the amount reaches applies (满300减30/满500减60). One tier is plain 满减."""

    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a 满减 needs at least one tier")
        if any(t.threshold_cents <= 0 or t.off_cents <= 0 for t in self.tiers):
            raise ValueError("满减 thresholds and amounts must be positive")
        for lower, higher in zip(self.tiers, self.tiers[1:], strict=False):
            # A higher tier that gives less than a lower one is a typo, and would never be "reached".
            if higher.threshold_cents <= lower.threshold_cents or higher.off_cents < lower.off_cents:
                raise ValueError("满减 tiers must rise: larger thresholds, no smaller amounts")

    @classmethod
    def of(cls, *pairs: tuple[int, int]) -> TieredOff:
        """`TieredOff.of((30_000, 3_000), (50_000, 6_000))` is 满300减30/满500减60."""
        return cls(tuple(Tier(threshold, off) for threshold, off in pairs))

    @property
    def threshold_cents(self) -> int:
        return self.tiers[0].threshold_cents

    def raw_cents(self, base_cents: int) -> int:
        """The discount before the offer's cap and before clamping to `base_cents`."""
        return max((t.off_cents for t in self.tiers if base_cents >= t.threshold_cents), default=0)


@dataclass(frozen=True, slots=True)
class EveryOff:
    """每满 `step_cents` 减 `off_cents`, repeating (每满200减20: 450 → 40); cap it with the offer's cap."""

    step_cents: int
    off_cents: int

    def __post_init__(self) -> None:
        if not 0 < self.off_cents <= self.step_cents:
            raise ValueError("每满 needs 0 < amount off <= step")

    @property
    def threshold_cents(self) -> int:
        return self.step_cents

    def raw_cents(self, base_cents: int) -> int:
        """The discount before the offer's cap and before clamping to `base_cents`."""
        return base_cents // self.step_cents * self.off_cents


Discount = AmountOff | PercentOff | TieredOff | EveryOff


@dataclass(frozen=True, slots=True)
class Scope:
    """Which lines an offer sees. Both sets None: the whole cart; otherwise a line in either set."""

    categories: frozenset[str] | None = None
    product_ids: frozenset[int] | None = None

    @classmethod
    def of_categories(cls, *categories: str) -> Scope:
        return cls(categories=frozenset(categories))

    @classmethod
    def of_products(cls, *product_ids: int) -> Scope:
        return cls(product_ids=frozenset(product_ids))

    def covers(self, product_id: int, category: str) -> bool:
        """True when a line of `product_id` in `category` is in this scope."""
        if self.categories is None and self.product_ids is None:
            return True
        return category in (self.categories or ()) or product_id in (self.product_ids or ())


WHOLE_CART = Scope()


@dataclass(frozen=True, slots=True)
class Offer:
    """One shop rule, coupon or shop red packet; `code` names it in the breakdown and in errors."""

    code: str
    discount: Discount
    scope: Scope = WHOLE_CART
    min_spend_cents: int = 0  # on the amount of the lines in scope, at the offer's turn
    cap_cents: int | None = None  # the most this offer takes off, whatever its discount says
    group: str | None = None  # offers sharing a group exclude each other
    priority: int = 0  # lower applies first
    valid_from: datetime | None = None
    valid_until: datetime | None = None  # exclusive, like a session's end

    def __post_init__(self) -> None:
        if not self.code:
            raise ValueError("an offer needs a code")
        if self.min_spend_cents < 0:
            raise ValueError("a minimum spend cannot be negative")
        if self.cap_cents is not None and self.cap_cents <= 0:
            raise ValueError("a cap must be positive")
        bounds = [t for t in (self.valid_from, self.valid_until) if t is not None]
        if any(t.tzinfo is None for t in bounds):
            raise ValueError(f"offer {self.code!r}: validity times must be timezone-aware")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError(f"offer {self.code!r} must end after it starts")

    @property
    def min_base_cents(self) -> int:
        """The least amount in scope the offer needs: its minimum spend or its first threshold."""
        return max(self.min_spend_cents, self.discount.threshold_cents)

    def in_force(self, now: datetime) -> bool:
        """True when `now` lies in the offer's validity window."""
        return (self.valid_from is None or self.valid_from <= now) and (
            self.valid_until is None or now < self.valid_until
        )

    def discount_cents(self, base_cents: int) -> int:
        """What the offer takes off `base_cents` (its lines' amount): capped, and never more than the base."""
        cap = base_cents if self.cap_cents is None else min(self.cap_cents, base_cents)
        return min(self.discount.raw_cents(base_cents), cap)


def check_unique_codes(offers: Iterable[Offer]) -> None:
    """Refuse two offers with one code: the breakdown and the errors name offers by code."""
    seen: set[str] = set()
    for offer in offers:
        if offer.code in seen:
            raise ValueError(f"offer code {offer.code!r} appears twice")
        seen.add(offer.code)
