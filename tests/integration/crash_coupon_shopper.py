"""Shoppers checking out carts with coupons, run until killed: the child of test_checkout_coupons_crash.py.

Usage: python crash_coupon_shopper.py DATA_DIR WAVE_ID ITEM_IDS SEED

Builds the platform on the SQLite file in DATA_DIR (real clock), prints "ready", then claims
coupons, fills carts, checks out with a coupon (one click in five repeats an earlier checkout's
key), pays, cancels, refunds and expires, forever, from THREADS threads at once, so the kill lands
between a redemption and the transaction that places its checkout, or between an order's end and
its coupon's return. It imports nothing from the tests package, so it runs as a plain script.
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
from flashsale.domain.cart import checkout_id_of
from flashsale.domain.coupons import CouponState
from flashsale.domain.errors import FlashSaleError
from flashsale.domain.orders import OrderStatus

USERS = 12
THREADS = 4
SECRETS = {"jwt_secret": "crash-test-jwt-secret-0123456789", "admin_token": "a", "payment_secret": "p"}


def settings_for(data_dir: Path) -> Settings:
    """Return the settings parent and child share: the same SQLite file and the same secrets."""
    return Settings(data_dir=data_dir, **SECRETS)


def shop_once(
    platform: Platform,
    wave_id: int,
    item_ids: list[int],
    rng: random.Random,
    mine: list[tuple[str, str]],
    key: str,
) -> None:
    """Do one random shopper or operator action; refusals are part of the game."""
    roll = rng.random()
    if roll < 0.5 or not mine:
        user = f"u{rng.randrange(USERS)}"
        platform.coupons.claim(user_id=user, wave_id=wave_id, request_id=f"c{rng.randrange(3)}")
        platform.carts.add(user, rng.choice(item_ids), rng.randint(1, 2))
        held = [c.coupon.coupon_id for c in platform.coupons.my_coupons(user)]
        free = [c for c in held if platform.coupons.ledger.get(c).state is CouponState.AVAILABLE]  # type: ignore[union-attr]
        if mine and rng.random() < 0.2:
            user, key = rng.choice(mine)  # a double click, or a retry after a timeout
        mine.append((user, key))
        platform.carts.checkout(user, key, free[:1])
        return
    user, key = rng.choice(mine)
    checkout = platform.carts.get(user, checkout_id_of(user, key))
    orders = [ln.order for ln in checkout.lines if ln.order is not None]
    if roll < 0.7:
        platform.carts.pay(user, checkout.id)
    elif roll < 0.8:
        for order in orders:
            with suppress(FlashSaleError):
                platform.orders.cancel(order.id, user)
    elif roll < 0.9:
        paid = [o for o in orders if o.status is OrderStatus.PAID]
        if paid:
            platform.orders.refund(rng.choice(paid).id)
    else:
        platform.orders.expire_due()


def main(data_dir: str, wave_id: str, item_ids: str, seed: str) -> None:
    platform = build(settings_for(Path(data_dir)), migrate=False)  # the parent migrated the file
    items = [int(i) for i in item_ids.split(",")]

    def shop(thread: int) -> None:
        rng = random.Random(int(seed) * THREADS + thread)
        mine: list[tuple[str, str]] = []
        for n in count():
            with suppress(FlashSaleError):  # refusals (sold out, coupon used, budget spent …)
                shop_once(platform, int(wave_id), items, rng, mine, key=f"{seed}-{thread}-{n}")

    for thread in range(THREADS):
        threading.Thread(target=shop, args=(thread,), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main(*sys.argv[1:])
