"""Large purchase batches in one process, run until it is killed: a child of test_crash_recovery.py.

Usage: python crash_batch_buyer.py DATA_DIR ITEM_ID BATCH

Builds the platform on the SQLite file in DATA_DIR (real clock), prints "ready", then buys in
batches of BATCH through `OrderService.buy_many` (group commit: one transaction per batch), and
after each batch prints the id of every order it was answered with, one per line, flushed: what a
client was told. It imports nothing from the tests package, so it runs as a plain script.
"""

from __future__ import annotations

import sys
from itertools import count
from pathlib import Path

from flashsale.bootstrap import build
from flashsale.config import Settings
from flashsale.services.orders import Buy, Purchase

SECRETS = {"jwt_secret": "crash-test-jwt-secret-0123456789", "admin_token": "a", "payment_secret": "p"}


def main(data_dir: str, item_id: str, batch: str) -> None:
    platform = build(Settings(data_dir=Path(data_dir), **SECRETS), migrate=False)
    size = int(batch)
    print("ready", flush=True)
    for n in count():
        cmds = [Buy(f"b{n}-{k}", int(item_id), 1, f"k{n}-{k}") for k in range(size)]
        acknowledged = [p.order.id for p in platform.orders.buy_many(cmds) if isinstance(p, Purchase)]
        if acknowledged:
            sys.stdout.write("".join(f"{order_id}\n" for order_id in acknowledged))
            sys.stdout.flush()


if __name__ == "__main__":
    main(*sys.argv[1:])
