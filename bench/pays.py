"""Pays on the embedded default: one `pay` per request from a crowd of threads, against `pay_many`
batches of 64 (as the HTTP route's and the demo's `Till` runs them), each on a fresh SQLite file.

Every run places the same orders first (untimed), then pays each once. Throughput is pays per wall
second; the row also gives the process CPU per pay (`process_time`, every thread), the figure that
decides how many pays one worker can take. The check: every order PAID, exactly one charge each in
the payments journal, and the audit clean (charges − refunds == what each order says).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.report import Result
from bench.workload import Check, Request, Run
from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.demo.campaign import SALE_DAY, create_campaign
from flashsale.domain.orders import Order, OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.services.orders import Buy
from flashsale.services.settlement import PayRequest

Step = tuple[str, Callable[[], Result]]
BATCH = 64
THREADS = 8
SCENARIO = "pays"


def steps(*, requests: int) -> list[Step]:
    """Pay `requests` orders one by one from THREADS threads, then (afresh) in pay_many batches."""
    return [
        ("pay, one by one", lambda: _run(requests, batched=False)),
        ("pay_many", lambda: _run(requests, batched=True)),
    ]


def _run(requests: int, *, batched: bool) -> Result:
    with tempfile.TemporaryDirectory(prefix="flashsale-bench-pays-") as folder:
        clock = ManualClock(SALE_DAY.timestamp())
        platform = build(Settings(data_dir=Path(folder), database_url=None, backend="memory"), clock=clock)
        try:
            orders = _placed(platform, clock, requests)
            cpu, started = time.process_time(), time.perf_counter()
            latencies = _pay_many(platform, orders) if batched else _pay_each(platform, orders)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            check, paid = _check(platform, orders)
        finally:
            platform.close()
    how = (
        f"1 thread, pay_many × {BATCH}" if batched else f"{THREADS} threads, 1 pay/request"
    ) + f"; {cpu / requests * 1e6:,.0f} µs of CPU per pay"
    engine = "embedded (SQLite + in-process ledger), " + ("pay_many" if batched else "pay")
    run = Run(seconds, latencies, paid, requests)
    return Result(engine, SCENARIO, "pays/s", run, check, how)


def _placed(platform: Platform, clock: ManualClock, count: int) -> list[Order]:
    """Open the demo campaign's first session and place `count` orders of its case, one per shopper."""
    campaign = create_campaign(platform.catalog, quota_scale=max(1.0, count / 1_000))
    clock.set(campaign.session_opens_at[0] + 1)
    case = campaign.items[2].id  # the phone case: the largest quota
    orders: list[Order] = []
    for start in range(0, count, BATCH):
        cmds = [Buy(f"p{n}", case, 1, f"k{n}") for n in range(start, min(count, start + BATCH))]
        orders += [p.order for p in platform.orders.buy_many(cmds) if not isinstance(p, Exception)]
    if len(orders) != count:
        raise RuntimeError(f"placed {len(orders)} orders of {count}: the campaign's quota is too small")
    return orders


def _pay_each(platform: Platform, orders: Sequence[Order]) -> list[int]:
    def pay(order: Order) -> int:
        started = time.perf_counter_ns()
        platform.orders.pay(order.id, order.user_id)
        return time.perf_counter_ns() - started

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(pay, orders))


def _pay_many(platform: Platform, orders: Sequence[Order]) -> list[int]:
    latencies = []
    for start in range(0, len(orders), BATCH):
        batch = [PayRequest(o.id, o.user_id) for o in orders[start : start + BATCH]]
        began = time.perf_counter_ns()
        answers = platform.orders.payments.pay_many(batch)
        latencies.append(time.perf_counter_ns() - began)
        failed = [a for a in answers if isinstance(a, Exception)]
        if failed:
            raise failed[0]
    return latencies


def _check(platform: Platform, orders: Sequence[Order]) -> tuple[Check, list[Request]]:
    """The check, and the orders found PAID (as the requests that were granted a payment)."""
    paid = [
        Request(o.item_id, o.user_id, o.request_id)
        for o in orders
        if platform.orders.get(o.id).status is OrderStatus.PAID
    ]
    audit = audit_payments(platform.deps.sessions)
    verdict = "clean" if audit.clean else "NOT clean"
    detail = f"{len(paid):,} of {len(orders):,} PAID; payments audit {verdict}"
    return Check(len(paid) == len(orders) and audit.clean, detail), paid
