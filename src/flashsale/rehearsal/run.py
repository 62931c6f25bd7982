"""Run a rehearsal: read the forecast, copy the campaign, let the crowd arrive on schedule, audit.

Time line (wall clock of this host, which should agree with the deployment's to within a second):
the copy's first session opens `PREP_S` after it is asked for; early clickers click in the
`EARLY_LEAD_S` before each open; a session's shoppers arrive uniformly at random over its forecast
span (a Poisson process of that many arrivals); the next session opens after the lead that follows.
Each copied session stays open `TAIL_S` past its span so retries and pays of late arrivals land.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from flashsale.auth import mint_shopper_token
from flashsale.demo.campaign import DemoItem, ItemSpec
from flashsale.demo.crowd import Shopper, draw_shoppers, shopper_ids
from flashsale.demo.shop import Tally, click_early, shop_for
from flashsale.rehearsal.openloop import Recorder, run_open_loop
from flashsale.rehearsal.operator import Operator, RehearsalRefused
from flashsale.rehearsal.result import ItemResult, RehearsalResult
from flashsale.rehearsal.storefront import Storefront
from flashsale.rehearsal.wire import ConnectionPool

PREP_S = 3.0  # from asking for the copy to the first early click: the copy must be made by then
EARLY_LEAD_S = 1.0
TAIL_S = 30.0
SETTLE_S = 15.0  # how long the stored orders may take to catch up with the ledger (Redis' writers)


@dataclass(frozen=True, slots=True)
class RehearsalOptions:
    url: str
    campaign_id: int
    admin_token: str
    jwt_secret: str
    load: float = 2.0
    seed: int = 1
    from_campaign: int | None = None  # take the forecast from this campaign's orders
    connections: int = 200  # the client's connection pool; a request that waits for one counts the wait
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class _Session:
    source_session_id: int
    shoppers: int  # the forecast at the load multiple
    span_s: float
    opens: float  # seconds after the start


def parse_load(text: str) -> float:
    """Read a load multiple such as "2x", "0.5x" or "2"."""
    value = float(text.strip().lower().removesuffix("x"))
    if not 0 < value <= 1000:
        raise ValueError("the load multiple must be above 0 and at most 1000")
    return value


def rehearse(options: RehearsalOptions) -> RehearsalResult:
    """Rehearse the campaign's forecast traffic at `options.load` against the deployment at `options.url`."""
    with httpx.Client(
        base_url=options.url,
        headers={"Authorization": f"Bearer {options.admin_token}"},
        timeout=options.timeout_s,
    ) as admin:
        operator = Operator(admin)
        plan = _plan(
            operator.forecast(options.campaign_id, from_campaign=options.from_campaign), options.load
        )
        # Shoppers are named and their tokens minted before the copy is asked for, so a big crowd
        # costs no time between the copy and its open.
        prefixes = [f"r{secrets.token_hex(4)}-{n}-" for n in range(len(plan))]
        ttl = PREP_S + max(s.opens + s.span_s for s in plan) + TAIL_S + 3600
        tokens = {
            user_id: mint_shopper_token(options.jwt_secret, user_id, ttl, time.time())
            for prefix, session in zip(prefixes, plan, strict=True)
            for user_id in shopper_ids(prefix, session.shoppers)
        }
        start_wall = time.time() + PREP_S
        copy = operator.copy(
            options.campaign_id,
            [
                (s.source_session_id, start_wall + s.opens, start_wall + s.opens + s.span_s + TAIL_S)
                for s in plan
            ],
        )
        if time.time() > start_wall:
            raise RehearsalRefused(
                f"making the copy took over {PREP_S} s: the deployment is too slow to rehearse"
            )
        rng = random.Random(options.seed)
        crowds = [
            _crowd(session, copied, prefix, rng)
            for session, copied, prefix in zip(plan, copy["sessions"], prefixes, strict=True)
        ]
        shoppers = [s for crowd in crowds for s in crowd]
        recorder = Recorder()
        start = recorder.clock() + (start_wall - time.time())
        with asyncio.Runner(loop_factory=_fast_loop()) as runner:
            tally, finished = runner.run(
                _load(
                    options,
                    tokens,
                    recorder,
                    _schedule(plan, crowds, rng),
                    start=start,
                    rehearsal_pass=copy["rehearsal_pass"],
                )
            )
        items = _audit(operator, copy)
    return RehearsalResult(
        campaign_id=options.campaign_id,
        copy_campaign_id=copy["campaign_id"],
        url=options.url,
        load=options.load,
        seed=options.seed,
        started_at=datetime.fromtimestamp(start_wall, UTC).isoformat(),
        shoppers=len(shoppers),
        duration_s=finished - start,
        samples=tuple(recorder.samples),
        tally=tally,
        items=items,
    )


def _fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (uvicorn[standard] brings it): less CPU per request for the
    client, which shares the machine with whatever it measures; else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _plan(forecast: Sequence[dict[str, Any]], load: float) -> list[_Session]:
    sessions, opens = [], EARLY_LEAD_S
    for entry in forecast:
        shoppers = round((entry["shoppers"] or 0) * load)
        if shoppers == 0:
            continue
        sessions.append(_Session(entry["session_id"], shoppers, float(entry["span_s"]), opens))
        opens += entry["span_s"] + EARLY_LEAD_S
    if not sessions:
        raise RehearsalRefused(
            "no session has a forecast: enter one (flashsale plan forecast, PUT /admin/campaigns/ID/forecast)"
            " or take it from a previous campaign (--from-campaign)"
        )
    return sessions


def _crowd(session: _Session, copied: dict[str, Any], prefix: str, rng: random.Random) -> list[Shopper]:
    items = [
        DemoItem(
            c["item"]["id"],
            ItemSpec(
                session=0,
                sku=c["product"]["sku"],
                name=c["product"]["name"],
                list_price_cents=c["product"]["list_price_cents"],
                flash_price_cents=c["item"]["flash_price_cents"],
                quota=c["item"]["quota"],
                per_user_limit=c["item"]["per_user_limit"],
            ),
        )
        for c in copied["items"]
        if c["item"]["quota"] > 0
    ]
    if not items:
        return []
    return draw_shoppers(items, session.shoppers, rng=rng, prefix=prefix)


def _schedule(
    plan: Sequence[_Session], crowds: Sequence[list[Shopper]], rng: random.Random
) -> list[tuple[float, Shopper, bool]]:
    """(offset, shopper, early?): each shopper at a uniform moment of its session's span; early
    clickers also once in the lead before the open."""
    visits = []
    for session, crowd in zip(plan, crowds, strict=True):
        for shopper in crowd:
            visits.append((session.opens + rng.uniform(0, session.span_s), shopper, False))
            if shopper.early_clicks:
                visits.append((session.opens - rng.uniform(0, EARLY_LEAD_S), shopper, True))
    return visits


async def _load(
    options: RehearsalOptions,
    tokens: dict[str, str],
    recorder: Recorder,
    visits: Sequence[tuple[float, Shopper, bool]],
    *,
    start: float,
    rehearsal_pass: str,
) -> tuple[Tally, float]:
    """Play every visit on schedule; return the tally and the clock time of the last answer."""
    http = ConnectionPool(options.url, size=options.connections, timeout_s=options.timeout_s)
    try:
        front = Storefront(http, tokens, recorder, rehearsal_pass)

        def arrival(shopper: Shopper, early: bool) -> Callable[[float], Coroutine[Any, Any, None]]:
            async def begin(intended: float) -> None:
                door = front.door(intended)
                await (click_early(door, shopper) if early else shop_for(door, shopper))

            return begin

        await run_open_loop(
            [(offset, arrival(shopper, early)) for offset, shopper, early in visits],
            start=start,
            clock=recorder.clock,
        )
    finally:
        await http.close()
    return front.tally, recorder.clock()


def _audit(operator: Operator, copy: dict[str, Any]) -> tuple[ItemResult, ...]:
    """Read every copied item's books, waiting up to SETTLE_S for the stored orders to catch up."""
    copied = [c for s in copy["sessions"] for c in s["items"]]
    deadline = time.monotonic() + SETTLE_S
    while True:
        books = [operator.books(c["item"]["id"], c["item"]["per_user_limit"]) for c in copied]
        if all(b.agrees for b in books) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return tuple(
        ItemResult.of(b, source_item_id=c["source_item_id"], name=c["product"]["name"])
        for b, c in zip(books, copied, strict=True)
    )
