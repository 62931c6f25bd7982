"""Concurrent payments in one process, run until it is killed: a child of test_crash_recovery.py.

Usage: python crash_payer.py DATA_DIR ITEM_ID ORDERS THREADS [BATCH]

Builds the platform on the SQLite file in DATA_DIR (real clock), places ORDERS orders, prints
"ready", then pays them from THREADS threads at once (their writes share group commits), BATCH
orders per `pay_many` call (default 1: `pay` one by one), and prints
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
from flashsale.services.settlement import Paid, PayRequest

SECRETS = {"jwt_secret": "crash-test-jwt-secret-0123456789", "admin_token": "a", "payment_secret": "p"}


def main(data_dir: str, item_id: str, orders: str, threads: str, batch: str = "1") -> None:
    platform = build(Settings(data_dir=Path(data_dir), **SECRETS), migrate=False)
    run = data_dir.rsplit("/", 1)[-1] + str(threading.get_native_id())
    cmds = [Buy(f"p{run}-{n}", int(item_id), 1, f"k{run}-{n}") for n in range(int(orders))]
    placed = [p.order for p in platform.orders.buy_many(cmds) if isinstance(p, Purchase)]
    print("ready", flush=True)
    told = threading.Lock()

    def pay(orders: list[Order]) -> None:
        if len(orders) == 1:
            answers: list[Order | Exception] = [platform.orders.pay(orders[0].id, orders[0].user_id)]
        else:
            paid = platform.orders.payments.pay_many([PayRequest(o.id, o.user_id) for o in orders])
            answers = [a.order if isinstance(a, Paid) else a for a in paid]
        with told:
            for answer in answers:
                if isinstance(answer, Order) and answer.status is OrderStatus.PAID:
                    sys.stdout.write(f"{answer.id}\n")
            sys.stdout.flush()

    size = int(batch)
    with ThreadPoolExecutor(int(threads)) as pool:
        list(pool.map(pay, [placed[n : n + size] for n in range(0, len(placed), size)]))
    threading.Event().wait()  # every order paid: wait for the kill


if __name__ == "__main__":
    main(*sys.argv[1:])
