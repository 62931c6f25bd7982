"""The Redis ledger's state survives a restart of Redis with AOF, whether killed or shut down unsaved.

Each test runs its own redis-server (AOF with fsync on every write, no RDB) on a free port in a
temporary directory, stops it, starts it again on the same directory, and reads the ledger back
through the same ledger object: it must reconnect and load its scripts into the new process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flashsale.clock import ManualClock
from flashsale.ledger.redis import RedisLedger, redis_ledger_from_url
from tests.factories import terms
from tests.integration.servers import OwnRedis

TTL = 60.0

pytestmark = [pytest.mark.redis, pytest.mark.redis_server]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OwnRedis]:
    own = OwnRedis(tmp_path)
    own.start()
    yield own
    own.stop()


@pytest.fixture
def ledger(server: OwnRedis, clock: ManualClock) -> Iterator[RedisLedger]:
    ledger = redis_ledger_from_url(f"{server.url}?prefix=fs-restart&buckets=2", clock)
    yield ledger
    ledger.close()


def snapshot(ledger: RedisLedger, hold_ids: list[str]) -> tuple[object, ...]:
    """Everything a reader can see of the sale."""
    return (
        ledger.stock(1),
        [ledger.get_hold(h) for h in hold_ids],
        [ledger.used_by(1, u) for u in ("u0", "u1", "u2", "u3")],
        ledger.next_expiry(),
        ledger.client.xrange(ledger.stream_key),
    )


@pytest.mark.parametrize(
    "stop", [OwnRedis.kill, OwnRedis.shutdown_nosave], ids=["sigkill", "shutdown-nosave"]
)
def test_counters_holds_keys_and_the_stream_survive_a_restart(
    server: OwnRedis, ledger: RedisLedger, clock: ManualClock, stop: object
) -> None:
    ledger.configure(terms(1, quota=10, per_user_limit=3, hold_ttl_s=TTL))
    holds = [
        ledger.reserve(item_id=1, user_id=f"u{n}", qty=q, request_id="k").hold
        for n, q in enumerate((1, 2, 3, 2))
    ]
    hold_ids = [h.hold_id for h in holds if h is not None]
    assert len(hold_ids) == 4
    ledger.confirm(hold_ids[0])
    ledger.release(hold_ids[1])
    before = snapshot(ledger, hold_ids)

    stop(server)  # type: ignore[operator]
    server.start()

    assert snapshot(ledger, hold_ids) == before
    replay = ledger.reserve(item_id=1, user_id="u2", qty=3, request_id="k")
    assert replay.replayed and replay.hold is not None and replay.hold.hold_id == hold_ids[2]
    assert ledger.reserve(item_id=1, user_id="u2", qty=1, request_id="more").code == "LIMIT_EXCEEDED"
    late = ledger.reserve(item_id=1, user_id="u9", qty=1, request_id="k").hold
    assert late is not None
    assert ledger.client.xlen(ledger.stream_key) == 5
    clock.advance(TTL)
    assert {h.hold_id for h in ledger.expire_due()} == {*hold_ids[2:], late.hold_id}
    assert ledger.stock(1).available == 9
