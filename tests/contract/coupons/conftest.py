"""One coupon ledger suite, every engine: `coupon_ledger` runs each test on memory and on Redis.

The Redis param is marked `redis`, so tests/conftest.py skips it without FLASHSALE_TEST_REDIS_URL and
CI (FLASHSALE_TEST_REQUIRE_SERVICES=1) fails it instead. Each Redis ledger gets a fresh key prefix,
deleted afterwards. The manual clock stands at T0; the wave built by `wave` opens then.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from flashsale.clock import ManualClock
from flashsale.coupons import CouponLedger, coupon_ledger_from_url
from flashsale.domain.coupons import WaveTerms
from tests.contract.conftest import delete_prefixes, with_query
from tests.factories import OPENS_AT
from tests.services import REDIS_URL

ENGINES = [
    pytest.param("memory://", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]
VALID_UNTIL = OPENS_AT + 7 * 86_400.0  # the template's coupons are good for a week

CouponLedgerFactory = Callable[[ManualClock], CouponLedger]


def wave_terms(
    wave_id: int = 1, *, template_id: int = 1, total: int = 10, per_user_limit: int = 1
) -> WaveTerms:
    """A wave handing out `total` coupons from T0, no end; its template valid from T0 for a week."""
    return WaveTerms(
        wave_id, template_id, total, per_user_limit, OPENS_AT, float("inf"), OPENS_AT, VALID_UNTIL
    )


@pytest.fixture(params=ENGINES)
def make_coupon_ledger(request: pytest.FixtureRequest) -> Iterator[CouponLedgerFactory]:
    """Yield a builder of empty coupon ledgers of one engine."""
    prefixes: list[str] = []
    built: list[CouponLedger] = []

    def build(clock: ManualClock) -> CouponLedger:
        url = "memory://"
        if request.param == "redis":
            assert REDIS_URL is not None
            prefixes.append(f"tc-{uuid.uuid4().hex}")
            url = with_query(REDIS_URL, ("prefix", prefixes[-1]))
        ledger = coupon_ledger_from_url(url, clock)
        built.append(ledger)
        return ledger

    yield build
    for ledger in built:
        ledger.close()
    if prefixes:
        delete_prefixes(prefixes)


@pytest.fixture
def coupons(make_coupon_ledger: CouponLedgerFactory, clock: ManualClock) -> CouponLedger:
    """An empty coupon ledger on the manual clock (at T0)."""
    return make_coupon_ledger(clock)


@pytest.fixture
def wave(coupons: CouponLedger) -> WaveTerms:
    """Wave 1 of template 1 (budget 1,000 cents): 10 coupons, 1 per shopper, open from T0."""
    terms = wave_terms()
    coupons.configure_budget(1, 1_000)
    coupons.configure_wave(terms)
    return terms
