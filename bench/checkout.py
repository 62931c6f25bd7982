"""Cart checkout over HTTP on the embedded default, beside the flash buy path in the same run.

Each shopper of the crowd puts one unit of each of three items in the cart (`POST /cart/items`
three times) and checks out (`POST /checkouts`): a journey of four requests on one connection,
timed as a whole. Half the shoppers can be served (each item's quota is half the shoppers), so
checkouts are placed until an item sells out and refused (409, nothing held) afterwards. The
flash buy path (`POST /purchases`, the read-flood suite's quiet crowd) runs first at the same
connections on a fresh server, and the checkout row gives its rate against it.

The check rebuilds the ledger from the stored orders: every item is conserved, and each item's
held units equal the placed checkouts (201s): no checkout holds some of its lines.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.http import rebuilt_levels, run_loadgen, uvicorn
from bench.read_flood import SERVING_APP, ReadFloodSuite
from bench.report import Result, Skipped
from bench.workload import TRIES_PER_USER, Check, Request, Run, Shape
from flashsale.bootstrap import build
from flashsale.config import Settings

CONNECTIONS = 16
LINES = 3
SCENARIO = "cart checkout"
ENGINE = "HTTP cart checkout, embedded (SQLite + in-process ledger)"
BUY_ENGINE = "HTTP buy path, embedded (SQLite + in-process ledger), flash purchase"


class CheckoutSuite:
    """The flash buy path, then the three-line checkout journey, at the same connections."""

    def __init__(self, *, requests: int) -> None:
        self.requests = requests
        self.buys = ReadFloodSuite(requests=requests)
        self.buy_rate: float | None = None

    def buy_step(self) -> Result:
        run, check, _ = self.buys._run(None, CONNECTIONS)
        self.buy_rate = run.decisions / run.seconds
        how = f"1 worker, {CONNECTIONS} conns, POST /purchases"
        return Result(BUY_ENGINE, SCENARIO, "req/s", run, check, how)

    def checkout_step(self) -> Result:
        shoppers = -(-self.requests // TRIES_PER_USER)
        with tempfile.TemporaryDirectory(prefix="flashsale-bench-checkout-") as tmp:
            workdir = Path(tmp)
            settings = self.buys._settings(workdir)
            item_ids = _seed(settings, quota=shoppers // 2)
            env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
            env |= {f"FLASHSALE_{k.upper()}": v for k, v in settings.items()}
            log = workdir / "api.log"
            with uvicorn(SERVING_APP, env, log, factory=True, workers=1) as port:
                shape, secret = Shape(self.requests, 1), settings["jwt_secret"]
                seen = run_loadgen(
                    port, shape, item_ids, secret, workdir, log, connections=CONNECTIONS, checkout=True
                )
            statuses = Counter(seen["statuses"])
            placed = statuses.get("201", 0)
            run = Run(
                seen["seconds"],
                seen["latencies_ns"],
                [Request(1, f"u{i}", f"checkout-{i}") for i in seen["granted"]],
                shoppers,
            )
            check = _check(settings, item_ids, quota=shoppers // 2, placed=placed, statuses=statuses)
        how = f"1 worker, {CONNECTIONS} conns, per shopper {LINES} × POST /cart/items + POST /checkouts"
        if self.buy_rate:
            how += (
                f"; checkouts/s = {run.decisions / run.seconds / self.buy_rate:.0%} of the purchases/s above"
            )
        return Result(ENGINE, SCENARIO, "checkouts/s", run, check, how)


def _seed(settings: dict[str, str], *, quota: int) -> list[int]:
    """One open session with a flash item and two regular ones, `quota` units each; their ids."""
    platform = build(Settings(_env_file=None, **settings))
    try:
        cat, now = platform.catalog, datetime.now(UTC)
        campaign = cat.create_campaign(
            name="bench", theme="bench", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=2)
        )
        (session,) = cat.create_sessions(
            campaign.id, [("open", now - timedelta(minutes=1), now + timedelta(hours=6))]
        )
        ids = []
        for n, regular in enumerate((False, True, True)):
            product = cat.create_product(
                sku=f"CART-{n}", name=f"cart item {n}", list_price_cents=10_000, stock=quota
            )
            item = cat.create_item(
                session_id=session.id,
                product_id=product.id,
                flash_price_cents=6_000 if not regular else 10_000,
                quota=quota,
                per_user_limit=2,
                regular=regular,
            )
            ids.append(item.id)
        return ids
    finally:
        platform.close()


def _check(
    settings: dict[str, str], item_ids: list[int], *, quota: int, placed: int, statuses: Counter[str]
) -> Check:
    levels = rebuilt_levels(settings, item_ids)
    problems = [f"unexpected statuses {dict(statuses)}"] if set(statuses) - {"201", "409"} else []
    for level in levels:
        if level.available + level.held + level.sold != level.quota or level.quota != quota:
            problems.append(f"item {level.item_id} not conserved: {level}")
        if level.held + level.sold != placed:
            problems.append(
                f"item {level.item_id}: {level.held + level.sold} units held for {placed} checkouts"
            )
    detail = f"{placed} checkouts × {LINES} lines; every item conserved, held by them only; {dict(statuses)}"
    return Check(not problems, "; ".join(problems) or detail)


def steps(*, requests: int) -> list[tuple[str, Callable[[], Result | Skipped]]]:
    """The flash buy path, then the checkout journey, on fresh servers at the same connections."""
    suite = CheckoutSuite(requests=requests)
    return [("checkout / flash buy path", suite.buy_step), ("checkout / 3-line cart", suite.checkout_step)]
