"""PostgreSQL goes away for 20 s in the middle of a sale on the scale-out stack (Redis ledger).

The buy path needs nothing from PostgreSQL: terms live in Redis and prices in memory, and the
order writer stores orders behind. So shoppers keep being served through the outage, and once
PostgreSQL is back every acknowledged purchase is stored, and nothing else: a purchase is either
acknowledged and recorded, or refused and not recorded. A payment needs the database: during the
outage it fails (the API answers 503) without charging, and succeeds when retried afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from flashsale.bootstrap import Platform, build
from flashsale.config import Settings
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import OrderStatus
from flashsale.services.audit import audit_payments
from flashsale.services.orders import Buy
from flashsale.store.tables import OrderRow
from tests.factories import open_sale
from tests.integration.ledger_store_checks import assert_store_matches_ledger
from tests.integration.redis_support import wait_until
from tests.integration.servers import OwnRedis, TcpOutage, fresh_postgres_database

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.redis_server]

OUTAGE_S = 20.0
QUOTA, LIMIT, SHOPPERS = 20_000, 2, 8  # a quota the paced crowd cannot sell out in the test
SECRETS = {"jwt_secret": "j" * 32, "admin_token": "admin", "payment_secret": "pay"}
REFUSALS = {ErrorCode.SOLD_OUT, ErrorCode.INSUFFICIENT_STOCK, ErrorCode.LIMIT_EXCEEDED}


@dataclass
class Told:
    """What shoppers were told, before, during and after the outage."""

    granted: set[str] = field(default_factory=set)
    granted_during: int = 0
    failures: list[str] = field(default_factory=list)  # anything but a grant or a plain refusal
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Platform, TcpOutage, int]]:
    (tmp_path / "redis").mkdir()
    redis_server = OwnRedis(tmp_path / "redis")
    redis_server.start()
    try:
        with fresh_postgres_database() as direct_url:
            url = make_url(direct_url)
            outage = TcpOutage(upstream_port=url.port or 5432)
            outage.up()
            settings = Settings(
                data_dir=tmp_path,
                database_url=url.set(port=outage.port).render_as_string(hide_password=False),
                backend="redis",
                redis_url=f"{redis_server.url}?prefix=fs",
                **SECRETS,
            )
            platform = build(settings)
            try:
                item_id = open_sale(
                    platform,
                    opens_at=datetime.now(UTC) - timedelta(minutes=1),
                    hours=1,
                    quota=QUOTA,
                    per_user_limit=LIMIT,
                    payment_window_s=900,
                )
                platform.start_jobs()  # the order writer and the expiry sweeper, as `serve` runs them
                yield platform, outage, item_id
            finally:
                outage.up()  # the platform closes its connections cleanly
                platform.close()
                outage.down()
    finally:
        redis_server.stop()


def test_the_sale_goes_on_through_a_postgres_outage_and_every_grant_is_stored_after(
    stack: tuple[Platform, TcpOutage, int],
) -> None:
    platform, outage, item_id = stack
    orders = platform.orders
    told = Told()
    outage_on = threading.Event()
    stop = threading.Event()
    placed_before = orders.buy(Buy("payer", item_id, 1, "before")).order

    def shop(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            during = outage_on.is_set()
            try:
                order = orders.buy(Buy(f"w{worker}-u{n}", item_id, 1, f"k{n}")).order
            except FlashSaleError as exc:
                if exc.code not in REFUSALS:
                    with told.lock:
                        told.failures.append(f"{exc.code} during={during}")
                continue
            except Exception as exc:  # the buy path must not need the database
                with told.lock:
                    told.failures.append(f"{type(exc).__name__} during={during}")
                continue
            with told.lock:
                told.granted.add(order.id)
                told.granted_during += during
            time.sleep(0.01)  # a paced crowd: the quota lasts through the outage

    with ThreadPoolExecutor(SHOPPERS) as pool:
        for worker in range(SHOPPERS):
            pool.submit(shop, worker)
        time.sleep(1.0)
        outage.down()
        outage_on.set()
        try:
            time.sleep(OUTAGE_S / 2)
            # A payment needs the database: it fails cleanly (the API's 503) and charges nothing.
            with pytest.raises((OperationalError, FlashSaleError)) as refused:
                orders.pay(placed_before.id, "payer")
            if isinstance(refused.value, FlashSaleError):
                assert refused.value.code is ErrorCode.SERVICE_UNAVAILABLE
            time.sleep(OUTAGE_S / 2)
        finally:
            outage_on.clear()
            outage.up()
        time.sleep(1.0)
        stop.set()

    assert told.failures == [], told.failures[:10]
    assert told.granted_during > 0, "nobody was served during the outage"

    paid = orders.pay(placed_before.id, "payer")  # the retry after the outage succeeds
    assert paid.status is OrderStatus.PAID

    def stored() -> set[str]:
        with platform.deps.read() as r:
            return set(r.db.scalars(select(OrderRow.id).where(OrderRow.item_id == item_id)))

    expected = told.granted | {placed_before.id}
    assert wait_until(lambda: expected <= stored(), timeout_s=60), f"{len(expected - stored())} not stored"
    assert stored() == expected  # nothing refused was recorded
    assert_store_matches_ledger(platform, item_id, limit=LIMIT)
    assert audit_payments(platform.deps.sessions).clean
