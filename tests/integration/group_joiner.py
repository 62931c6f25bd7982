"""A crowd joining one group from one process: the child of test_group_buy.py's cross-process test.

Usage: python group_joiner.py SETTINGS_JSON GROUP_ID CLOCK_EPOCH USER_PREFIX USERS

Builds the platform from the settings (PostgreSQL + the Redis ledger, shared with the parent and
the other children) on a clock stopped at CLOCK_EPOCH, joins the group as USERS shoppers from
several threads at once, and prints one line per answer: "joined SEAT" or the refusal's code.
It imports nothing from the tests package, so it runs as a plain script.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from flashsale.bootstrap import build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.domain.errors import FlashSaleError

THREADS = 6


def main(settings_json: str, group_id: str, epoch: str, prefix: str, users: str) -> None:
    platform = build(
        Settings.model_validate_json(settings_json), clock=ManualClock(float(epoch)), migrate=False
    )

    def join(user: str) -> str:
        try:
            return f"joined {platform.groups.join(group_id, user).seat}"
        except FlashSaleError as exc:
            return exc.code.value

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            for answer in pool.map(join, [f"{prefix}{n}" for n in range(int(users))]):
                print(answer)
    finally:
        platform.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
