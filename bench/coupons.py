"""Coupon claims on one hot wave through the coupon ledger's contract, beside the stock ledger's rows.

The same crowd as every benchmark, read as claims: request *i* is user *i* // 3 claiming one coupon
of the wave its item number names, each user may hold 2, and each wave issues half the requests it
receives, so every run hands out the whole wave and refuses the rest with COUPON_LIMIT or
COUPON_ISSUE_EXHAUSTED. The check reads the engine's wave level (issued + left == total) and
compares it with the coupons the clients were told of, per user within the limit.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.ledgers import redis_prefix
from bench.report import Result
from bench.workload import (
    FAR_FUTURE_S,
    PER_USER_LIMIT,
    Decide,
    Level,
    Request,
    Shape,
    check_sale,
    replay_single,
)
from flashsale.coupons import CouponLedger
from flashsale.coupons.redis import RedisCouponLedger, redis_coupon_ledger_from_url
from flashsale.domain.coupons import WaveTerms


def open_waves(ledger: CouponLedger, shape: Shape) -> None:
    """One wave per item of the shape, open now, each issuing the item's quota."""
    now = time.time()
    ledger.configure_budget(1, None)
    for wave in shape.item_ids:
        far = now + FAR_FUTURE_S
        ledger.configure_wave(
            WaveTerms(wave, 1, shape.quota_per_item, PER_USER_LIMIT, now - 60, far, now - 60, far)
        )


def claim_decider(ledger: CouponLedger, run_id: str) -> Decide:
    """Return a decide function making one `claim` per request (request ids unique to this run)."""
    claim = ledger.claim

    def decide(r: Request) -> bool:
        return claim(wave_id=r.item_id, user_id=r.user_id, request_id=f"{run_id}{r.request_id}").granted

    return decide


def bench_claims(
    ledger: CouponLedger, shape: Shape, *, engine: str, threads: int, sample_every: int
) -> Result:
    """Replay the crowd as coupon claims; check the waves as a sale (issued coupons are units sold)."""
    open_waves(ledger, shape)
    run_id = secrets.token_hex(4)
    run = replay_single(
        shape.crowd(),
        threads=threads,
        decider=lambda: claim_decider(ledger, run_id),
        sample_every=sample_every,
    )
    levels = []
    for wave in shape.item_ids:
        lv = ledger.wave_level(wave)
        levels.append(Level(wave, lv.total, lv.total - lv.issued, 0, lv.issued))
    how = f"{threads} thread{'s' if threads > 1 else ''}, 1 claim/request"
    return Result(engine, shape.label, "decisions/s", run, check_sale(levels, run), how)


@contextmanager
def redis_coupon_ledger(url: str) -> Iterator[RedisCouponLedger]:
    """Yield a Redis coupon ledger under a fresh key prefix, deleting its keys afterwards."""
    with redis_prefix(url) as prefixed:
        ledger = redis_coupon_ledger_from_url(prefixed, time.time)
        try:
            yield ledger
        finally:
            ledger.close()
