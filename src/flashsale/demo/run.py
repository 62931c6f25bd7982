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
from flashsale.demo.baskets import BasketShop, shop_basket
from flashsale.demo.campaign import (
    PAYMENT_WINDOW_S,
    SALE_DAY,
    DemoCampaign,
    create_campaign,
    create_promotions,
)
from flashsale.demo.crowd import BasketShopper, Shopper, plan_baskets, plan_crowd
from flashsale.demo.goals import enter_goals
from flashsale.demo.promotions import audit_promotions
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
    payment window so unpaid holds expire, without waiting. After the second session's late wave,
    the basket shoppers check out regular items with coupons and the 满减 promotion; their
    unpaid checkouts expire in turn. `on_progress` is called once per shopper (flash or basket)
    who is done. With `review_dir`, the demo's operator enters targets and channels and the
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
        baskets = plan_baskets(campaign.regular, shoppers=options.shoppers, seed=options.seed)
        campaign = create_promotions(platform.coupons, platform.free_orders, campaign, baskets=len(baskets))
        assert campaign.promotions is not None
        with ThreadPoolExecutor(options.concurrency, thread_name_prefix="shopper") as pool:
            shop = Shop(platform.orders, pool)
            wave_id = campaign.promotions.coupon_wave_id
            basket_shop = BasketShop(platform.coupons, platform.carts, platform.orders, pool, wave_id=wave_id)
            sender = platform.message_dispatcher()
            started = time.perf_counter()
            sending_s, basket_s = asyncio.run(
                _sale(
                    shop,
                    clock,
                    campaign,
                    crowd,
                    options.concurrency,
                    on_progress,
                    sender,
                    basket_shop=basket_shop,
                    baskets=baskets,
                )
            )
            # The pace is the flash crowd's alone: 催付 and the basket shoppers are timed apart.
            crowd_seconds = time.perf_counter() - started - sending_s - basket_s
        review_path = None
        if review_dir is not None:
            reads = platform.deps.reads or platform.deps.sessions
            kpis = load_review(reads, campaign.campaign_id).kpis
            enter_goals(Goals(platform.deps), campaign, kpis)
            from flashsale.reports.campaign import write_campaign_review  # matplotlib: only when drawn

            review_path = write_campaign_review(reads, campaign.campaign_id, review_dir)
        payments = audit_payments(platform.deps.sessions)  # flash orders, checkouts and free-order rebates
        return DemoReport(
            seed=options.seed,
            shoppers=options.shoppers,
            concurrency=options.concurrency,
            items=audit_items(platform.deps, campaign, shop.tally),
            tally=shop.tally,
            crowd_seconds=crowd_seconds,
            money_nets=payments.clean,
            review_path=review_path,
            messages=platform.messaging.counts(),
            messages_seconds=sending_s,
            promotions=audit_promotions(
                platform, campaign, basket_shop.tally, rebated_cents=payments.rebated_cents
            ),
            basket_seconds=basket_s,
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
    *,
    basket_shop: BasketShop,
    baskets: Sequence[BasketShopper],
) -> tuple[float, float]:
    """Run both sessions; return the wall seconds spent sending 催付 and those of the basket shoppers."""
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
    # Still in the last session (its regular items' session): the basket shoppers, timed apart.
    basket_s, reminding_s = await _basket_wave(basket_shop, baskets, clock, concurrency, on_progress, sender)
    return sending_s + reminding_s, basket_s


async def _basket_wave(
    shop: BasketShop,
    baskets: Sequence[BasketShopper],
    clock: ManualClock,
    concurrency: int,
    on_progress: Callable[[], None],
    sender: Dispatcher,
) -> tuple[float, float]:
    """Let the basket shoppers in, then expire the checkouts they walked away from.

    Return the wall seconds the baskets took (their expiry included) and those of their 催付.
    """
    started = time.perf_counter()
    basket_at = clock()
    step = WAVE_SPAN_S / max(1, len(baskets))
    line = iter(baskets)  # a fixed number of doors, each taking the next shopper in line

    async def door() -> None:
        for shopper in line:
            await shop_basket(shop, shopper)
            clock.advance(step)
            on_progress()

    await asyncio.gather(*(door() for _ in range(min(len(baskets), concurrency * SHOPPERS_PER_WORKER))))
    basket_s = time.perf_counter() - started
    reminding_s = _remind_unpaid(sender, clock, until=basket_at + WAVE_SPAN_S + PAYMENT_WINDOW_S)
    clock.set(basket_at + WAVE_SPAN_S + PAYMENT_WINDOW_S + 1)  # the walked-away checkouts expire
    started = time.perf_counter()
    await shop.expire()
    return basket_s + time.perf_counter() - started, reminding_s


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
