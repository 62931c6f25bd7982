"""Pays one order that wins a free order and dies while its rebate is sent: a child of test_crash_recovery.py.

Usage: python crash_rebater.py DATA_DIR ITEM_ID

Builds the platform on the SQLite file in DATA_DIR (real clock), buys one unit of ITEM_ID and
pays it; the provider's rebate call prints "rebating" and blocks, so the parent's kill -9 lands
after the payment and its pending rebate are committed and before the rebate is written done. It
imports nothing from the tests package, so it runs as a plain script.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from flashsale.bootstrap import build
from flashsale.config import Settings
from flashsale.services.orders import Buy
from flashsale.services.payments import SandboxProvider

SECRETS = {"jwt_secret": "crash-test-jwt-secret-0123456789", "admin_token": "a", "payment_secret": "p"}


class StallingProvider(SandboxProvider):
    """The sandbox, except that a rebate never comes back."""

    def refund(self, *, order_id: str, charge_ref: str, amount_cents: int, key: str | None = None) -> str:
        if key is not None and key.startswith("rebate:"):
            print("rebating", flush=True)
            threading.Event().wait()  # until killed
        return super().refund(order_id=order_id, charge_ref=charge_ref, amount_cents=amount_cents, key=key)


def main(data_dir: str, item_id: str) -> None:
    platform = build(Settings(data_dir=Path(data_dir), **SECRETS), migrate=False)
    platform.orders.payments.providers["sandbox"] = StallingProvider(SECRETS["payment_secret"])
    order = platform.orders.buy(Buy("lucky", int(item_id), 1, "k-lucky")).order
    print("ready", flush=True)
    platform.orders.pay(order.id, order.user_id)
    print("paid without a rebate", flush=True)  # the parent fails on this line
    threading.Event().wait()


if __name__ == "__main__":
    main(*sys.argv[1:])
