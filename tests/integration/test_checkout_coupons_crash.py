"""kill -9 while shoppers check out with coupons: the store rebuilds coupons that agree with checkouts.

A child process (crash_coupon_shopper.py) claims coupons and checks out, pays, cancels, refunds and
expires on a SQLite file; the parent SIGKILLs it at a random moment, rebuilds the platform on the
same file (the coupon ledger is rebuilt from the stored coupons) and checks, several times: no
coupon is redeemed by a checkout that was refused or whose orders all ended once the sweep ran, every
placed checkout with a live order keeps its coupons, the budget is never overspent, and money nets.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.domain.coupons import CouponKind, CouponState, CouponTemplate, CouponWave
from flashsale.domain.orders import OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.services.checkout_coupons import ENDED, STALE_CHECKOUT_S
from flashsale.store.tables import CampaignRow, CheckoutCouponRow, CheckoutLineRow, CheckoutRow, OrderRow
from tests.factories import stress_size
from tests.integration import crash_coupon_shopper
from tests.integration.ledger_store_checks import assert_store_matches_ledger

pytestmark = pytest.mark.stress

KILLS = stress_size(3, 15)
LIMIT = 50
BUDGET = 20 * 1_000  # twenty redemptions of 满100减10
CHILD = Path(crash_coupon_shopper.__file__)


def set_up(data_dir: Path) -> tuple[int, list[int], int]:
    """A long open session with two items that take coupons, and a coupon wave; (wave, items, template)."""
    now = time.time()
    opens = datetime.fromtimestamp(now, UTC) - timedelta(minutes=1)
    platform = build(crash_coupon_shopper.settings_for(data_dir), clock=ManualClock(now))
    try:
        cat = platform.catalog
        campaign = cat.create_campaign(
            name="crash",
            theme="crash",
            starts_at=opens - timedelta(days=1),
            ends_at=opens + timedelta(days=9),
        )
        session = cat.create_session(
            campaign_id=campaign.id, name="long", starts_at=opens, ends_at=opens + timedelta(days=8)
        )
        items = []
        for n, cents in enumerate((6_000, 4_000)):
            product = cat.create_product(sku=f"C{n}", name=f"item {n}", list_price_cents=cents, stock=100_000)
            item = cat.create_item(
                session_id=session.id,
                product_id=product.id,
                flash_price_cents=cents,
                quota=100_000,
                per_user_limit=LIMIT,
                coupons_allowed=True,
            )
            items.append(item.id)
        template = platform.coupons.create_template(
            CouponTemplate(
                0,
                "满100减10",
                CouponKind.AMOUNT,
                opens,
                opens + timedelta(days=30),
                off_cents=1_000,
                min_spend_cents=10_000,
                budget_cents=BUDGET,
            )
        )
        wave = platform.coupons.create_wave(CouponWave(0, template.id, opens, 36, 3))
        # A one-second payment window, so expiries happen while the child runs on the real clock.
        with platform.deps.uow() as uow:
            uow.db.execute(update(CampaignRow).values(payment_window_s=1))
            uow.commit()
        return wave.wave.id, items, template.id
    finally:
        platform.close()


def run_and_kill(data_dir: Path, wave_id: int, items: list[int], seed: int, rng: random.Random) -> None:
    args = [sys.executable, str(CHILD), str(data_dir), str(wave_id), ",".join(map(str, items)), str(seed)]
    with (data_dir / f"child-{seed}.err").open("w+") as errors:
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert child.stdout is not None
        try:
            line = child.stdout.readline()
            time.sleep(rng.uniform(0.3, 1.2))
        finally:
            child.kill()
            child.wait(30)
            child.stdout.close()
        errors.seek(0)
        assert line == "ready\n", errors.read()
        assert child.returncode == -signal.SIGKILL, errors.read()


def assert_coupons_agree_with_checkouts(platform: Platform, template_id: int) -> int:
    """Every redeemed coupon names a placed or undecided checkout, and every placed checkout with a
    live order holds its coupons; the budget is within bounds. Return how many are redeemed."""
    with platform.deps.read() as r:
        status = dict(r.db.execute(select(CheckoutRow.id, CheckoutRow.status)).all())
        journal = r.db.execute(select(CheckoutCouponRow.checkout_id, CheckoutCouponRow.coupon_id)).all()
        lines = r.db.execute(
            select(CheckoutLineRow.checkout_id, OrderRow.status).outerjoin(
                OrderRow, OrderRow.id == CheckoutLineRow.order_id
            )
        ).all()
    live = {checkout for checkout, order_status in lines if order_status not in ENDED}
    redeemed = 0
    for checkout_id, coupon_id in journal:
        coupon = platform.coupons.ledger.get(coupon_id)
        assert coupon is not None
        if status[checkout_id] == "PLACED" and checkout_id in live:
            assert (coupon.state, coupon.order_id) == (CouponState.REDEEMED, checkout_id), checkout_id
        if coupon.state is CouponState.REDEEMED and coupon.order_id == checkout_id:
            redeemed += 1
            assert status[checkout_id] in ("PLACED", "PENDING"), (checkout_id, status[checkout_id])
    level = platform.coupons.budget(template_id)
    assert 0 <= level.spent_cents <= BUDGET
    assert level.spent_cents == 1_000 * redeemed
    return redeemed


def test_after_each_kill_coupons_agree_with_checkouts_and_the_sweep_gives_back_the_rest(
    tmp_path: Path,
) -> None:
    wave_id, items, template_id = set_up(tmp_path)
    rng = random.Random(2027)
    used = 0
    for seed in range(KILLS):
        run_and_kill(tmp_path, wave_id, items, seed, rng)

        clock = ManualClock(time.time())
        platform = build(crash_coupon_shopper.settings_for(tmp_path), clock=clock, migrate=False)
        try:
            used = max(used, assert_coupons_agree_with_checkouts(platform, template_id))
            assert audit_payments(platform.deps.sessions).clean
            clock.advance(STALE_CHECKOUT_S + 2)  # every hold is past its window; undecided checkouts stale
            while platform.orders.expire_due():
                pass
            platform.checkout_coupons.sweep()
            assert_coupons_agree_with_checkouts(platform, template_id)
            with platform.deps.read() as r:
                assert "PENDING" not in set(r.db.scalars(select(CheckoutRow.status)))
                unpaid = r.db.scalar(select(OrderRow.id).where(OrderRow.status == OrderStatus.UNPAID.value))
            assert unpaid is None
            for item_id in items:
                assert_store_matches_ledger(platform, item_id, limit=LIMIT)
            assert audit_payments(platform.deps.sessions).clean
        finally:
            platform.close()
    assert used > 0  # the crowd did redeem coupons
