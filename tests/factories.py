"""Test data builders: ledger terms, a long sale, crowds of buyers released at once, stress sizes."""

from __future__ import annotations

import os
import random
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from flashsale.bootstrap import Platform
from flashsale.domain.sale import ItemTerms
from tests.conftest import T0

T = TypeVar("T")

OPENS_AT = T0.timestamp()
CLOSES_AT = OPENS_AT + 600.0  # a ten-minute session
HOLD_TTL_S = 900.0  # the default fifteen-minute payment window
FULL_STRESS = os.environ.get("FLASHSALE_STRESS") == "full"


def stress_size(bounded: int, full: int) -> int:
    """Pick the bounded size for the default run, the full one under FLASHSALE_STRESS=full."""
    return full if FULL_STRESS else bounded


def terms(
    item_id: int = 1,
    *,
    quota: int = 10,
    per_user_limit: int = 2,
    opens_at: float = OPENS_AT,
    closes_at: float = CLOSES_AT,
    hold_ttl_s: float = HOLD_TTL_S,
) -> ItemTerms:
    """Build ledger terms for an item on sale in the ten-minute session that opens at T0."""
    return ItemTerms(item_id, quota, per_user_limit, opens_at, closes_at, hold_ttl_s)


@dataclass(frozen=True, slots=True)
class Request:
    """One buy click: a user asks for `qty` units under an idempotency key."""

    user_id: str
    qty: int
    request_id: str


def crowd(rng: random.Random, *, buyers: int, limit: int, prefix: str = "u") -> list[Request]:
    """Build a shuffled crowd of `buyers` users and their clicks.

    Most users click once for 1 or `limit` units; some double-click (the same key twice); some are
    greedy and send `limit + 1` distinct single-unit requests, so the per-user limit must refuse one.
    About half the users ask for exactly one unit once (see `single_unit_buyers`).
    """
    clicks: list[Request] = []
    for n in range(buyers):
        user = f"{prefix}{n}"
        roll = rng.random()
        if roll < 0.5:
            clicks.append(Request(user, 1, f"{user}-a"))
        elif roll < 0.75:
            clicks.append(Request(user, rng.randint(1, limit), f"{user}-a"))
        elif roll < 0.9:
            click = Request(user, rng.randint(1, limit), f"{user}-a")
            clicks += [click, click]
        else:
            clicks += [Request(user, 1, f"{user}-{k}") for k in range(limit + 1)]
    rng.shuffle(clicks)
    return clicks


def release_together(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run each call on its own thread, all released at the same instant by a barrier; return the results.

    A call that raises leaves its thread dead and its result missing, which fails the caller's test
    (so every call must return something other than None).
    """
    results: list[T | None] = [None] * len(calls)
    gate = threading.Barrier(len(calls), timeout=120)

    def run(n: int, call: Callable[[], T]) -> None:
        gate.wait()
        results[n] = call()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [r for r in results if r is not None]
    assert len(done) == len(calls), f"{len(calls) - len(done)} threads died"
    return done


def demand(clicks: Iterable[Request], limit: int) -> int:
    """Return the units the crowd could rightfully get with unlimited stock (replays count once)."""
    wanted: dict[str, int] = defaultdict(int)
    for (user_id, _), qty in {(c.user_id, c.request_id): c.qty for c in clicks}.items():
        wanted[user_id] += qty
    return sum(min(limit, units) for units in wanted.values())


def single_unit_buyers(clicks: Iterable[Request]) -> int:
    """Count users who click exactly once for one unit.

    While stock lasts each of them is granted, so a quota no larger than this count is sure to
    sell out completely, whatever order the requests are served in.
    """
    per_user: dict[str, list[Request]] = defaultdict(list)
    for click in clicks:
        per_user[click.user_id].append(click)
    return sum(1 for mine in per_user.values() if len(mine) == 1 and mine[0].qty == 1)


def open_sale(
    platform: Platform,
    *,
    opens_at: datetime = T0,
    hours: float = 24,
    quota: int,
    per_user_limit: int,
    payment_window_s: int,
) -> int:
    """Create a campaign with one long session selling one item from `opens_at`; return the item id."""
    cat = platform.catalog
    campaign = cat.create_campaign(
        name="Long sale",
        theme="stress",
        starts_at=opens_at - timedelta(days=1),
        ends_at=opens_at + timedelta(hours=hours, days=1),
        payment_window_s=payment_window_s,
    )
    session = cat.create_session(
        campaign_id=campaign.id, name="all day", starts_at=opens_at, ends_at=opens_at + timedelta(hours=hours)
    )
    product = cat.create_product(
        sku=f"SKU-{campaign.id}", name="Limited sneaker", list_price_cents=129_900, stock=quota
    )
    item = cat.create_item(
        session_id=session.id,
        product_id=product.id,
        flash_price_cents=69_900,
        quota=quota,
        per_user_limit=per_user_limit,
    )
    return item.id
