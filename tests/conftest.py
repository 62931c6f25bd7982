"""Shared fixtures (a manual clock, a platform on each engine, a ready campaign) and the hooks that skip,
or under FLASHSALE_TEST_REQUIRE_SERVICES=1 fail, tests needing Redis or PostgreSQL.

`platform` is built on SQLite + the in-process ledger; mark a test, class or module
`pytest.mark.engines(...)` to run it on every engine instead (see tests/engines.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.config import Settings
from tests import engines

T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)  # a session opens at 10:00

# No timing assertions in the tests: hypothesis's per-example deadline (200 ms) failed a property
# test on a box busy with other work, which says nothing about the property; so may its check that
# generating examples is not too slow.
settings.register_profile("flashsale", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("flashsale")

# Redis / PostgreSQL / chromium: the one skip (and CI's fail-instead-of-skip) is a plugin of its own
pytest_plugins = ["tests.services"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "engines(*names, reason=''): run the test's `platform` once per engine named (every engine "
        "when none is): sqlite+memory, postgres+memory, postgres+redis; see tests/engines.py",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise `platform` over the engines of the closest `engines` marker."""
    marker = metafunc.definition.get_closest_marker("engines")
    if marker is not None and "platform" in metafunc.fixturenames:
        metafunc.parametrize("platform", engines.engine_params(marker.args), indirect=True)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0.timestamp())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        jwt_secret="test-jwt-secret-0123456789abcdef",
        admin_token="test-admin-token",
        payment_secret="test-payment-secret",
    )


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[engines.PostgresDatabases]:
    """Fresh PostgreSQL databases for the run, copied from one migrated template."""
    databases = engines.PostgresDatabases()
    yield databases
    databases.close()


@pytest.fixture
def platform(request: pytest.FixtureRequest, settings: Settings, clock: ManualClock) -> Iterator[Platform]:
    """The platform on the engine of the test's param (`engines` marker), else on SQLite + in-process."""
    engine: str = getattr(request, "param", engines.SQLITE)
    databases = request.getfixturevalue("postgres_databases") if engines.uses_postgres(engine) else None
    with engines.platform_on(engine, settings, clock, databases) as plat:
        yield plat


@dataclass(frozen=True)
class Sale:
    """A campaign with one session (10:00–10:10) and two items: a phone (limit 1) and earbuds (limit 2)."""

    campaign_id: int
    session_id: int
    later_session_id: int
    phone_id: int
    earbuds_id: int


@pytest.fixture
def sale(platform: Platform) -> Sale:
    return make_sale(platform)


def make_sale(platform: Platform) -> Sale:
    """Set up the `Sale` described on the class."""
    cat = platform.catalog
    campaign = cat.create_campaign(
        name="Phone launch",
        theme="new phone",
        starts_at=T0 - timedelta(days=1),
        ends_at=T0 + timedelta(days=2),
        payment_window_s=15 * 60,
    )
    session = cat.create_session(
        campaign_id=campaign.id, name="10:00", starts_at=T0, ends_at=T0 + timedelta(minutes=10)
    )
    later = cat.create_session(
        campaign_id=campaign.id,
        name="15:00",
        starts_at=T0 + timedelta(hours=5),
        ends_at=T0 + timedelta(hours=5, minutes=10),
    )
    phone = cat.create_product(sku="PHONE-X", name="Phone X", list_price_cents=599_900, stock=1000)
    buds = cat.create_product(sku="BUDS-2", name="Earbuds 2", list_price_cents=99_900, stock=1000)
    phone_item = cat.create_item(
        session_id=session.id, product_id=phone.id, flash_price_cents=399_900, quota=10, per_user_limit=1
    )
    buds_item = cat.create_item(
        session_id=session.id, product_id=buds.id, flash_price_cents=49_900, quota=20, per_user_limit=2
    )
    return Sale(campaign.id, session.id, later.id, phone_item.id, buds_item.id)
