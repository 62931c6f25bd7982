"""Cart checkout over HTTP on the embedded default, beside the flash buy path in the same run.

Each shopper of the crowd puts one unit of each of three items in the cart (`POST /cart/items`
three times) and checks out (`POST /checkouts`): a journey of four requests on one connection,
timed as a whole. Half the shoppers can be served (each item's quota is half the shoppers), so
checkouts are placed until an item sells out and refused (409, nothing held) afterwards. The
flash buy path (`POST /purchases`, the read-flood suite's quiet crowd) runs first at the same
connections on a fresh server, and the checkout row gives its rate against it.

The coupon row runs the same journey with a coupon: each shopper also claims one coupon of a
wave (`POST /coupons/claims`, 满150减10 on the two regular items) and checks out with it, so the
checkout prices it in, redeems it against the template's budget and journals it.

The check rebuilds the ledger from the stored orders: every item is conserved, and each item's
held units equal the placed checkouts (201s): no checkout holds some of its lines. With coupons,
the template's spend equals 10.00 per placed checkout, and no coupon is redeemed twice.
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
from flashsale.domain.coupons import CouponKind, CouponState, CouponTemplate, CouponWave
from flashsale.store import coupon_repository as coupon_repo

CONNECTIONS = 16
LINES = 3
SCENARIO = "cart checkout"
ENGINE = "HTTP cart checkout, embedded (SQLite + in-process ledger)"
COUPON_ENGINE = "HTTP cart checkout with a coupon, embedded (SQLite + in-process ledger)"
COUPON_OFF_CENTS = 1_000
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
        return self._journeys(coupon=False)

    def coupon_step(self) -> Result:
        return self._journeys(coupon=True)

    def _journeys(self, *, coupon: bool) -> Result:
        shoppers = -(-self.requests // TRIES_PER_USER)
        with tempfile.TemporaryDirectory(prefix="flashsale-bench-checkout-") as tmp:
            workdir = Path(tmp)
            settings = self.buys._settings(workdir)
            item_ids, wave = _seed(settings, quota=shoppers // 2, coupons=shoppers if coupon else 0)
            env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
            env |= {f"FLASHSALE_{k.upper()}": v for k, v in settings.items()}
            log = workdir / "api.log"
            with uvicorn(SERVING_APP, env, log, factory=True, workers=1) as (port, _):
                shape, secret = Shape(self.requests, 1), settings["jwt_secret"]
                seen = run_loadgen(
                    port,
                    shape,
                    item_ids,
                    secret,
                    workdir,
                    log,
                    connections=CONNECTIONS,
                    checkout=True,
                    coupon_wave=wave,
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
            if coupon:
                check = _check_coupons(settings, check, placed=placed)
        steps = LINES + 1 + coupon
        how = f"1 worker, {CONNECTIONS} conns, per shopper {LINES} × POST /cart/items"
        how += " + POST /coupons/claims + POST /checkouts with it" if coupon else " + POST /checkouts"
        rate = run.decisions / run.seconds
        how += f"; {rate * steps:,.0f} req/s over the journey's {steps} requests"
        if self.buy_rate:
            how += f"; checkouts/s = {rate / self.buy_rate:.0%} of the purchases/s above"
        return Result(COUPON_ENGINE if coupon else ENGINE, SCENARIO, "checkouts/s", run, check, how)


def _seed(settings: dict[str, str], *, quota: int, coupons: int = 0) -> tuple[list[int], int | None]:
    """One open session with a flash item and two regular ones, `quota` units each; their ids.

    With `coupons`, also a 满150减10 template (its budget covers every coupon) and a wave of that
    many coupons, one per shopper; its id.
    """
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
        wave_id = None
        if coupons:
            template = platform.coupons.create_template(
                CouponTemplate(
                    0,
                    "满150减10",
                    CouponKind.AMOUNT,
                    now - timedelta(hours=1),
                    now + timedelta(days=2),
                    off_cents=COUPON_OFF_CENTS,
                    min_spend_cents=15_000,
                    budget_cents=coupons * COUPON_OFF_CENTS,
                )
            )
            wave_id = platform.coupons.create_wave(
                CouponWave(0, template.id, now - timedelta(minutes=1), coupons, 1)
            ).wave.id
        return ids, wave_id
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


def _check_coupons(settings: dict[str, str], check: Check, *, placed: int) -> Check:
    """The budget spent is 10.00 per placed checkout, and each redeemed coupon names one checkout."""
    platform = build(Settings(_env_file=None, **settings), migrate=False)
    try:
        (_, level), *_ = platform.coupons.templates()
        with platform.deps.read() as r:
            coupons = coupon_repo.coupons_where(r.db)
    finally:
        platform.close()
    redeemed = [c for c in coupons if c.state is CouponState.REDEEMED]
    problems = [] if check.ok else [check.detail]
    if level.spent_cents != placed * COUPON_OFF_CENTS or len(redeemed) != placed:
        problems.append(
            f"{len(redeemed)} coupons redeemed, {level.spent_cents} cents spent for {placed} checkouts"
        )
    if len({c.order_id for c in redeemed}) != len(redeemed):
        problems.append("a checkout redeemed two coupons")
    detail = (
        f"{check.detail}; {len(redeemed)} coupons redeemed once each, {level.spent_cents} cents of budget"
    )
    return Check(not problems, "; ".join(problems) or detail)


def steps(*, requests: int) -> list[tuple[str, Callable[[], Result | Skipped]]]:
    """The flash buy path, then the checkout journey without and with a coupon, on fresh servers."""
    suite = CheckoutSuite(requests=requests)
    return [
        ("checkout / flash buy path", suite.buy_step),
        ("checkout / 3-line cart", suite.checkout_step),
        ("checkout / 3-line cart + coupon", suite.coupon_step),
    ]
