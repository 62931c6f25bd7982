"""The live board (services/board.py, api/board.py): its figures are the ledger's and the orders',
every viewer shares one build per tick, and a real server streams it as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import event

from flashsale.api.board import BoardEvents
from flashsale.auth import mint_shopper_token
from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.services.board import BoardFeed, apply_patch
from flashsale.services.showcase import STOCK_TTL_S
from tests.conftest import Sale
from tests.engines import drain_orders
from tests.factories import open_sale
from tests.integration.api_support import Api, open_api
from tests.integration.edge_server import SECRETS, serving

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def item_of(board: dict[str, Any], item_id: int) -> dict[str, Any]:
    return next(i for s in board["sessions"] for i in s["items"] if i["id"] == item_id)


def test_the_board_shows_the_ledgers_stock_and_the_orders_figures(api: Api, sale: Sale) -> None:
    for user in ("ann", "bob", "cat"):
        assert api.buy(user, sale.earbuds_id, 2).status_code == 201
    paid = api.buy("dan", sale.earbuds_id, 1).json()
    assert api.client.post(f"/orders/{paid['id']}/pay", headers=api.shopper("dan")).status_code == 200
    drain_orders(api.platform)

    board = api.client.get("/board/view").json()
    buds, level = item_of(board, sale.earbuds_id), api.platform.ledger.stock(sale.earbuds_id)
    shown = (buds["available"], buds["held"], buds["sold"])
    assert shown == (level.available, level.held, level.sold) == (13, 6, 1)
    assert buds["participants"] == 4 and buds["orders_last_minute"] == 4
    assert buds["conversion"] == round(1 / 7, 4)  # 1 unit paid of 7 reserved
    session = next(s for s in board["sessions"] if s["id"] == sale.session_id)
    assert session["state"] == "open" and session["participants"] == 4 and not session["sold_out"]


def test_the_view_is_never_older_than_a_tick_when_nobody_watches(api: Api, sale: Sale) -> None:
    api.client.app.state.board.interval_s = 0.05
    before = item_of(api.client.get("/board/view").json(), sale.earbuds_id)
    assert api.buy("ann", sale.earbuds_id, 2).status_code == 201
    drain_orders(api.platform)
    time.sleep(0.06)  # one tick: no stream keeps the board fresh, so the view builds it anew
    api.clock.advance(STOCK_TTL_S)  # and the shop window reads the ledger again
    after = item_of(api.client.get("/board/view").json(), sale.earbuds_id)
    assert (before["held"], after["held"]) == (0, 2)


def test_every_viewer_shares_one_build_per_tick(platform: Platform, sale: Sale) -> None:
    feed = BoardFeed(platform.deps, platform.showcase, interval_s=0.05)
    queries = [0]

    def count(*_: Any) -> None:
        queries[0] += 1

    engine = platform.read_engine
    event.listen(engine, "before_cursor_execute", count)

    async def watch() -> list[int]:
        async def viewer() -> int:
            seen = 0
            for _ in range(3):
                frame = await feed.next(seen)
                assert frame is not None and json.loads(frame.body)["sessions"]
                seen = frame.version
            return seen

        seen = await asyncio.gather(*(viewer() for _ in range(50)))
        feed.close()
        return list(seen)

    try:
        seen = asyncio.run(watch())
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert min(seen) >= 3
    assert feed.builds <= 5  # three ticks (and a spare one), not one per viewer
    assert queries[0] <= feed.builds * 4  # the order figures, plus the shop window's own refresh


def test_the_page_is_served_and_follows_the_stream(api: Api) -> None:
    page = api.client.get("/board")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'new EventSource("/board/events")' in page.text


@pytest.mark.engines("sqlite+memory", reason="a real `flashsale serve` on the embedded default")
def test_a_real_server_streams_the_board_as_server_sent_events(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        jwt_secret=SECRETS["FLASHSALE_JWT_SECRET"],
        admin_token=SECRETS["FLASHSALE_ADMIN_TOKEN"],
        payment_secret=SECRETS["FLASHSALE_PAYMENT_SECRET"],
    )
    setup = build(settings)
    opens_at = datetime.now(UTC) - timedelta(minutes=1)
    item_id = open_sale(setup, opens_at=opens_at, hours=1, quota=50, per_user_limit=2, payment_window_s=900)
    setup.close()
    token = mint_shopper_token(SECRETS["FLASHSALE_JWT_SECRET"], "ann", 3600, time.time())
    with serving(tmp_path) as served, httpx2.Client(base_url=f"http://127.0.0.1:{served.port}") as http:
        boards: list[dict[str, Any]] = []
        kinds: list[str] = []
        with http.stream("GET", "/board/events", timeout=30) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kinds.append(line.removeprefix("event: "))
                if not line.startswith("data: "):
                    continue
                data = json.loads(line.removeprefix("data: "))
                # `board` is the whole board; a `patch` replaces the sessions it carries.
                boards.append(data if kinds[-1] == "board" else apply_patch(boards[-1], data))
                if len(boards) == 1:  # buy between two pushes: the next one shows it
                    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
                    body = {"item_id": item_id, "quantity": 2}
                    assert http.post("/purchases", json=body, headers=headers).status_code == 201
                elif item_of(boards[-1], item_id)["held"] == 2 or len(boards) > 10:
                    break
    assert kinds[0] == "board" and set(kinds[1:]) == {"patch"}  # whole once, then what changed
    assert item_of(boards[0], item_id)["available"] == 50
    last = item_of(boards[-1], item_id)
    assert (last["available"], last["held"], last["participants"]) == (48, 2, 1)


@pytest.mark.engines("sqlite+memory", reason="the stream's ASGI side, on the embedded default")
def test_a_viewer_who_leaves_or_a_feed_that_closes_ends_the_stream(platform: Platform, sale: Sale) -> None:
    feed = BoardFeed(platform.deps, platform.showcase, interval_s=0.05)
    scope = {"type": "http", "method": "GET", "path": "/board/events", "headers": []}

    async def watch_until(end: str) -> list[bytes]:
        sent: list[bytes] = []
        pushed, leaving = asyncio.Event(), asyncio.Event()

        async def receive() -> dict[str, Any]:
            await leaving.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message.get("body", b""))
            if len(sent) >= 4:  # the head, the whole board, two patches
                pushed.set()

        stream = asyncio.ensure_future(BoardEvents(feed)(scope, receive, send))
        await pushed.wait()
        if end == "viewer":
            leaving.set()
        else:
            feed.close()
        await stream  # returns: no error, nothing left waiting
        return sent

    left = asyncio.run(watch_until("viewer"))
    assert left[1].startswith(b"retry: 50\n\n") and b"\nevent: board\n" in left[1]
    assert all(b"\nevent: patch\n" in push for push in left[2:4])
    closed = asyncio.run(watch_until("feed"))
    assert closed[-1] == b""  # the stream's last message ends the response
