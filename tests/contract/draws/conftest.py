"""One draw-ledger suite, every engine: the `make_draws` fixture runs each test once per engine.

The Redis param is marked `redis`, so tests/conftest.py skips it without FLASHSALE_TEST_REDIS_URL
and CI (FLASHSALE_TEST_REQUIRE_SERVICES=1) fails it instead; an engine that fails to build fails
the test. Every Redis ledger gets a fresh key prefix, whose keys are deleted afterwards.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator

import pytest

from flashsale.domain.draws import PoolTerms, PrizeTerms
from flashsale.draws import DrawLedger, Rng, draw_ledger_from_url
from tests.contract.conftest import delete_prefixes, with_query
from tests.services import REDIS_URL

ENGINES = [
    pytest.param("memory://", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]
DAY = "2026-11-11"
NEXT_DAY = "2026-11-12"

DrawsFactory = Callable[[Rng], DrawLedger]


@pytest.fixture(params=ENGINES)
def make_draws(request: pytest.FixtureRequest) -> Iterator[DrawsFactory]:
    """Yield a builder of empty draw ledgers of one engine, each with the RNG given."""
    engine: str = request.param
    prefixes: list[str] = []
    built: list[DrawLedger] = []

    def build(rng: Rng) -> DrawLedger:
        url = engine
        if engine == "redis":
            assert REDIS_URL is not None
            prefixes.append(f"t-{uuid.uuid4().hex}")
            url = with_query(REDIS_URL, ("prefix", prefixes[-1]))
        ledger = draw_ledger_from_url(url, rng)
        built.append(ledger)
        return ledger

    build(random.Random(0))  # fails here, at set-up, when the engine cannot be built
    yield build
    for ledger in built:
        ledger.close()
    if prefixes:
        delete_prefixes(prefixes)


@pytest.fixture
def draws(make_draws: DrawsFactory) -> DrawLedger:
    """An empty draw ledger whose rolls come from `random.Random(7)`."""
    return make_draws(random.Random(7))


def pool(*prizes: PrizeTerms, thanks: int = 0, pool_id: int = 1) -> PoolTerms:
    return PoolTerms(pool_id, prizes, thanks)


def give(ledger: DrawLedger, user: str, draws: int = 1, *, key: str | None = None, day: str = DAY) -> None:
    """Grant `user` `draws` entitlements in pool 1 (a free grant with no cap to speak of)."""
    decision = ledger.grant(
        pool_id=1, user_id=user, source="free_daily", grant_key=key or f"k-{uuid.uuid4().hex}",
        draws=draws, day=day, daily_cap=10_000,
    )  # fmt: skip
    assert decision.granted == draws, decision
