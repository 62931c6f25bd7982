"""Lucky draws (抽奖, 刮刮乐, 砸金蛋): prize pools, the weighted pick, entitlements and their rules.

One mechanism behind every game: a pool of prizes, each with a weight, a stock and an optional
daily cap, beside a "thanks for playing" weight. A draw spends one entitlement and picks by weight;
a picked prize that is out of stock or at today's cap becomes "thanks for playing" (the odds of the
other prizes never grow because one ran out). Entitlements come from rules: a paid order over a
threshold, a share, a daily check-in (with a streak bonus), a free daily draw.

Pure: time comes in as a day string, randomness as a roll the caller drew.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from flashsale.domain.errors import ErrorCode, FlashSaleError

MAX_WEIGHT = 1_000_000_000
MAX_STOCK = 100_000_000
MAX_DRAWS_PER_GRANT = 100
ROLL_BITS = 48  # a roll is uniform in [0, 2**48); `roll % total_weight` is biased by < total/2**48


class PrizeKind(StrEnum):
    """What a prize gives: a coupon (a coupon template's id), goods (a product) or points."""

    COUPON = "coupon"
    GOODS = "goods"
    POINTS = "points"


class EntitlementSource(StrEnum):
    """Where a draw entitlement comes from."""

    PAID_ORDER = "paid_order"  # a PAID order whose total reaches the rule's threshold
    SHARE = "share"  # one share (转发), idempotent by the share's id
    CHECKIN = "checkin"  # the day's check-in (签到), with a streak bonus
    FREE_DAILY = "free_daily"  # one free draw a day


class Game(StrEnum):
    """How a pool is shown; the draw behind each is the same."""

    LOTTERY = "lottery"  # 抽奖 wheel
    SCRATCH_CARD = "scratch_card"  # 刮刮乐
    GOLDEN_EGG = "golden_egg"  # 砸金蛋


class AwardStatus(StrEnum):
    """An award is redeemable once: awarded -> redeemed. A losing draw is `none` and stays so."""

    NONE = "none"
    AWARDED = "awarded"
    REDEEMED = "redeemed"


@dataclass(frozen=True, slots=True)
class PrizeTerms:
    """What the draw ledger needs of a prize: its odds weight, total stock and optional daily cap."""

    prize_id: int
    weight: int
    stock: int
    daily_cap: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= MAX_WEIGHT:
            raise ValueError(f"a prize's weight must be 0..{MAX_WEIGHT}")
        if not 0 <= self.stock <= MAX_STOCK:
            raise ValueError(f"a prize's stock must be 0..{MAX_STOCK}")
        if self.daily_cap is not None and not 0 <= self.daily_cap <= MAX_STOCK:
            raise ValueError(f"a prize's daily cap must be 0..{MAX_STOCK}")


@dataclass(frozen=True, slots=True)
class PoolTerms:
    """A prize pool as the draw ledger sees it: prizes in a fixed order, and the thanks-for-playing weight."""

    pool_id: int
    prizes: tuple[PrizeTerms, ...]
    thanks_weight: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.thanks_weight <= MAX_WEIGHT:
            raise ValueError(f"the thanks-for-playing weight must be 0..{MAX_WEIGHT}")
        ids = [p.prize_id for p in self.prizes]
        if len(set(ids)) != len(ids):
            raise ValueError("a pool lists each prize once")

    @property
    def total_weight(self) -> int:
        return self.thanks_weight + sum(p.weight for p in self.prizes)


@dataclass(frozen=True, slots=True)
class Prize:
    """A prize of a pool: what it gives (`kind` and its reference), its odds weight, stock and daily cap."""

    id: int
    pool_id: int
    name: str
    kind: PrizeKind
    weight: int
    stock: int
    daily_cap: int | None = None
    coupon_template_id: int | None = None
    product_id: int | None = None
    points: int | None = None

    def __post_init__(self) -> None:
        self.terms()  # the same bounds as the ledger's
        reference = {
            PrizeKind.COUPON: self.coupon_template_id,
            PrizeKind.GOODS: self.product_id,
            PrizeKind.POINTS: self.points,
        }
        if reference[self.kind] is None or reference[self.kind] <= 0:  # type: ignore[operator]
            raise ValueError(
                f"a {self.kind.value} prize needs its {_REFERENCE[self.kind]} (a positive number)"
            )
        others = [
            name for kind, name in _REFERENCE.items() if kind is not self.kind and reference[kind] is not None
        ]
        if others:
            raise ValueError(f"a {self.kind.value} prize has no {', '.join(others)}")

    def terms(self) -> PrizeTerms:
        return PrizeTerms(self.id, self.weight, self.stock, self.daily_cap)


_REFERENCE = {
    PrizeKind.COUPON: "coupon_template_id",
    PrizeKind.GOODS: "product_id",
    PrizeKind.POINTS: "points",
}


@dataclass(frozen=True, slots=True)
class Pool:
    """A prize pool: its game, thanks-for-playing weight, time zone of its day and entitlement rules."""

    id: int
    name: str
    game: Game
    thanks_weight: int
    utc_offset_min: int
    rules: Mapping[EntitlementSource, EntitlementRule]

    def __post_init__(self) -> None:
        if not -14 * 60 <= self.utc_offset_min <= 14 * 60:
            raise ValueError("a UTC offset is within ±14 hours")
        if not 0 <= self.thanks_weight <= MAX_WEIGHT:
            raise ValueError(f"the thanks-for-playing weight must be 0..{MAX_WEIGHT}")

    def terms(self, prizes: Sequence[Prize]) -> PoolTerms:
        """The ledger's view of the pool with `prizes`, in id order (the pick order)."""
        return PoolTerms(
            self.id, tuple(p.terms() for p in sorted(prizes, key=lambda p: p.id)), self.thanks_weight
        )

    def day(self, epoch_s: float) -> str:
        return day_of(epoch_s, self.utc_offset_min)

    def rule(self, source: EntitlementSource) -> EntitlementRule:
        """The pool's rule for `source`; a pool without one grants nothing from it (NO_ENTITLEMENT)."""
        rule = self.rules.get(source)
        if rule is None:
            raise FlashSaleError(ErrorCode.NO_ENTITLEMENT, f"this pool grants no draws for {source.value}")
        return rule


def pick(pool: PoolTerms, roll: int, available: Callable[[PrizeTerms], bool]) -> int | None:
    """Return the prize id that `roll` lands on, or None for "thanks for playing".

    The roll is reduced modulo the pool's total weight and walks the prizes in their order, the
    thanks weight last. A prize that `available` says is gone (stock, today's cap) is "thanks".
    The Redis engine's draw.lua walks the same way, so both engines pick alike for one roll.
    """
    total = pool.total_weight
    if total == 0:
        return None
    point = roll % total
    for prize in pool.prizes:
        if point < prize.weight:
            return prize.prize_id if available(prize) else None
        point -= prize.weight
    return None


def has_room(prize: PrizeTerms, awarded: int, awarded_today: int) -> bool:
    """True while the prize has stock left and room under today's cap (draw.lua mirrors it)."""
    return awarded < prize.stock and (prize.daily_cap is None or awarded_today < prize.daily_cap)


def any_prize_left(pool: PoolTerms, awarded: Callable[[int], int], today: Callable[[int], int]) -> bool:
    """True while some prize with a chance (weight > 0) has room (`has_room`)."""
    return any(p.weight > 0 and has_room(p, awarded(p.prize_id), today(p.prize_id)) for p in pool.prizes)


@dataclass(frozen=True, slots=True)
class EntitlementRule:
    """How one source grants draws in a pool: `draws` per grant, at most `daily_cap` grants a day.

    `min_order_cents` is the threshold of PAID_ORDER (an order of at least that much qualifies);
    `streak_bonus_every` / `streak_bonus_draws` give CHECKIN extra draws on every n-th day in a row.
    """

    source: EntitlementSource
    draws: int = 1
    daily_cap: int = 1
    min_order_cents: int = 0
    streak_bonus_every: int = 0
    streak_bonus_draws: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.draws <= MAX_DRAWS_PER_GRANT:
            raise ValueError(f"a grant gives 1..{MAX_DRAWS_PER_GRANT} draws")
        if not 1 <= self.daily_cap <= 10_000:
            raise ValueError("a daily cap of grants must be 1..10000")
        if self.min_order_cents < 0 or self.streak_bonus_every < 0:
            raise ValueError("thresholds cannot be negative")
        if not 0 <= self.streak_bonus_draws <= MAX_DRAWS_PER_GRANT:
            raise ValueError(f"a streak bonus gives 0..{MAX_DRAWS_PER_GRANT} draws")

    def order_qualifies(self, total_cents: int) -> bool:
        """True when a paid order of `total_cents` earns this rule's draws.

        A zero-price order (a goods prize's) never does, whatever the threshold: a prize earning
        draws would let a pool feed itself.
        """
        return (
            self.source is EntitlementSource.PAID_ORDER
            and total_cents > 0
            and total_cents >= self.min_order_cents
        )

    def checkin_draws(self, streak: int) -> int:
        """The draws a check-in on day `streak` in a row earns: the base, plus the bonus every n-th day."""
        bonus = self.streak_bonus_every > 0 and streak > 0 and streak % self.streak_bonus_every == 0
        return self.draws + (self.streak_bonus_draws if bonus else 0)


def day_of(epoch_s: float, utc_offset_min: int) -> str:
    """The day (ISO `YYYY-MM-DD`) of an instant in the pool's time zone: daily caps reset at its midnight."""
    return (datetime.fromtimestamp(epoch_s, UTC) + timedelta(minutes=utc_offset_min)).date().isoformat()


def day_bounds(day: str, utc_offset_min: int) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a day in the pool's time zone."""
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC) - timedelta(
        minutes=utc_offset_min
    )
    return start, start + timedelta(days=1)


def next_streak(last_day: str | None, last_streak: int, today: str) -> int:
    """The check-in streak after checking in `today`, given the previous check-in (None: never)."""
    if last_day is not None and date.fromisoformat(today) - date.fromisoformat(last_day) == timedelta(days=1):
        return last_streak + 1
    return 1


@dataclass(frozen=True, slots=True)
class Award:
    """One draw's outcome as recorded: a prize (kind and reference) or "thanks for playing"."""

    id: str
    pool_id: int | None
    user_id: str
    request_id: str
    prize_id: int | None
    status: AwardStatus
    day: str
    at: datetime
    redeemed_at: datetime | None = None
    order_id: str | None = None  # a redeemed goods prize: the zero-price order that delivered it

    def redeem(self, user_id: str, at: datetime, order_id: str | None = None) -> Award:
        """The award, redeemed by its winner; raise when it is not theirs, a loss, or already redeemed.

        A goods prize is redeemed with the `order_id` of its zero-price order.
        """
        if user_id != self.user_id:
            raise FlashSaleError(ErrorCode.NOT_FOUND, "no such award")
        if self.status is AwardStatus.NONE:
            raise FlashSaleError(ErrorCode.INVALID_TRANSITION, "thanks for playing has nothing to redeem")
        if self.status is AwardStatus.REDEEMED:
            raise FlashSaleError(ErrorCode.ALREADY_REDEEMED, f"award {self.id} was redeemed already")
        return Award(
            self.id, self.pool_id, self.user_id, self.request_id, self.prize_id,
            AwardStatus.REDEEMED, self.day, self.at, at, order_id,
        )  # fmt: skip


def prize_order_key(award_id: str, attempt: int) -> str:
    """The checkout key of a goods award's `attempt`-th zero-price order (attempts count from 0).

    Every key derives from the award, so a retry or a twin of a redemption names the same checkout
    (hence the same hold and order). A next attempt is made only once the one before has ended for
    good without delivering (refused, or its order expired or was cancelled unpaid).
    """
    return f"award:{award_id}" if attempt == 0 else f"award:{award_id}#{attempt}"
