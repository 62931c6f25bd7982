"""The demo crowd: who shops for what, and how they behave, drawn from one seeded random generator.

Each session has two waves. The rush arrives at the open (some clicked before it); after the
payment window the unpaid holds expire, and late shoppers come for the released units. The late
wave is sized so that every unit is sold whatever the thread interleaving (see `resale_bound`).

Basket shoppers are drawn apart (`plan_baskets`, from the same seed but their own generator, so the
flash crowd is the one it always was): in the second session, after its late wave, each claims a
coupon, fills a cart with regular items and checks out with the coupon.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from flashsale.demo.campaign import DemoItem, RegularItem


class CrowdTooSmall(ValueError):
    """The late wave cannot be made big enough to sell out the units freed by expired holds."""


class Behaviour(StrEnum):
    PAYER = "payer"  # buys and pays
    EARLY_CLICKER = "early_clicker"  # clicks before the open (SESSION_NOT_OPEN), buys at the open, pays
    DOUBLE_CLICKER = "double_clicker"  # sends one request twice at once: one hold, one replay; pays
    RETRIER = "retrier"  # loses the answer and resends the same request id (a replay); pays
    GREEDY = "greedy"  # asks for more than the limit, buys the limit and pays, then tries again
    NEVER_PAYS = "never_pays"  # holds and walks away: the hold expires after the payment window
    CANCELLER = "canceller"  # holds, then cancels: the units go back at once


# Weights of each behaviour, in percent. Late shoppers all pay, so nothing is left held at the end.
RUSH_MIX: dict[Behaviour, int] = {
    Behaviour.PAYER: 52,
    Behaviour.EARLY_CLICKER: 10,
    Behaviour.DOUBLE_CLICKER: 8,
    Behaviour.RETRIER: 6,
    Behaviour.GREEDY: 8,
    Behaviour.NEVER_PAYS: 11,
    Behaviour.CANCELLER: 5,
}
LATE_MIX: dict[Behaviour, int] = {Behaviour.PAYER: 80, Behaviour.DOUBLE_CLICKER: 10, Behaviour.RETRIER: 10}
RETURNS_UNITS = frozenset({Behaviour.NEVER_PAYS, Behaviour.CANCELLER})
LATE_SHARES = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5)  # tried in turn until the late wave is big enough


@dataclass(frozen=True, slots=True)
class Shopper:
    user_id: str
    item: DemoItem
    behaviour: Behaviour
    qty: int  # units wanted; the greedy want their whole limit (and first ask for one more)
    late: bool = False  # arrives after the rush's unpaid holds expired
    early_clicks: int = 0  # clicks before the session opens


def resale_bound(item: DemoItem, rush: Sequence[Shopper]) -> int:
    """Return the most units of `item` that can still be unsold once the rush's unpaid holds expire.

    Every rush shopper ends up holding at least one unit or is told SOLD_OUT (a shopper offered
    fewer units than asked settles for one). If someone was told SOLD_OUT, nothing was available
    then, and only units given back afterwards (cancelled or expired: at most R, the units the
    cancellers and non-payers asked for) can be left. If nobody was, each of the W shoppers held a
    unit, and at most R of them gave theirs back, so at most quota - W + R are left. Late shoppers
    all pay and each takes at least one unit while any is left, so this many late shoppers sell out
    the item in any interleaving.
    """
    mine = [s for s in rush if s.item.id == item.id]
    returned = sum(s.qty for s in mine if s.behaviour in RETURNS_UNITS)
    quota = item.spec.quota
    return min(quota, max(0, quota - len(mine)) + returned)


def plan_crowd(items: Sequence[DemoItem], *, shoppers: int, seed: int) -> list[Shopper]:
    """Draw `shoppers` shoppers for `items`; the same seed always gives the same crowd."""
    for late_share in LATE_SHARES:
        rng = random.Random(seed)
        late_count = round(shoppers * late_share)
        rush = [_draw(rng, items, RUSH_MIX) for _ in range(shoppers - late_count)]
        needed = {item.id: resale_bound(item, rush) for item in items}
        if sum(needed.values()) <= late_count:
            late = [_draw(rng, [item], LATE_MIX, late=True) for item in items for _ in range(needed[item.id])]
            late += [_draw(rng, items, LATE_MIX, late=True) for _ in range(late_count - len(late))]
            user_ids = [f"u{n:05d}" for n in range(1, shoppers + 1)]
            rng.shuffle(user_ids)
            return [replace(s, user_id=user_id) for s, user_id in zip(rush + late, user_ids, strict=True)]
    raise CrowdTooSmall(
        f"{shoppers} shoppers are too few for these quotas: the late wave cannot sell out the"
        " units freed by expired holds; add shoppers or scale the quotas down"
    )


def draw_shoppers(
    items: Sequence[DemoItem],
    count: int,
    *,
    rng: random.Random,
    prefix: str,
    mix: dict[Behaviour, int] = RUSH_MIX,
) -> list[Shopper]:
    """Draw `count` shoppers of `mix` for `items` (weighted by quota), named as `shopper_ids` names them."""
    return [replace(_draw(rng, items, mix), user_id=user_id) for user_id in shopper_ids(prefix, count)]


def shopper_ids(prefix: str, count: int) -> list[str]:
    """The ids of `count` shoppers: prefix + a number from 1."""
    return [f"{prefix}{n:05d}" for n in range(1, count + 1)]


def _draw(
    rng: random.Random, items: Sequence[DemoItem], mix: dict[Behaviour, int], *, late: bool = False
) -> Shopper:
    item = rng.choices(items, weights=[i.spec.quota for i in items])[0]
    behaviour = rng.choices(list(mix), weights=list(mix.values()))[0]
    limit = item.spec.per_user_limit
    qty = limit if behaviour is Behaviour.GREEDY else min(limit, rng.choice((1, 1, 1, 2, 2)))
    clicks = rng.randint(1, 3) if behaviour is Behaviour.EARLY_CLICKER else 0
    return Shopper("", item, behaviour, qty, late, clicks)


class BasketBehaviour(StrEnum):
    PAYER = "payer"  # checks out with the coupon and pays
    DOUBLE_CLICKER = "double_clicker"  # sends the checkout twice at once (one Idempotency-Key); pays
    CANCELLER = "canceller"  # checks out, then cancels every line: the coupon comes back at once
    WALKS_AWAY = "walks_away"  # checks out and never pays: the expiry gives the coupon back


BASKET_MIX: dict[BasketBehaviour, int] = {
    BasketBehaviour.PAYER: 65,
    BasketBehaviour.DOUBLE_CLICKER: 10,
    BasketBehaviour.CANCELLER: 10,
    BasketBehaviour.WALKS_AWAY: 15,
}
# Units of each regular item, in `REGULAR_ITEMS` order (charger, cable). Every basket reaches the
# coupon's ¥199; three of the five also reach the promotion's ¥300.
BASKETS: tuple[tuple[int, ...], ...] = ((1, 1), (2, 1), (0, 4), (2, 2), (1, 3))
BASKET_SHARE = 0.03  # basket shoppers per flash shopper: 300 beside the default 10,000
MIN_BASKETS = 20


@dataclass(frozen=True, slots=True)
class BasketShopper:
    user_id: str
    lines: tuple[tuple[RegularItem, int], ...]  # (item, units), in the order they go in the cart
    behaviour: BasketBehaviour


def basket_count(shoppers: int) -> int:
    """How many basket shoppers come beside a flash crowd of `shoppers`."""
    return max(MIN_BASKETS, round(shoppers * BASKET_SHARE))


def plan_baskets(items: Sequence[RegularItem], *, shoppers: int, seed: int) -> list[BasketShopper]:
    """Draw the basket shoppers beside a flash crowd of `shoppers`; the same seed, the same baskets."""
    if not items:
        return []
    rng = random.Random(f"baskets-{seed}")  # its own stream: the flash crowd's draws stay as they were
    baskets = []
    for user_id in shopper_ids("b", basket_count(shoppers)):
        units = rng.choice(BASKETS)
        lines = tuple((item, qty) for item, qty in zip(items, units, strict=False) if qty)
        behaviour = rng.choices(list(BASKET_MIX), weights=list(BASKET_MIX.values()))[0]
        baskets.append(BasketShopper(user_id, lines, behaviour))
    return baskets
