"""The Redis ledger's state survives a restart of Redis with AOF, whether killed or shut down unsaved.

Each test runs its own redis-server (AOF with fsync on every write, no RDB) on a free port in a
temporary directory, stops it, starts it again on the same directory, and reads the ledger back
through the same ledger object: it must reconnect and load its scripts into the new process.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from flashsale.clock import ManualClock
from flashsale.ledger.redis import RedisLedger, redis_ledger_from_url
from tests.factories import terms
from tests.integration.redis_support import REDIS_URL

REDIS_SERVER = shutil.which("redis-server")
TTL = 60.0

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not REDIS_URL, reason="FLASHSALE_TEST_REDIS_URL is not set"),
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnRedis:
    """A redis-server process of this test, persisting every write to an AOF in `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        # fsync on every write: a write acknowledged before SIGKILL must be on disk.
        options = ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
                *options,
            ],
            stdout=subprocess.DEVNULL,
        )
        with redis.Redis(port=self.port) as probe:
            for _ in range(200):
                try:
                    if probe.ping():
                        return
                except redis.ConnectionError:  # not listening yet, or still loading the AOF
                    time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not come up")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def shutdown_nosave(self) -> None:
        assert self.process is not None
        # Without retries: redis-py would otherwise retry the dropped connection for seconds.
        with redis.Redis(port=self.port, retry=Retry(NoBackoff(), 0)) as client:
            client.shutdown(nosave=True)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


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
