"""`flashsale reconcile` finds and repairs drift between the ledger and the stored orders."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.domain.orders import OrderStatus
from flashsale.services.orders import Buy
from flashsale.services.reconcile import Reconciler, render_report
from flashsale.store import repositories as repo
from tests.conftest import Sale
from tests.engines import drain_orders
from tests.factories import open_sale
from tests.integration.redis_support import REDIS_URL, with_query

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py


def forget_everything(platform: Platform) -> None:
    """What a ledger that lost its data looks like: it knows the items but no hold."""
    with platform.deps.uow() as uow:
        platform.ledger.restore(repo.all_item_terms(uow.db), [])


def seed_drift(platform: Platform, sale: Sale, clock: ManualClock) -> dict[str, str]:
    """Phone: quota 10, limit 1. Four kinds of drift, the ids of the orders involved."""
    clock.set(clock() + 1)  # the 10:00 session is open
    orders = platform.orders
    paid = orders.buy(Buy("ann", sale.phone_id, 1, "a")).order
    orders.pay(paid.id, "ann")
    unpaid = orders.buy(Buy("bob", sale.phone_id, 1, "b")).order
    for n in range(8):
        orders.buy(Buy(f"filler{n}", sale.phone_id, 1, "f"))  # the phone is now sold out
    drain_orders(platform)
    forget_everything(platform)  # the ledger lost every hold (e.g. Redis restarted without its AOF)
    clock.advance(1)
    ann_again = orders.buy(Buy("ann", sale.phone_id, 1, "a2")).order  # ann over her limit of 1
    newcomer = orders.buy(Buy("cy", sale.phone_id, 1, "c")).order  # an 11th unit of a quota of 10
    drain_orders(platform)
    orders.write_behind = True  # the next order only reaches the ledger: its row was never written
    ledger_only = orders.buy(Buy("dee", sale.earbuds_id, 2, "d")).order
    orders.write_behind = platform.settings.backend == "redis"
    return {
        "paid": paid.id,
        "unpaid": unpaid.id,
        "ann_again": ann_again.id,
        "newcomer": newcomer.id,
        "ledger_only": ledger_only.id,
    }


def test_reconcile_reports_then_repairs_seeded_drift(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    ids = seed_drift(platform, sale, clock)
    reconciler = Reconciler(platform.orders)

    dry = reconciler.run(repair=False)
    kinds = dry.kinds()
    assert not dry.clean
    assert kinds["holds missing in ledger"] == 10  # ann's paid one, bob's and the fillers'
    assert kinds["orders missing in db"] == 1  # dee's
    assert platform.orders.find(ids["ledger_only"]) is not None  # reading it writes it down …
    assert reconciler.run(repair=False).kinds()["orders missing in db"] == 0  # … so it is no drift now

    fixed = reconciler.run(repair=True)

    assert all(d.clean for d in fixed.after)
    assert sorted(fixed.cancelled_to_fit) == sorted([ids["ann_again"], ids["newcomer"]])
    # The report names every acknowledged order the repair touched, and its shopper.
    taken = {(a.order_id, a.user_id, a.what) for a in fixed.taken_away}
    assert taken == {(ids["ann_again"], "ann", "cancelled"), (ids["newcomer"], "cy", "cancelled")}
    restored = {a.order_id for a in fixed.affected if a.what == "restored"}
    assert {ids["paid"], ids["unpaid"]} <= restored and len(restored) == 10  # the holds the ledger lost
    rows = list(csv.DictReader(io.StringIO(render_report(fixed, "csv"))))
    assert {(r["order_id"], r["user_id"], r["what"]) for r in rows} >= taken and len(rows) == 12
    assert json.loads(render_report(fixed, "json"))["taken_away"] == 2
    phone = platform.ledger.stock(sale.phone_id)
    assert (phone.sold, phone.held, phone.available) == (1, 9, 0)
    assert platform.orders.get(ids["paid"]).status is OrderStatus.PAID
    assert platform.orders.get(ids["ann_again"]).status is OrderStatus.CANCELLED
    assert platform.ledger.stock(sale.earbuds_id).held == 2
    assert platform.orders.buy(Buy("eve", sale.earbuds_id, 1, "e")).order.status is OrderStatus.UNPAID
    drain_orders(platform)
    assert reconciler.run(repair=False).clean


def test_a_hold_whose_order_never_reached_the_database_is_written_down(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    clock.set(clock() + 1)
    platform.orders.write_behind = True
    order = platform.orders.buy(Buy("dee", sale.earbuds_id, 2, "d")).order

    report = Reconciler(platform.orders).run(repair=True)

    assert report.items[1].orders_missing_in_db == [order.id]
    assert all(d.clean for d in report.after)
    with platform.deps.uow() as uow:
        assert [h.hold_id for h in repo.all_holds(uow.db)] == [order.id]


@pytest.mark.redis
def test_the_reconcile_command_repairs_a_redis_ledger_that_lost_its_holds(
    forgetful_redis_shop: Settings,
) -> None:
    """The command a user runs after a Redis restart: drift in, exit 0 and agreement out."""
    env = {
        **os.environ,
        "FLASHSALE_DATA_DIR": str(forgetful_redis_shop.data_dir),
        "FLASHSALE_BACKEND": "redis",
        "FLASHSALE_REDIS_URL": forgetful_redis_shop.redis_url,
    }
    run = [sys.executable, "-c", "from flashsale.cli.main import app; app()", "reconcile"]
    dry = subprocess.run([*run, "--dry-run"], env=env, capture_output=True, text=True, timeout=60)
    # A dry run writes nothing, not even the purchase stream: bob's order, still only in the stream, is
    # not seen yet; ann's paid order (stored when she paid) is.
    assert dry.returncode == 1 and "holds missing in ledger: 1" in dry.stdout
    fixed = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    again = subprocess.run([*run, "--dry-run"], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout


@pytest.fixture
def forgetful_redis_shop(settings: Settings) -> Iterator[Settings]:
    """A Redis-backed shop (real clock) with two stored orders that the ledger then forgets."""
    assert REDIS_URL is not None
    prefix = f"t-{uuid.uuid4().hex}"
    redis_settings = settings.model_copy(
        update={"backend": "redis", "redis_url": with_query(REDIS_URL, prefix=prefix)}
    )
    plat = build(redis_settings)
    client = plat.ledger.client  # type: ignore[attr-defined]
    try:
        opens_at = datetime.now(UTC) - timedelta(minutes=1)
        item_id = open_sale(
            plat, opens_at=opens_at, hours=0.5, quota=5, per_user_limit=2, payment_window_s=900
        )
        first = plat.orders.buy(Buy("ann", item_id, 2, "a")).order
        plat.orders.pay(first.id, "ann")
        plat.orders.buy(Buy("bob", item_id, 1, "b"))
        forget_everything(plat)
    finally:
        plat.close()
    yield redis_settings
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:  # the platform closed this client; the clean-up reconnected it, so close it again
        client.close()
        client.connection_pool.disconnect()
