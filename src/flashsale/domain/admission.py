"""Admission rules beyond rate limits: what a campaign and an item ask of a shopper before a hold.

Pure: no I/O, no clock (time is passed in). The services keep the state (spent sale tokens, the
waiting room's queue, hoarders' expiry counts) and call these rules to decide.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from flashsale.domain.errors import ErrorCode

MAX_WAITING_ROOM_K = 1000  # K× the remaining stock may be admitted at once; beyond this it gates nothing
MAX_BUY_WINDOW_S = 3600
DEFAULT_BUY_WINDOW_S = 120
DEFAULT_QUIZ_PENALTY_S = 10
MAX_QUIZ_PENALTY_S = 600
MIN_HOARDER_PAYMENT_WINDOW_S, MAX_HOARDER_PAYMENT_WINDOW_S = 10, 3600
MAX_HOLD_CAP = 1000


@dataclass(frozen=True, slots=True)
class QuizQuestion:
    """One question of an item's quiz (答题): the index of the right choice stays on the server."""

    question: str
    choices: tuple[str, ...]
    answer: int

    def __post_init__(self) -> None:
        if not self.question or len(self.choices) < 2:
            raise ValueError("a quiz question needs its text and at least two choices")
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(f"the answer must index a choice (0..{len(self.choices) - 1})")


def question_for(quiz: tuple[QuizQuestion, ...], shopper: str, item_id: int) -> QuizQuestion:
    """The shopper's question for the item: fixed per (shopper, item), so asking again draws no easier one."""
    digest = hashlib.sha256(f"{item_id}\n{shopper}".encode()).digest()
    return quiz[int.from_bytes(digest[:8], "big") % len(quiz)]


@dataclass(frozen=True, slots=True)
class HoarderPolicy:
    """What happens to a shopper who let holds of the campaign expire, or cancelled them.

    From `throttle_after` expiries on, the shopper may hold and buy at most `throttled_limit` units
    of an item (fewer than its per-user limit); from `block_after` expiries on, no more holds in the
    campaign. `cancel_limit` caps cancel-and-rebuy cycles: from that many cancellations on, no more
    holds either. None switches a step off.
    """

    throttle_after: int | None = None
    throttled_limit: int = 1
    block_after: int | None = None
    cancel_limit: int | None = None
    payment_window_s: int | None = None  # a throttled shopper's holds expire this soon (None: the item's)

    def __post_init__(self) -> None:
        for name in ("throttle_after", "block_after", "cancel_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 expiry, not {value}")
        if self.throttled_limit < 1:
            raise ValueError(f"throttled_limit must be at least 1, not {self.throttled_limit}")
        window = self.payment_window_s
        if window is not None and not MIN_HOARDER_PAYMENT_WINDOW_S <= window <= MAX_HOARDER_PAYMENT_WINDOW_S:
            raise ValueError(
                f"payment_window_s must be {MIN_HOARDER_PAYMENT_WINDOW_S}..{MAX_HOARDER_PAYMENT_WINDOW_S}, "
                f"not {window}"
            )
        if window is not None and self.throttle_after is None:
            raise ValueError("payment_window_s applies to throttled shoppers: set throttle_after too")

    @property
    def active(self) -> bool:
        return any(s is not None for s in (self.throttle_after, self.block_after, self.cancel_limit))

    def verdict(self, *, expiries: int, cancels: int, used: int, qty: int) -> ErrorCode | None:
        """Why a shopper with `expiries` expired and `cancels` cancelled holds, who holds+bought `used`
        units, may not take `qty` more.

        Blocked first (nothing helps), then throttled (fewer units); None when the hold may go on.
        """
        if self.block_after is not None and expiries >= self.block_after:
            return ErrorCode.HOARDER_BLOCKED
        if self.cancel_limit is not None and cancels >= self.cancel_limit:
            return ErrorCode.HOARDER_BLOCKED
        if self.throttled(expiries) and used + qty > self.throttled_limit:
            return ErrorCode.HOARDER_THROTTLED
        return None

    def throttled(self, expiries: int) -> bool:
        """Whether a shopper with `expiries` expired holds in the campaign is flagged as a hoarder."""
        return self.throttle_after is not None and expiries >= self.throttle_after

    def hold_ttl_s(self, expiries: int) -> int | None:
        """The payment window of a new hold of this shopper, if shorter than the item's is due; else None."""
        return self.payment_window_s if self.throttled(expiries) else None


@dataclass(frozen=True, slots=True)
class HoldCaps:
    """At most this many live holds per campaign from one client address, or one device, across accounts.

    A slot lasts until its hold's payment deadline, whatever happens to the hold before: a scalper
    who pays at once must not get a fresh slot for every unit bought. None switches a cap off.
    """

    per_client: int | None = None
    per_device: int | None = None

    def __post_init__(self) -> None:
        for name in ("per_client", "per_device"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= MAX_HOLD_CAP:
                raise ValueError(f"{name} must be 1..{MAX_HOLD_CAP}, not {value}")

    @property
    def active(self) -> bool:
        return self.per_client is not None or self.per_device is not None


@dataclass(frozen=True, slots=True)
class ItemAdmission:
    """An item's admission terms, with its campaign's, as the buy path reads them from memory.

    `waiting_room_k` None: no waiting room. Otherwise at most K × the remaining stock shoppers hold
    a buy window at once; the others wait in line (see services/waiting_room.py).
    """

    item_id: int
    campaign_id: int
    opens_at: float
    closes_at: float
    requires_sale_token: bool = False
    waiting_room_k: int | None = None
    buy_window_s: int = DEFAULT_BUY_WINDOW_S
    purchase_per_shopper: str | None = None  # `limits` strings, counted per campaign
    purchase_per_client: str | None = None
    hoarder: HoarderPolicy = field(default_factory=HoarderPolicy)
    hold_caps: HoldCaps = field(default_factory=HoldCaps)  # the campaign's, across accounts
    quiz: tuple[QuizQuestion, ...] = ()  # answered right before a sale token is issued; () none
    quiz_penalty_s: int = DEFAULT_QUIZ_PENALTY_S  # a wrong answer: no new try for this long
    rehearsal: bool = False  # a load rehearsal's copy: sold only with its pass (services/rehearsal_pass.py)

    def __post_init__(self) -> None:
        if not 1 <= self.quiz_penalty_s <= MAX_QUIZ_PENALTY_S:
            raise ValueError(f"quiz_penalty_s must be 1..{MAX_QUIZ_PENALTY_S}, not {self.quiz_penalty_s}")
        if self.waiting_room_k is not None and not 1 <= self.waiting_room_k <= MAX_WAITING_ROOM_K:
            raise ValueError(f"waiting_room_k must be 1..{MAX_WAITING_ROOM_K}, not {self.waiting_room_k}")
        if not 1 <= self.buy_window_s <= MAX_BUY_WINDOW_S:
            raise ValueError(f"buy_window_s must be 1..{MAX_BUY_WINDOW_S}, not {self.buy_window_s}")

    def is_open(self, now: float) -> bool:
        """Whether the item's session is open at `now` (a sale token is issued only then)."""
        return self.opens_at <= now < self.closes_at


def arrival_order(early: Iterable[str], seed: int) -> list[str]:
    """The order in which shoppers who arrived before the open are admitted: shuffled by `seed`.

    Sorted first, so the order depends on who arrived and the seed alone, never on the order they
    arrived in (a faster bot gains nothing by being first before the open).
    """
    order = sorted(set(early))
    random.Random(seed).shuffle(order)
    return order


MIN_POLL_S, MAX_POLL_S, UNMEASURED_POLL_S = 1.0, 60.0, 5.0


def poll_after_s(eta_s: float | None) -> float:
    """When a waiting shopper's page should ask again: a quarter of the ETA, within 1..60 s.

    Far back, a poll every few seconds would learn nothing new and cost the buyers' event loop; near
    the front, polls come often enough to catch the admission soon after it happens.
    """
    if eta_s is None:
        return UNMEASURED_POLL_S
    return min(MAX_POLL_S, max(MIN_POLL_S, eta_s / 4))


def admission_eta_s(position: int, admitted: int, elapsed_s: float) -> float | None:
    """Seconds until `position` is admitted at the measured rate (`admitted` over `elapsed_s`).

    None while nothing has been admitted yet: no rate is measured, and guessing would mislead.
    """
    if admitted <= 0 or elapsed_s <= 0:
        return None
    return position / (admitted / elapsed_s)
