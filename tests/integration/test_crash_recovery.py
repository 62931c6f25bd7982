"""kill -9 in the middle of a sale: the store on disk must rebuild a ledger that agrees with it.

A child process (crash_shopper.py) buys, pays, cancels, refunds and expires orders in a tight loop
on a SQLite file; the parent SIGKILLs it at a random moment, then builds the platform again on the
same file (bootstrap.build restores the ledger from the stored orders) and checks it, several times.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.domain.campaign import MIN_PAYMENT_WINDOW_S
from flashsale.domain.draws import AwardStatus, EntitlementRule, EntitlementSource, Game, PrizeKind
from flashsale.domain.free_orders import WinStatus
from flashsale.domain.orders import OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.store.tables import CampaignRow, EventRow, ItemRow, OrderRow, PaymentRow
from tests.factories import open_sale, stress_size
from tests.integration import crash_shopper
from tests.integration.ledger_store_checks import assert_store_matches_ledger

pytestmark = pytest.mark.stress

KILLS = stress_size(4, 25)
QUOTA, LIMIT = 40, 2
CHILD = Path(crash_shopper.__file__)
BATCH_CHILD = CHILD.with_name("crash_batch_buyer.py")


def run_and_kill(data_dir: Path, item_id: int, seed: int, rng: random.Random) -> None:
    """Start the shopper, let it run for a random moment after it is ready, then SIGKILL it."""
    with (data_dir / f"child-{seed}.err").open("w+") as errors:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(data_dir), str(item_id), str(seed)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        assert child.stdout is not None
        try:
            line = child.stdout.readline()  # "ready", or "" if the child died first
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            child.kill()  # SIGKILL: the crash under test, and no child outlives a failing test
            child.wait(30)
            child.stdout.close()
        errors.seek(0)
        assert line == "ready\n", errors.read()
        assert child.returncode == -signal.SIGKILL, errors.read()


def test_after_each_kill_the_rebuilt_ledger_agrees_with_the_stored_orders(tmp_path: Path) -> None:
    settings = crash_shopper.settings_for(tmp_path)
    now = time.time()
    opens_at = datetime.fromtimestamp(now, UTC) - timedelta(minutes=1)
    setup = build(settings, clock=ManualClock(now))
    item_id = open_sale(
        setup,
        opens_at=opens_at,
        hours=2,
        quota=QUOTA,
        per_user_limit=LIMIT,
        payment_window_s=MIN_PAYMENT_WINDOW_S,
    )
    # A one-second payment window, so expiries happen while the shopper runs on the real clock. An
    # operator may not set one that short, so it is written into the row; every platform built
    # below reads the ledger's hold lifetime from there.
    with setup.deps.uow() as uow:
        uow.db.execute(update(CampaignRow).values(payment_window_s=1))
        uow.commit()
    setup.close()
    rng = random.Random(2026)

    for seed in range(KILLS):
        run_and_kill(tmp_path, item_id, seed, rng)

        clock = ManualClock(time.time())
        platform = build(settings, clock=clock, migrate=False)  # restores the ledger from the stored orders
        try:
            assert_store_matches_ledger(platform, item_id, limit=LIMIT)
            clock.advance(1)  # past every payment window the child opened
            platform.orders.expire_due()
            assert_store_matches_ledger(platform, item_id, limit=LIMIT)
            with platform.deps.uow() as uow:
                statuses = dict(
                    uow.db.execute(select(OrderRow.status, func.count()).group_by(OrderRow.status)).all()
                )
        finally:
            platform.close()
        assert OrderStatus.UNPAID not in statuses  # expire_due wrote every lapsed hold down

    assert statuses.get(OrderStatus.PAID, 0) > 0 and sum(statuses.values()) > KILLS  # the crowd did shop


BATCH_KILLS = stress_size(3, 15)
PAY_KILLS = stress_size(3, 15)
PAYER = CHILD.with_name("crash_payer.py")


def open_long_sale(tmp_path: Path) -> int:
    """Put one item on sale from a minute ago, with a quota no child exhausts; return its id."""
    now = time.time()
    setup = build(crash_shopper.settings_for(tmp_path), clock=ManualClock(now))
    try:
        return open_sale(
            setup,
            opens_at=datetime.fromtimestamp(now, UTC) - timedelta(minutes=1),
            quota=1_000_000,
            per_user_limit=1,
            payment_window_s=15 * 60,
        )
    finally:
        setup.close()


def told_before_kill(args: list[str], pause_s: float) -> set[str]:
    """Run a child until `pause_s` after its first acknowledgement, SIGKILL it, and return the ids it
    printed whole. Waiting for the first one (up to a minute) makes the kill land mid-run however
    slowly a loaded machine starts the child's work."""
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with subprocess.Popen([sys.executable, *args], text=True, **pipes) as child:  # closes the pipes, waits
        assert child.stdout is not None and child.stderr is not None
        assert child.stdout.readline() == "ready\n"
        with ThreadPoolExecutor(1) as reader:
            first = reader.submit(child.stdout.readline)
            with suppress(TimeoutError):
                first.result(timeout=60)
            time.sleep(pause_s)
            child.kill()
        # Through the file objects, not communicate(): they hold what readline buffered past its line.
        out, err = child.stdout.read(), child.stderr.read()
    assert child.returncode == -signal.SIGKILL, err
    told = set((first.result() + out).split("\n")[:-1])  # whole lines only: the kill may cut the last
    assert told, f"the child acknowledged nothing before it was killed: {err[-2000:]}"
    return told


def test_a_kill_during_large_group_commits_loses_no_acknowledged_order(tmp_path: Path) -> None:
    """Every order a batch was answered with is on disk after kill -9, and nothing else is held."""
    item_id = open_long_sale(tmp_path)
    rng = random.Random(7)
    acknowledged: set[str] = set()
    for _ in range(BATCH_KILLS):
        args = [str(BATCH_CHILD), str(tmp_path), str(item_id), "500"]
        acknowledged |= told_before_kill(args, rng.uniform(0.3, 1.2))
        platform = build(crash_shopper.settings_for(tmp_path), clock=ManualClock(time.time()), migrate=False)
        try:
            with platform.deps.uow() as uow:
                stored = set(uow.db.scalars(select(OrderRow.id).where(OrderRow.item_id == item_id)))
            assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged orders lost"
            level = assert_store_matches_ledger(platform, item_id, limit=1)
            assert level.held == len(stored)  # every stored order is a live hold, nothing more
        finally:
            platform.close()


@pytest.mark.parametrize(("orders", "batch"), [(400, 1), (3000, 32)], ids=["one-by-one", "pay_many"])
def test_a_kill_during_group_committed_payments_keeps_every_acknowledged_payment(
    tmp_path: Path, orders: int, batch: int
) -> None:
    """Pays from many threads share commits (one by one, or batched by `pay_many`); after kill -9 each
    pay a shopper was told of is on disk, its money nets (one charge, no refund), and the rebuilt
    ledger agrees with the store."""
    item_id = open_long_sale(tmp_path)
    rng = random.Random(11)
    acknowledged: set[str] = set()
    for _ in range(PAY_KILLS):
        args = [str(PAYER), str(tmp_path), str(item_id), str(orders), "8", str(batch)]
        acknowledged |= told_before_kill(args, rng.uniform(0.2, 0.8))
        platform = build(crash_shopper.settings_for(tmp_path), clock=ManualClock(time.time()), migrate=False)
        try:
            paid = _paid_ids(platform, item_id)
            assert acknowledged <= paid, f"{len(acknowledged - paid)} acknowledged payments lost"
            assert audit_payments(platform.deps.sessions).clean  # recovery finished what the kill cut
            assert_store_matches_ledger(platform, item_id, limit=1)
        finally:
            platform.close()


def _paid_ids(platform: Platform, item_id: int) -> set[str]:
    paid = OrderRow.status == OrderStatus.PAID.value
    with platform.deps.read() as r:
        return set(r.db.scalars(select(OrderRow.id).where(OrderRow.item_id == item_id, paid)))


REBATER = CHILD.with_name("crash_rebater.py")


def test_a_kill_while_a_free_order_is_rebated_is_finished_by_recovery_once(tmp_path: Path) -> None:
    """The payment and its pending rebate commit together; kill -9 before the rebate is written done
    leaves it pending, and the next start sends it, once, however often the platform starts again."""
    item_id = open_long_sale(tmp_path)
    settings = crash_shopper.settings_for(tmp_path)
    setup = build(settings, clock=ManualClock(time.time()), migrate=False)
    try:
        with setup.deps.read() as r:
            session_id = r.db.scalar(select(ItemRow.session_id).where(ItemRow.id == item_id))
        assert session_id is not None
        rule = setup.free_orders.create_rule(name="first free", session_id=session_id, first_n=1)
    finally:
        setup.close()
    child = subprocess.Popen(
        [sys.executable, str(REBATER), str(tmp_path), str(item_id)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        lines = [child.stdout.readline(), child.stdout.readline()]
    finally:
        child.kill()
        _, err = child.communicate(timeout=30)
    assert lines == ["ready\n", "rebating\n"], err[-2000:]
    assert child.returncode == -signal.SIGKILL, err

    for _start in range(2):  # the first start finishes the rebate; the second finds nothing to do
        platform = build(settings, clock=ManualClock(time.time()), migrate=False)  # runs recover()
        try:
            (win,) = platform.free_orders.winners(rule.id)
            assert win.status is WinStatus.REBATED
            with platform.deps.read() as r:
                rebates = r.db.execute(
                    select(PaymentRow.status, PaymentRow.amount_cents).where(PaymentRow.kind == "rebate")
                ).all()
                rebated_events = r.db.scalar(
                    select(func.count()).select_from(EventRow).where(EventRow.kind == "OrderRebated")
                )
            assert [tuple(row) for row in rebates] == [("done", win.rebate_cents)]
            assert rebated_events == 1
            assert audit_payments(platform.deps.sessions).clean
        finally:
            platform.close()


REDEEMER = CHILD.with_name("crash_redeemer.py")
REDEEM_KILLS = stress_size(3, 15)
WINNERS = 200


def open_prize_draw(tmp_path: Path) -> int:
    """A mug on sale as a regular item, and WINNERS shoppers w0.. who each won one; the item's id."""
    now = time.time()
    setup = build(crash_shopper.settings_for(tmp_path), clock=ManualClock(now))
    try:
        cat, opens = setup.catalog, datetime.fromtimestamp(now, UTC) - timedelta(minutes=1)
        campaign = cat.create_campaign(
            name="Prizes", theme="draws", starts_at=opens - timedelta(days=1),
            ends_at=opens + timedelta(days=1), payment_window_s=15 * 60,
        )  # fmt: skip
        session = cat.create_session(
            campaign_id=campaign.id, name="all day", starts_at=opens, ends_at=opens + timedelta(hours=2)
        )
        mug = cat.create_product(sku="MUG-K", name="Mug", list_price_cents=9_900, stock=WINNERS)
        item = cat.create_item(
            session_id=session.id, product_id=mug.id, flash_price_cents=9_900, quota=WINNERS, regular=True
        )
        free = EntitlementRule(EntitlementSource.FREE_DAILY)
        pool = setup.draws.create_pool(
            name="Mugs", game=Game.LOTTERY, thanks_weight=0, utc_offset_min=0, rules=[free]
        )
        setup.draws.add_prize(
            pool.id, name="Mug", kind=PrizeKind.GOODS, weight=1, stock=WINNERS, product_id=mug.id
        )
        for n in range(WINNERS):
            setup.draws.free_daily(pool.id, f"w{n}")
            assert setup.draws.draw(pool.id, f"w{n}", "spin").prize is not None
        return item.id
    finally:
        setup.close()


def assert_one_delivery_per_award(platform: Platform, item_id: int, *, all_redeemed: bool) -> set[str]:
    """Each winner has at most one order that may deliver (one PAID if redeemed); return the redeemed."""
    redeemed = set()
    for n in range(WINNERS):
        ((award, _),) = platform.draws.awards(f"w{n}")
        live = [o for o in platform.orders.list_for_user(f"w{n}") if o.status is not OrderStatus.EXPIRED]
        assert len(live) <= 1, live
        assert all(o.item_id == item_id and o.total_cents == 0 for o in live)
        if award.status is AwardStatus.REDEEMED:
            assert [o.id for o in live] == [award.order_id] and live[0].status is OrderStatus.PAID
            redeemed.add(award.id)
        assert award.status is AwardStatus.REDEEMED or not all_redeemed
    assert audit_payments(platform.deps.sessions).clean  # recovery finished what the kill cut
    assert_store_matches_ledger(platform, item_id, limit=1)
    return redeemed


def test_a_kill_while_goods_prizes_are_redeemed_delivers_each_once_after_a_retry(tmp_path: Path) -> None:
    """Redeeming places, settles for 0 cents, then marks the award; after kill -9 at any of those steps,
    no award has two orders, each redeemed award its PAID one, and a retry of every award finishes
    with exactly one unit sold per winner."""
    item_id = open_prize_draw(tmp_path)
    settings, rng = crash_shopper.settings_for(tmp_path), random.Random(16)
    told: set[str] = set()
    for _ in range(REDEEM_KILLS):
        told |= told_before_kill([str(REDEEMER), str(tmp_path), str(WINNERS), "4"], rng.uniform(0.2, 0.8))
        platform = build(settings, clock=ManualClock(time.time()), migrate=False)
        try:
            assert told <= assert_one_delivery_per_award(platform, item_id, all_redeemed=False)
        finally:
            platform.close()

    platform = build(settings, clock=ManualClock(time.time()), migrate=False)
    try:
        for n in range(WINNERS):  # the shoppers' retries
            ((award, _),) = platform.draws.awards(f"w{n}")
            if award.status is AwardStatus.AWARDED:
                platform.draws.redeem(award.id, f"w{n}")
        assert_one_delivery_per_award(platform, item_id, all_redeemed=True)
        level = platform.ledger.stock(item_id)
        assert (level.held, level.sold) == (0, WINNERS)
    finally:
        platform.close()
