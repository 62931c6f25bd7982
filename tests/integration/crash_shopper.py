"""A shopping crowd in one process, run until it is killed: the child of test_crash_recovery.py.

Usage: python crash_shopper.py DATA_DIR ITEM_ID SEED

Builds the platform on the SQLite file in DATA_DIR (real clock), prints "ready", then buys, pays,
cancels, refunds and expires orders of ITEM_ID in a tight loop, forever, from THREADS threads at
once (so the kill also lands in the middle of group commits shared by several of them). It
imports nothing from the tests package, so it runs as a plain script.
"""

from __future__ import annotations

import random
import sys
import threading
from contextlib import suppress
from itertools import count
from pathlib import Path

from flashsale.bootstrap import Platform, build
from flashsale.config import Settings
from flashsale.domain.errors import FlashSaleError
from flashsale.domain.orders import Order
from flashsale.services.orders import Buy

USERS = 60
THREADS = 4
SECRETS = {"jwt_secret": "crash-test-jwt-secret-0123456789", "admin_token": "a", "payment_secret": "p"}


def settings_for(data_dir: Path) -> Settings:
    """Return the settings parent and child share: the same SQLite file and the same secrets."""
    return Settings(data_dir=data_dir, **SECRETS)


def shop_once(platform: Platform, item_id: int, rng: random.Random, mine: list[Order], key: str) -> None:
    """Do one random shopper or operator action; refusals are part of the game."""
    roll = rng.random()
    if roll < 0.45 or not mine:
        # One click in five repeats an earlier request: a double-click, or a retry after a timeout.
        earlier = rng.choice(mine) if mine and rng.random() < 0.2 else None
        if earlier is not None:
            buy = Buy(earlier.user_id, item_id, earlier.qty, earlier.request_id)
        else:
            buy = Buy(f"u{rng.randrange(USERS)}", item_id, rng.randint(1, 2), key)
        mine.append(platform.orders.buy(buy).order)
        return
    order = rng.choice(mine)
    if roll < 0.65:
        platform.orders.pay(order.id, order.user_id)
    elif roll < 0.75:
        platform.orders.cancel(order.id, order.user_id)
    elif roll < 0.85:
        platform.orders.refund(order.id)
    else:
        platform.orders.expire_due()


def main(data_dir: str, item_id: str, seed: str) -> None:
    platform = build(settings_for(Path(data_dir)), migrate=False)  # the parent migrated the file

    def shop(thread: int) -> None:
        rng = random.Random(int(seed) * THREADS + thread)
        mine: list[Order] = []
        for n in count():
            with suppress(FlashSaleError):  # refusals (sold out, limit, expired …) are part of the game
                shop_once(platform, int(item_id), rng, mine, key=f"{seed}-{thread}-{n}")

    for thread in range(THREADS):
        threading.Thread(target=shop, args=(thread,), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main(*sys.argv[1:])
