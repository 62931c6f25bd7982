"""Admission's rate limits over HTTP (services/admission.py), on every engine: a bot gets its quota
and 429s with Retry-After while honest shoppers still buy; one address cannot buy through many
accounts past its limit; anonymous reads are paced per address; limits hold across app instances
sharing a Redis; a malformed limit refuses to start."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx2
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from flashsale.api.main import create_app
from flashsale.auth import mint_shopper_token
from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.config import Settings
from tests.engines import POSTGRES_REDIS
from tests.factories import open_sale

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py

BOT_REQUESTS, HONEST = 1_000, 100


@pytest.fixture
def item(platform: Platform) -> int:
    """An item on sale now with stock for every honest shopper (limit 2 each)."""
    return open_sale(platform, quota=1_000, per_user_limit=2, payment_window_s=900)


def limited(platform: Platform, **limits: str) -> FastAPI:
    """The app of `platform` with these rate limits (settings named without the `rate_limit_` prefix)."""
    update = {f"rate_limit_{kind}": limit for kind, limit in limits.items()}
    platform.settings = platform.settings.model_copy(update=update)
    return create_app(platform, start_jobs=False)


def minute_windows(started: float, ended: float) -> int:
    """How many of the limiter's minute windows (on the wall clock) a run from `started` to `ended` touched.

    The sliding window counter lets a limit's worth through in each: after a minute turns, the
    previous minute's hits count less and less, so a run that straddles it may be let in again.
    """
    return int(ended // 60) - int(started // 60) + 1


def client(app: FastAPI, address: str) -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=app, client=(address, 40_000))
    return httpx2.AsyncClient(transport=transport, base_url="http://shop")


async def buy(
    http: httpx2.AsyncClient, platform: Platform, clock: ManualClock, user: str, item: int
) -> httpx2.Response:
    secret = platform.settings.jwt_secret
    assert secret is not None
    headers = {
        "Authorization": f"Bearer {mint_shopper_token(secret, user, 3600, clock())}",
        "Idempotency-Key": str(uuid.uuid4()),
    }
    return await http.post("/purchases", json={"item_id": item, "quantity": 1}, headers=headers)


def test_a_bot_gets_its_quota_and_429s_while_honest_shoppers_buy(
    platform: Platform, clock: ManualClock, item: int
) -> None:
    app = limited(platform, purchase_per_shopper="5/minute")

    async def crowd() -> tuple[list[httpx2.Response], list[httpx2.Response]]:
        async with client(app, "10.0.0.66") as bot_http, client(app, "10.0.0.1") as honest_http:
            bot = [buy(bot_http, platform, clock, "bot", item) for _ in range(BOT_REQUESTS)]
            honest = [buy(honest_http, platform, clock, f"h{n}", item) for n in range(HONEST)]
            answers = await asyncio.gather(*bot, *honest)
            return answers[:BOT_REQUESTS], answers[BOT_REQUESTS:]

    started = time.time()
    bot, honest = asyncio.run(crowd())
    windows = minute_windows(started, time.time())
    statuses = Counter(r.status_code for r in bot)
    # At most 5 attempts a minute were let through: 5 in each of the limiter's minute windows the
    # crowd's run touched (a slow run that crosses a minute lets up to 5 more through after it).
    assert statuses[429] >= BOT_REQUESTS - 5 * windows
    assert 1 <= sum(n for status, n in statuses.items() if status != 429) <= 5 * windows
    refused = next(r for r in bot if r.status_code == 429)
    assert refused.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert all(r.status_code == 201 for r in honest), Counter(r.status_code for r in honest)
    level = platform.ledger.stock(item)
    assert level.available + level.held + level.sold == level.quota
    assert level.held <= HONEST + 2  # the bot held at most its per-user limit


def test_one_address_cannot_buy_past_its_limit_through_many_accounts(
    platform: Platform, clock: ManualClock, item: int
) -> None:
    app = limited(platform, purchase_per_client="20/minute")

    async def farm() -> tuple[list[httpx2.Response], httpx2.Response]:
        async with client(app, "10.0.0.7") as farm_http, client(app, "10.0.0.8") as other_http:
            accounts = [buy(farm_http, platform, clock, f"acct{n}", item) for n in range(60)]
            answers = await asyncio.gather(*accounts)
            return list(answers), await buy(other_http, platform, clock, "neighbour", item)

    started = time.time()
    answers, neighbour = asyncio.run(farm())
    windows = minute_windows(started, time.time())
    statuses = Counter(r.status_code for r in answers)
    # 20 in one minute window (exactly, unless the run crossed a minute: then a limit's worth more)
    assert statuses[201] == 60 - statuses[429] and 20 <= statuses[201] <= 20 * windows
    assert neighbour.status_code == 201  # another address is not held back by this one


def test_anonymous_reads_are_paced_per_address(platform: Platform, clock: ManualClock, item: int) -> None:
    app = limited(platform, read_per_client="10/minute")

    async def flood() -> tuple[Counter[int], int]:
        async with client(app, "10.0.0.9") as flooder, client(app, "10.0.0.10") as reader:
            answers = await asyncio.gather(*(flooder.get("/sessions") for _ in range(50)))
            return Counter(r.status_code for r in answers), (await reader.get("/sessions")).status_code

    started = time.time()
    flooded, other = asyncio.run(flood())
    windows = minute_windows(started, time.time())
    assert flooded[200] == 50 - flooded[429] and 10 <= flooded[200] <= 10 * windows
    assert other == 200


@pytest.mark.engines(POSTGRES_REDIS, reason="limits shared across processes live in Redis")
def test_a_limit_holds_across_app_instances_sharing_redis(
    platform: Platform, clock: ManualClock, item: int
) -> None:
    first, second = (limited(platform, purchase_per_shopper="6/minute") for _ in range(2))

    async def both() -> list[httpx2.Response]:
        async with client(first, "10.0.1.1") as a, client(second, "10.0.1.2") as b:
            calls = [buy(h, platform, clock, "bot", item) for h in (a, b) for _ in range(30)]
            return list(await asyncio.gather(*calls))

    started = time.time()
    statuses = Counter(r.status_code for r in asyncio.run(both()))
    windows = minute_windows(started, time.time())
    # six attempts a minute in all, whichever worker they reached
    assert 6 <= 60 - statuses[429] <= 6 * windows


def test_a_malformed_limit_refuses_to_start_naming_it() -> None:
    with pytest.raises(ValidationError, match="rate_limit_purchase_per_shopper"):
        Settings(rate_limit_purchase_per_shopper="five per second")
