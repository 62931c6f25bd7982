"""A rehearsal's latency runs from each request's intended send time, so a server that falls behind
shows its queue in the latencies of the arrivals that came later (no coordinated omission)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from flashsale.rehearsal.openloop import LatencySummary, Recorder, run_open_loop
from flashsale.rehearsal.storefront import Storefront
from flashsale.rehearsal.wire import ConnectionPool

STALL_S = 0.05  # the server answers one request at a time, each after this long
ARRIVALS = 10
GAP_S = 0.005  # arrivals are scheduled this far apart: ten times faster than the server answers


async def stalling_server() -> tuple[asyncio.Server, int]:
    """An HTTP server that serves one request at a time and takes STALL_S over each."""
    one_at_a_time = asyncio.Lock()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        await reader.readexactly(length)
        async with one_at_a_time:
            await asyncio.sleep(STALL_S)
        body = b'{"ok": true}'
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_later_arrivals_count_the_time_they_queued_behind_a_stalled_server() -> None:
    server, port = await stalling_server()
    recorder = Recorder()
    http = ConnectionPool(f"http://127.0.0.1:{port}", size=ARRIVALS, timeout_s=10)
    async with server:
        front = Storefront(http, {"u1": "token"}, recorder, "pass")

        def arrival(n: int) -> Callable[[float], Coroutine[Any, Any, None]]:
            async def begin(intended: float) -> None:
                await front.send("probe", intended, "u1", "/probe", key=f"k{n}")

            return begin

        start = recorder.clock() + 0.05
        await run_open_loop(
            [(n * GAP_S, arrival(n)) for n in range(ARRIVALS)], start=start, clock=recorder.clock
        )

    samples = recorder.samples
    assert len(samples) == ARRIVALS and {s.outcome for s in samples} == {"ok"}
    assert sorted(s.intended - start for s in samples) == pytest.approx([n * GAP_S for n in range(ARRIVALS)])
    # The server finished the j-th answer no sooner than (j + 1) stalls after the first arrival, so
    # the last answer came at least ARRIVALS stalls in; the last arrival was meant for 9 gaps in.
    # Timed from when each request actually got through (a closed loop), each would be one stall.
    latencies = sorted(s.latency for s in samples)
    assert latencies[-1] >= ARRIVALS * STALL_S - (ARRIVALS - 1) * GAP_S
    queued = sum((j + 1) * STALL_S for j in range(ARRIVALS)) - sum(n * GAP_S for n in range(ARRIVALS))
    assert sum(latencies) >= queued - 1e-6
    assert LatencySummary.of(samples).p99_s == pytest.approx(latencies[-1], abs=1e-5)


async def test_the_pool_reads_chunked_answers_keeps_connections_and_replaces_one_the_server_closed() -> None:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        for answered in range(2):  # two answers per connection, then the server closes it idle
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0]))
            chunks = [b'{"code": ', b'"SOLD_OUT", "n": %d}' % answered]
            body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
            writer.write(b"HTTP/1.1 409 Conflict\r\ntransfer-encoding: chunked\r\n\r\n" + body)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    pool = ConnectionPool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", size=1, timeout_s=10)
    async with server:
        replies = []
        for _ in range(4):
            replies.append(
                await pool.post("/purchases", headers={"Idempotency-Key": "k"}, body={"item_id": 1})
            )
        await pool.close()

    assert [(r.status, r.json()) for r in replies] == [
        (409, {"code": "SOLD_OUT", "n": n}) for n in (0, 1, 0, 1)
    ]
    # Kept alive for two answers; the third request met the connection the server had closed (EOF
    # or a reset, whichever came first) and went again, unseen, on a new one.
    assert connections == 2
