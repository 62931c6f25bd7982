"""GET /sessions answers from the in-memory shop window: ETags, freshness, exact states, no lock, no SQL."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, update
from starlette.types import Receive, Scope, Send

from flashsale.api.main import create_app
from flashsale.api.shop.sessions import PublicReadFastPath
from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.store.tables import ProductRow
from tests.conftest import T0, Sale, make_sale
from tests.engines import SQLITE
from tests.integration.api_support import Api, assert_refused, open_api
from tests.integration.redis_support import redis_platform

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


@contextmanager
def sql_statements(platform: Platform) -> Iterator[list[str]]:
    """Collect every SQL statement sent on the platform's engines (writes and reads) meanwhile."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engines: set[Engine] = {platform.engine, platform.read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def remaining(listing: list[dict[str, Any]], item_id: int) -> int:
    """Return the remaining stock an answer shows for one item."""
    found: int = next(i["remaining"] for s in listing for i in s["items"] if i["item_id"] == item_id)
    return found


def item_shown(api: Api, item_id: int) -> dict[str, Any]:
    """Return one item as GET /sessions shows it."""
    listed = api.client.get("/sessions").json()
    found: dict[str, Any] = next(i for s in listed for i in s["items"] if i["item_id"] == item_id)
    return found


def test_the_list_and_a_session_carry_an_etag_and_a_short_max_age_and_answer_304_to_it(
    api: Api, sale: Sale
) -> None:
    for path in ("/sessions", f"/sessions/{sale.session_id}", "/sessions?state=upcoming"):
        first = api.client.get(path)
        assert first.status_code == 200
        etag = first.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"')  # strong
        assert first.headers["Cache-Control"] == "public, max-age=1"
        assert first.headers["Content-Type"] == "application/json"

        for matching in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            again = api.client.get(path, headers={"If-None-Match": matching})
            assert (again.status_code, again.content) == (304, b"")
            assert again.headers["ETag"] == etag
            assert again.headers["Cache-Control"] == "public, max-age=1"
        stale = api.client.get(path, headers={"If-None-Match": '"something-else"'})
        assert (stale.status_code, stale.content) == (200, first.content)

    listed = api.client.get("/sessions")
    assert listed.json()[0]["id"] == sale.session_id
    assert listed.headers["ETag"] != api.client.get("/sessions?state=upcoming").headers["ETag"]
    assert_refused(api.client.get("/sessions/999999"), 404, "NOT_FOUND")


def test_remaining_stock_catches_up_with_a_purchase_within_the_refresh_interval(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    before = api.client.get("/sessions")
    assert remaining(before.json(), sale.phone_id) == 10
    assert api.buy("alice", sale.phone_id).status_code == 201

    # Until the stock snapshot is due, every reader shares the one already taken.
    cached = api.client.get("/sessions", headers={"If-None-Match": before.headers["ETag"]})
    assert cached.status_code == 304

    clock.advance(api.platform.showcase.stock_ttl_s)
    after = api.client.get("/sessions", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert remaining(after.json(), sale.phone_id) == 9
    shown = api.client.get(f"/sessions/{sale.session_id}").json()
    assert remaining([shown], sale.phone_id) == 9


def test_an_operator_edit_or_a_new_session_shows_at_once_in_the_same_process(api: Api, sale: Sale) -> None:
    assert item_shown(api, sale.phone_id)["flash_price_cents"] == 399_900
    edited = api.client.patch(
        f"/admin/items/{sale.phone_id}", json={"flash_price_cents": 349_900, "quota": 8}, headers=api.admin
    )
    assert edited.status_code == 200, edited.text
    phone = item_shown(api, sale.phone_id)
    assert (phone["flash_price_cents"], phone["quota"], phone["remaining"]) == (349_900, 8, 8)

    product = f"/admin/products/{phone['product_id']}"
    renamed = api.client.patch(product, json={"name": "Phone X Pro"}, headers=api.admin)
    assert renamed.status_code == 200, renamed.text
    assert item_shown(api, sale.phone_id)["product_name"] == "Phone X Pro"

    body = {
        "name": "12:00",
        "starts_at": (T0 + timedelta(hours=2)).isoformat(),
        "ends_at": (T0 + timedelta(hours=2, minutes=10)).isoformat(),
    }
    created = api.client.post(f"/admin/campaigns/{sale.campaign_id}/sessions", json=body, headers=api.admin)
    assert created.status_code == 201, created.text
    listed = api.client.get("/sessions").json()
    assert [s["name"] for s in listed] == ["10:00", "12:00", "15:00"]
    assert api.client.get(f"/sessions/{created.json()['id']}").status_code == 200


def test_an_edit_made_by_another_process_shows_within_the_catalogue_interval(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    phone = item_shown(api, sale.phone_id)
    with api.platform.engine.begin() as conn:  # as another worker would: no invalidation here
        conn.execute(update(ProductRow).where(ProductRow.id == phone["product_id"]).values(name="Phone Y"))
    assert item_shown(api, sale.phone_id)["product_name"] == "Phone X"

    clock.advance(api.platform.showcase.catalog_ttl_s)
    assert item_shown(api, sale.phone_id)["product_name"] == "Phone Y"


def test_a_session_turns_open_exactly_at_its_start_while_the_snapshot_stays_cached(
    api: Api, sale: Sale, clock: ManualClock
) -> None:
    clock.set(T0.timestamp() - 0.001)
    upcoming = api.client.get(f"/sessions/{sale.session_id}")
    assert upcoming.json()["state"] == "upcoming"
    snapshot = api.platform.showcase.current()
    assert snapshot is not None

    with sql_statements(api.platform) as statements:
        clock.set(T0.timestamp())
        shown = api.client.get(f"/sessions/{sale.session_id}")
        listed = api.client.get("/sessions").json()
        assert api.platform.showcase.current() is snapshot  # the same snapshot, not a refresh
        assert shown.json()["state"] == "open"
        assert shown.headers["ETag"] != upcoming.headers["ETag"]
        assert [(s["id"], s["state"]) for s in listed] == [
            (sale.session_id, "open"),
            (sale.later_session_id, "upcoming"),
        ]
    assert statements == []

    clock.set((T0 + timedelta(minutes=10)).timestamp())  # its end: closed, and off the default list
    assert api.client.get(f"/sessions/{sale.session_id}").json()["state"] == "closed"
    assert [s["id"] for s in api.client.get("/sessions").json()] == [sale.later_session_id]


@pytest.mark.engines(SQLITE, reason="takes SQLite's file write lock with sqlite3")
def test_a_read_answers_while_another_connection_holds_the_sqlite_write_lock(
    platform: Platform, sale: Sale, clock: ManualClock
) -> None:
    database = platform.engine.url.database
    assert database is not None
    writer = sqlite3.connect(database, isolation_level=None, timeout=0.1)
    try:
        writer.execute("BEGIN IMMEDIATE")  # what every write transaction of the platform takes
        with open_api(platform, clock) as api, sql_statements(platform) as statements:
            listed = api.client.get("/sessions")
            shown = api.client.get(f"/sessions/{sale.session_id}")
            assert statements  # the first read did load the catalogue from the locked file
        assert (listed.status_code, shown.status_code) == (200, 200)
        assert [s["id"] for s in listed.json()] == [sale.session_id, sale.later_session_id]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.fixture
def hundred_sessions(platform: Platform) -> list[int]:
    """Create a campaign with 100 ten-minute sessions from T0 on, each offering one item."""
    cat = platform.catalog
    campaign = cat.create_campaign(
        name="Marathon", theme="t", starts_at=T0 - timedelta(days=1), ends_at=T0 + timedelta(days=2)
    )
    windows = [
        (f"#{n}", T0 + timedelta(minutes=10 * n), T0 + timedelta(minutes=10 * n + 10)) for n in range(100)
    ]
    sessions = cat.create_sessions(campaign.id, windows)
    product = cat.create_product(sku="MUG", name="Mug", list_price_cents=1_000, stock=10_000)
    for session in sessions:
        cat.create_item(session_id=session.id, product_id=product.id, flash_price_cents=500, quota=5)
    return [s.id for s in sessions]


def test_a_warm_list_runs_no_sql_and_a_rebuild_a_constant_number_of_statements(
    api: Api, hundred_sessions: list[int], clock: ManualClock
) -> None:
    with sql_statements(api.platform) as cold:
        listed = api.client.get("/sessions").json()
    assert [s["id"] for s in listed] == hundred_sessions
    assert 1 <= len(cold) <= 4, cold  # BEGIN, the sessions, the items with their products

    with sql_statements(api.platform) as warm:
        for _ in range(20):
            assert api.client.get("/sessions").status_code == 200
            assert api.client.get(f"/sessions/{hundred_sessions[-1]}").status_code == 200
    assert warm == []

    snapshot = api.platform.showcase.current()
    clock.advance(api.platform.showcase.catalog_ttl_s)  # the periodic reload
    with sql_statements(api.platform) as reloaded:
        assert api.client.get("/sessions").status_code == 200
    assert len(reloaded) == len(cold)
    assert api.platform.showcase.current() is snapshot  # nothing moved: same snapshot, same pages

    api.platform.showcase.invalidate()  # what an edit does
    with sql_statements(api.platform) as rebuilt:
        assert api.client.get("/sessions").status_code == 200
    assert len(rebuilt) == len(cold)


def test_concurrent_readers_of_a_stale_view_share_one_rebuild(api: Api, sale: Sale) -> None:
    with sql_statements(api.platform) as cold:
        api.client.get("/sessions")
    api.platform.showcase.invalidate()
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def read() -> None:
        barrier.wait()
        statuses.append(api.client.get("/sessions").status_code)

    with sql_statements(api.platform) as flood:
        run_threads(16, read)
    assert statuses == [200] * 16
    assert len(flood) == len(cold)  # one rebuild for all of them: the manual clock never made it stale again


def run_threads(count: int, target: Callable[[], None]) -> None:
    """Run `target` in `count` threads and wait for all of them."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_the_asgi_fast_path_answers_as_the_routes_do_and_passes_on_what_it_cannot_answer(
    platform: Platform, sale: Sale
) -> None:
    reached_app: list[str] = []
    app = create_app(platform, start_jobs=False)

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            reached_app.append(scope["path"])
        await app(scope, receive, send)

    paths = ["/sessions", "/sessions?state=closed&state=open", f"/sessions/{sale.session_id}"]
    with TestClient(PublicReadFastPath(counted, platform=platform)) as client:
        by_routes = [client.get(path) for path in paths]  # the first refreshes the view, in the route
        by_fast_path = [client.get(path) for path in paths]
        assert len(reached_app) == 1
        for route, fast in zip(by_routes, by_fast_path, strict=True):
            assert (fast.status_code, fast.content) == (route.status_code, route.content)
            assert (fast.headers["ETag"], fast.headers["Cache-Control"]) == (
                route.headers["ETag"],
                route.headers["Cache-Control"],
            )
        not_modified = client.get("/sessions", headers={"If-None-Match": by_routes[0].headers["ETag"]})
        assert not_modified.status_code == 304 and len(reached_app) == 1

        assert_refused(client.get("/sessions?state=soon"), 422, "VALIDATION_ERROR")
        assert_refused(client.get("/sessions/999999"), 404, "NOT_FOUND")
        assert_refused(client.get("/sessions/0"), 422, "VALIDATION_ERROR")
        assert client.post("/sessions").status_code == 405
        assert len(reached_app) == 5  # every request it could not answer went on to the routes


@pytest.mark.redis
def test_on_the_redis_ledger_the_view_shows_live_stock_and_edits(
    settings: Settings, clock: ManualClock
) -> None:
    with redis_platform(settings, clock) as platform, open_api(platform, clock) as api:
        sale = make_sale(platform)
        etag = api.client.get("/sessions").headers["ETag"]
        assert item_shown(api, sale.earbuds_id)["remaining"] == 20
        assert api.buy("alice", sale.earbuds_id, 2).status_code == 201
        assert api.client.get("/sessions", headers={"If-None-Match": etag}).status_code == 304

        clock.advance(platform.showcase.stock_ttl_s)
        assert item_shown(api, sale.earbuds_id)["remaining"] == 18
        edited = api.client.patch(f"/admin/items/{sale.earbuds_id}", json={"quota": 30}, headers=api.admin)
        assert edited.status_code == 200, edited.text
        earbuds = item_shown(api, sale.earbuds_id)
        assert (earbuds["quota"], earbuds["remaining"]) == (30, 28)
