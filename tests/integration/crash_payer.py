"""Concurrent payments in one process, run until it is killed: a child of test_crash_recovery.py.

Usage: python crash_payer.py DATA_DIR ITEM_ID ORDERS THREADS

Builds the platform on the SQLite file in DATA_DIR (real clock), places ORDERS orders, prints
"ready", then pays them from THREADS threads at once (their writes share group commits) and prints
the id of each order it was told is paid, one per line, flushed: what a shopper was told. It
imports nothing from the tests package, so it runs as a plain script.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flashsale.bootstrap import build
from flashsale.config import Settings
from flashsale.domain.orders import Order, OrderStatus
from flashsale.services.orders import Buy, Purchase

SECRETS = {"jwt_secret": "crash-test-jwt-secret-0123456789", "admin_token": "a", "payment_secret": "p"}


def main(data_dir: str, item_id: str, orders: str, threads: str) -> None:
    platform = build(Settings(data_dir=Path(data_dir), **SECRETS), migrate=False)
    run = data_dir.rsplit("/", 1)[-1] + str(threading.get_native_id())
    cmds = [Buy(f"p{run}-{n}", int(item_id), 1, f"k{run}-{n}") for n in range(int(orders))]
    placed = [p.order for p in platform.orders.buy_many(cmds) if isinstance(p, Purchase)]
    print("ready", flush=True)
    told = threading.Lock()

    def pay(order: Order) -> None:
        paid = platform.orders.pay(order.id, order.user_id)
        if paid.status is OrderStatus.PAID:
            with told:
                sys.stdout.write(f"{paid.id}\n")
                sys.stdout.flush()

    with ThreadPoolExecutor(int(threads)) as pool:
        list(pool.map(pay, placed))
    threading.Event().wait()  # every order paid: wait for the kill


if __name__ == "__main__":
    main(*sys.argv[1:])
