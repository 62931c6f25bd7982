"""Run the demo: build the embedded platform on simulated time, let the crowd loose, audit the result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from flashsale.bootstrap import build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.demo.campaign import PAYMENT_WINDOW_S, SALE_DAY, DemoCampaign, create_campaign
from flashsale.demo.crowd import Shopper, plan_crowd
from flashsale.demo.goals import enter_goals
from flashsale.demo.report import DemoReport, audit_items
from flashsale.demo.shop import Shop, click_early, shop_for
from flashsale.messaging.dispatch import Dispatcher
from flashsale.services.audit import audit_payments
from flashsale.services.goals import Goals
from flashsale.services.review import load_review

EARLY_LEAD_S = 30.0  # the early clickers click this long before the open
WAVE_SPAN_S = 60.0  # simulated time a wave of shoppers takes, spread evenly over its shoppers
SHOPPERS_PER_WORKER = 128  # shoppers inside the shop at once, per worker thread: batches fill up


@dataclass(frozen=True, slots=True)
class DemoOptions:
    seed: int = 1
    shoppers: int = 10_000
    concurrency: int = 8  # worker threads calling the order service
    quota_scale: float = 1.0  # scales every item's quota, for smaller crowds


def run_demo(
    data_dir: Path,
    options: DemoOptions,
    on_progress: Callable[[], None] = lambda: None,
    *,
    review_dir: Path | None = None,
) -> DemoReport:
    """Create the example campaign in an empty `data_dir`, run the crowd, and audit the books.

    The platform runs on a manual clock: the demo moves it through both sessions, past the
    payment window so unpaid holds expire, without waiting. `on_progress` is called once per
    shopper who is done. With `review_dir`, the demo's operator enters targets and channels and the
    campaign's review (`flashsale report`) is written there afterwards.
    """
    clock = ManualClock(SALE_DAY.timestamp())
    # 催付 goes to the file outbox as IM (address: the shopper id), so no contact details are needed;
    # claimed 100 at a time: the outbox drops a key it holds, so a larger batch repeats nothing.
    settings = Settings(
        data_dir=data_dir,
        database_url=None,
        backend="memory",
        messaging_reminder_channel="im",
        messaging_claim_batch=100,
    )
    platform = build(settings, clock=clock)
    try:
        campaign = create_campaign(platform.catalog, quota_scale=options.quota_scale)
        crowd = plan_crowd(campaign.items, shoppers=options.shoppers, seed=options.seed)
        with ThreadPoolExecutor(options.concurrency, thread_name_prefix="shopper") as pool:
            shop = Shop(platform.orders, pool)
            sender = platform.message_dispatcher()
            started = time.perf_counter()
            sending_s = asyncio.run(
                _sale(shop, clock, campaign, crowd, options.concurrency, on_progress, sender)
            )
            crowd_seconds = time.perf_counter() - started - sending_s  # the pace is the crowd's alone
        review_path = None
        if review_dir is not None:
            reads = platform.deps.reads or platform.deps.sessions
            kpis = load_review(reads, campaign.campaign_id).kpis
            enter_goals(Goals(platform.deps), campaign, kpis)
            from flashsale.reports.campaign import write_campaign_review  # matplotlib: only when drawn

            review_path = write_campaign_review(reads, campaign.campaign_id, review_dir)
        return DemoReport(
            seed=options.seed,
            shoppers=options.shoppers,
            concurrency=options.concurrency,
            items=audit_items(platform.deps, campaign, shop.tally),
            tally=shop.tally,
            crowd_seconds=crowd_seconds,
            money_nets=audit_payments(platform.deps.sessions).clean,
            review_path=review_path,
            messages=platform.messaging.counts(),
            messages_seconds=sending_s,
        )
    finally:
        platform.close()


async def _sale(
    shop: Shop,
    clock: ManualClock,
    campaign: DemoCampaign,
    crowd: Sequence[Shopper],
    concurrency: int,
    on_progress: Callable[[], None],
    sender: Dispatcher,
) -> float:
    """Run both sessions; return the wall seconds spent sending 催付 between the waves."""
    sending_s = 0.0

    async def wave(shoppers: Sequence[Shopper]) -> None:
        step = WAVE_SPAN_S / max(1, len(shoppers))
        # A fixed number of shoppers inside at once, each door taking the next shopper in line: not a
        # semaphore, whose acquire scans every waiter (quadratic in a crowd of thousands on 3.11).
        line = iter(shoppers)

        async def door() -> None:
            for shopper in line:
                await shop_for(shop, shopper)
                clock.advance(step)
                on_progress()

        await asyncio.gather(*(door() for _ in range(min(len(shoppers), concurrency * SHOPPERS_PER_WORKER))))

    for session, opens_at in enumerate(campaign.session_opens_at):
        rush = [s for s in crowd if s.item.spec.session == session and not s.late]
        late = [s for s in crowd if s.item.spec.session == session and s.late]
        clock.set(opens_at - EARLY_LEAD_S)
        await asyncio.gather(*(click_early(shop, s) for s in rush if s.early_clicks))
        clock.set(opens_at)
        await wave(rush)
        sending_s += _remind_unpaid(sender, clock, until=opens_at + WAVE_SPAN_S + PAYMENT_WINDOW_S)
        # Past the payment window of every hold of the rush: the unpaid ones expire, units return.
        clock.set(opens_at + WAVE_SPAN_S + PAYMENT_WINDOW_S + 1)
        await shop.expire()
        await wave(late)
    return sending_s


def _remind_unpaid(sender: Dispatcher, clock: ManualClock, *, until: float) -> float:
    """Run the message sender once a simulated minute through the payment window: 催付 to the outbox.

    Return the wall seconds it took.
    """
    started = time.perf_counter()
    while clock() < until:
        while sender.run_once().sent:
            pass
        clock.advance(60)
    return time.perf_counter() - started
