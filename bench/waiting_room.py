"""The buy path on the embedded default, alone and beside a waiting room of 10,000 shoppers.

A hot item's room holds its crowd in line (K = 1, ten units: ten buy windows, everyone else waits)
while the same purchase crowd as in the read-flood bench buys another item on the same one-worker
server. The waiting shoppers join before the clock starts, then poll their place with their tickets
whenever the room's last answer said to (`poll_after_s`: a quarter of their ETA, 1..60 s), as
their pages would. Both rows
come from the same run of the bench; the second gives its throughput and p99 as ratios to the first
(target: the buy path keeps ≥ 90 % of its throughput). A third row polls the same room's tickets as
fast as the server answers (a scraper ignoring `poll_after_s`), which the room's per-ticket pace
answers 429. The check requires every join and poll to be answered 200 (or 429 in the third row)
and the buy item's stock to be conserved, as read_flood's check does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

from bench.read_flood import ENGINE, FloodKind, ReadFloodSuite
from bench.report import Result, Skipped
from flashsale.bootstrap import build
from flashsale.config import Settings
from flashsale.services.admission_policy import AdmissionTerms

ROOM_STOCK = 10
THROUGHPUT_TARGET = 0.9


def seed_room(shoppers: int, settings: dict[str, str], *, flat_out: bool = False) -> list[str]:
    """Create the room's item (its own campaign, open now, K = 1); return the flood's arguments."""
    platform = build(Settings(_env_file=None, **settings), migrate=False)
    try:
        cat, now = platform.catalog, datetime.now(UTC)
        campaign = cat.create_campaign(
            name="room", theme="room", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=1)
        )
        session = cat.create_session(
            campaign_id=campaign.id,
            name="hot",
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=6),
        )
        product = cat.create_product(sku="ROOM", name="hot item", list_price_cents=5000, stock=ROOM_STOCK)
        item = cat.create_item(
            session_id=session.id, product_id=product.id, flash_price_cents=2500, quota=ROOM_STOCK
        )
        AdmissionTerms(platform.deps).set_item(item.id, waiting_room_k=1)
    finally:
        platform.close()
    return ["--room", str(item.id), "--shoppers", str(shoppers), *(["--flat-out"] if flat_out else [])]


def room_kind(shoppers: int) -> FloodKind:
    """`shoppers` waiting in one room and polling their place."""
    return FloodKind(
        "/items/{room}/queue",
        "200",
        f"{shoppers:,} shoppers in a waiting room",
        prepare=partial(seed_room, shoppers),
    )


def scraper_kind(shoppers: int) -> FloodKind:
    """The same room, its tickets polled as fast as the server answers: mostly 429 (too soon)."""
    return FloodKind(
        "/items/{room}/queue",
        "200|429",
        f"{shoppers:,} shoppers in a waiting room, polled flat out (ignoring poll_after_s)",
        prepare=partial(seed_room, shoppers, flat_out=True),
    )


def room_step(suite: ReadFloodSuite, shoppers: int, *, flat_out: bool = False) -> Result:
    """The buy path beside the room; throughput and p99 as ratios to the quiet row of the same run."""
    result = suite.flooded_step(scraper_kind(shoppers) if flat_out else room_kind(shoppers))
    quiet = suite.quiet
    if quiet is None or not quiet.rate or result.rate is None:
        return result
    share = result.rate / quiet.rate
    how = f"{result.how}; buy path keeps {share:.0%} of its throughput (target ≥ {THROUGHPUT_TARGET:.0%})"
    beside = "a waiting room polled flat out" if flat_out else "a waiting room"
    return replace(result, engine=f"{ENGINE}, beside {beside}", how=how)


def steps(*, requests: int, shoppers: int) -> list[tuple[str, Callable[[], Result | Skipped]]]:
    """The buy path alone, then beside `shoppers` waiting shoppers, in one run."""
    suite = ReadFloodSuite(requests=requests)
    return [
        ("waiting room / buy path alone", suite.quiet_step),
        (
            f"waiting room / buy path beside {shoppers:,} waiting shoppers",
            partial(room_step, suite, shoppers),
        ),
        (
            f"waiting room / buy path beside {shoppers:,} tickets polled flat out",
            partial(room_step, suite, shoppers, flat_out=True),
        ),
    ]
