"""Run the demo: build the embedded platform on simulated time, let the crowd loose, audit the result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvloop

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
from flashsale.demo.group_deal import GroupDoor, GroupPlan, audit_groups, create_deal, plan_groups, play_group
from flashsale.demo.lucky_draw import (
    DrawDoor,
    Drawer,
    audit_draw,
    create_draw,
    grant_paid_orders,
    plan_drawers,
    play_drawer,
)
from flashsale.demo.promotions import audit_promotions
from flashsale.demo.report import DemoReport, audit_items
from flashsale.demo.shop import Shop, check_out, click_early, decide
from flashsale.domain.orders import Order
from flashsale.heap import sale_heap
from flashsale.messaging.dispatch import Dispatcher
from flashsale.services.audit import audit_payments
from flashsale.services.goals import Goals
from flashsale.services.review import load_review

EARLY_LEAD_S = 30.0  # the early clickers click this long before the open
WAVE_SPAN_S = 60.0  # simulated time a wave of shoppers takes, spread evenly over its shoppers
CHECKOUT_SPAN_S = 10.0  # simulated time a wave's pays and cancels take, inside its payment window
SHOPPERS_PER_WORKER = 128  # shoppers inside the shop at once, per worker thread: batches fill up
GROUP_SPAN_S = 30.0  # simulated time the groups take to open, inside what is left of the session

T = TypeVar("T")
Q = TypeVar("Q")  # what stands in a line (`_in_line`)


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
        draw = create_draw(platform.draws, platform, campaign, quota_scale=options.quota_scale)
        deal = create_deal(platform.groups, campaign)
        groups = plan_groups(options.shoppers, seed=options.seed)
        # The crowd allocates like a server under load: the collector tuned as in a server's worker.
        with sale_heap(), ThreadPoolExecutor(options.concurrency, thread_name_prefix="shopper") as pool:
            shop = Shop(platform.orders, pool)
            wave_id = campaign.promotions.coupon_wave_id
            basket_shop = BasketShop(platform.coupons, platform.carts, platform.orders, pool, wave_id=wave_id)
            group_door = GroupDoor(platform.groups, pool, deal)
            sender = platform.message_dispatcher()
            pace = _run(
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
                    group_door=group_door,
                    groups=groups,
                )
            )
            # After the sale: the sweeper grants the draws of the paid orders, then the drawers draw.
            started = time.perf_counter()
            grant_paid_orders(platform)
            draw_door = DrawDoor(platform.draws, pool, draw)
            _run(_draw_wave(draw_door, plan_drawers(platform, draw, seed=options.seed), options.concurrency))
            draw_s = time.perf_counter() - started
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
            crowd_seconds=pace.decide_s,
            crowd_cpu_seconds=pace.decide_cpu_s,
            decisions=pace.decisions,
            decision_orders=pace.orders,
            checkout_seconds=pace.checkout_s,
            money_nets=payments.clean,
            review_path=review_path,
            messages=platform.messaging.counts(),
            messages_seconds=pace.sending_s,
            promotions=audit_promotions(
                platform, campaign, basket_shop.tally, rebated_cents=payments.rebated_cents
            ),
            basket_seconds=pace.basket_s,
            groups=audit_groups(platform, campaign, deal, group_door.tally),
            group_seconds=pace.group_s,
            draw=audit_draw(platform, draw, draw_door.tally),
            draw_seconds=draw_s,
        )
    finally:
        platform.close()


@dataclass
class _Pace:
    """Wall seconds of each phase of the sale, and what the flash crowd did inside its decisions."""

    decide_s: float = 0.0  # the crowd's clicks: early, rush and late waves
    decide_cpu_s: float = 0.0  # the process's CPU time in them (every thread): steadier on a busy box
    decisions: int = 0  # reserve calls answered in them
    orders: int = 0  # new orders they made
    checkout_s: float = 0.0  # the crowd's pays and cancels, and the expiry sweeps
    sending_s: float = 0.0  # 催付
    basket_s: float = 0.0
    group_s: float = 0.0


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
    group_door: GroupDoor,
    groups: Sequence[GroupPlan],
) -> _Pace:
    """Run both sessions, each phase timed apart (see `_Pace`).

    As in a real flash sale, the clicks come in a burst at the open and the pays follow over the
    payment window: a wave's shoppers click first (the decisions, timed as the flash pace), then
    check out (pay, cancel or walk away), then the unpaid holds expire.
    """
    pace = _Pace()
    doors = concurrency * SHOPPERS_PER_WORKER

    async def decide_all(shoppers: Sequence[Shopper], *, early: bool = False) -> list[tuple[Shopper, Order]]:
        calls, orders = shop.tally.reserve_calls, shop.tally.new_orders
        started, cpu = time.perf_counter(), time.process_time()
        taken: list[tuple[Shopper, Order]] = []
        if early:
            await asyncio.gather(*(click_early(shop, s) for s in shoppers if s.early_clicks))
        else:
            step = WAVE_SPAN_S / max(1, len(shoppers))

            async def click(shopper: Shopper) -> None:
                order = await decide(shop, shopper)
                if order is not None:
                    taken.append((shopper, order))
                clock.advance(step)
                on_progress()

            await _in_line(shoppers, doors, click)
        pace.decide_s += time.perf_counter() - started
        pace.decide_cpu_s += time.process_time() - cpu
        pace.decisions += shop.tally.reserve_calls - calls
        pace.orders += shop.tally.new_orders - orders
        return taken

    async def check_out_all(taken: Sequence[tuple[Shopper, Order]]) -> None:
        started = time.perf_counter()
        step = CHECKOUT_SPAN_S / max(1, len(taken))

        async def pay_or_cancel(bought: tuple[Shopper, Order]) -> None:
            await check_out(shop, *bought)
            clock.advance(step)

        await _in_line(taken, doors, pay_or_cancel)
        pace.checkout_s += time.perf_counter() - started

    async def expire() -> None:
        started = time.perf_counter()
        await shop.expire()
        pace.checkout_s += time.perf_counter() - started

    for session, opens_at in enumerate(campaign.session_opens_at):
        rush = [s for s in crowd if s.item.spec.session == session and not s.late]
        late = [s for s in crowd if s.item.spec.session == session and s.late]
        clock.set(opens_at - EARLY_LEAD_S)
        await decide_all(rush, early=True)
        clock.set(opens_at)
        await check_out_all(await decide_all(rush))
        pace.sending_s += _remind_unpaid(sender, clock, until=opens_at + WAVE_SPAN_S + PAYMENT_WINDOW_S)
        # Past the payment window of every hold of the rush: the unpaid ones expire, units return.
        clock.set(opens_at + WAVE_SPAN_S + PAYMENT_WINDOW_S + 1)
        await expire()
        await check_out_all(await decide_all(late))
    # Still in the last session (its regular items' session): the basket shoppers, then the groups
    # (before the session ends), each timed apart; then the unpaid checkouts expire.
    basket_at = clock()
    pace.basket_s = await _basket_wave(basket_shop, baskets, clock, concurrency, on_progress)
    pace.group_s = await _group_wave(group_door, groups, clock, concurrency)
    pace.sending_s += _remind_unpaid(sender, clock, until=basket_at + WAVE_SPAN_S + PAYMENT_WINDOW_S)
    clock.set(
        max(clock(), basket_at + WAVE_SPAN_S + PAYMENT_WINDOW_S + 1)
    )  # the walked-away checkouts expire
    started = time.perf_counter()
    await basket_shop.expire()
    pace.basket_s += time.perf_counter() - started
    return pace


async def _basket_wave(
    shop: BasketShop,
    baskets: Sequence[BasketShopper],
    clock: ManualClock,
    concurrency: int,
    on_progress: Callable[[], None],
) -> float:
    """Let the basket shoppers in; return the wall seconds they took (their expiry comes later)."""
    started = time.perf_counter()
    step = WAVE_SPAN_S / max(1, len(baskets))

    async def visit(shopper: BasketShopper) -> None:
        await shop_basket(shop, shopper)
        clock.advance(step)
        on_progress()

    await _in_line(baskets, concurrency * SHOPPERS_PER_WORKER, visit)
    return time.perf_counter() - started


async def _group_wave(
    door: GroupDoor, groups: Sequence[GroupPlan], clock: ManualClock, concurrency: int
) -> float:
    """Open the groups (each one's joiners race for its seats), then settle the one that did not fill
    once its deadline passed, as the sweeper would. Return the wall seconds it all took."""
    started = time.perf_counter()
    step = GROUP_SPAN_S / max(1, len(groups))
    deadlines = []

    async def lead(plan: GroupPlan) -> None:
        deadline = await play_group(door, plan)
        if deadline is not None:
            deadlines.append(deadline)
        clock.advance(step)

    await _in_line(groups, concurrency, lead)
    if deadlines:
        clock.set(max(deadlines).timestamp() + 1)
    await door.settle_due()
    return time.perf_counter() - started


async def _draw_wave(door: DrawDoor, drawers: Sequence[Drawer], concurrency: int) -> None:
    """Let every shopper who was granted draws spend them, a fixed number of drawers at a time."""
    await _in_line(drawers, concurrency * SHOPPERS_PER_WORKER, lambda drawer: play_drawer(door, drawer))


async def _in_line(queue: Sequence[Q], doors: int, visit: Callable[[Q], Awaitable[object]]) -> None:
    """Visit each of `queue` in order, `doors` at a time, each door taking the next in line.

    Not a semaphore: its acquire scans every waiter, quadratic in a crowd of thousands on 3.11.
    """
    line = iter(queue)

    async def door() -> None:
        for item in line:
            await visit(item)

    await asyncio.gather(*(door() for _ in range(min(len(queue), doors))))


def _run(main: Coroutine[Any, Any, T]) -> T:
    """Run a phase of the demo on uvloop, the event loop `flashsale serve` runs on."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


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
