"""Shoppers redeeming goods prizes in one process, run until it is killed: a child of test_crash_recovery.py.

Usage: python crash_redeemer.py DATA_DIR WINNERS THREADS

Builds the platform on the SQLite file in DATA_DIR (real clock), prints "ready", then redeems the
award of each winner w0..w{WINNERS-1} from THREADS threads at once, every winner twice (a double
click), and prints the id of each award it was told is redeemed, one per line, flushed. It imports
nothing from the tests package, so it runs as a plain script.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flashsale.bootstrap import build
from flashsale.config import Settings
from flashsale.domain.draws import AwardStatus
from flashsale.domain.errors import FlashSaleError

SECRETS = {"jwt_secret": "crash-test-jwt-secret-0123456789", "admin_token": "a", "payment_secret": "p"}


def main(data_dir: str, winners: str, threads: str) -> None:
    platform = build(Settings(data_dir=Path(data_dir), **SECRETS), migrate=False)
    users = [f"w{n}" for n in range(int(winners))]
    print("ready", flush=True)
    told = threading.Lock()

    def redeem(user: str) -> None:
        ((award, _),) = platform.draws.awards(user)
        if award.status is not AwardStatus.AWARDED:
            return
        try:
            redeemed = platform.draws.redeem(award.id, user)
        except FlashSaleError:
            return  # ALREADY_REDEEMED: its twin was told
        with told:
            sys.stdout.write(f"{redeemed.id}\n")
            sys.stdout.flush()

    with ThreadPoolExecutor(int(threads)) as pool:
        list(pool.map(redeem, [u for user in users for u in (user, user)]))
    threading.Event().wait()  # every award redeemed: wait for the kill


if __name__ == "__main__":
    main(*sys.argv[1:])
