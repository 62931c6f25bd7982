"""A read flood, run as its own process: `python -m bench.flood --port P --connections 32 --result R`.

Each connection sends `GET /sessions` (anonymous, no `If-None-Match`: the worst case, a full body
every time) over keep-alive as fast as the server answers, until the process gets SIGTERM or
SIGINT. With `--stream` each connection instead opens one Server-Sent Events stream (`GET
/board/events`: a live-board viewer) and reads it for as long as it runs, counting events
(`board` and `patch`). It
prints `ready` once every connection has had its first answer (or event), so the caller can start
measuring with the flood already running, then writes how many requests (or events) it saw and
their statuses as JSON.

With `--room ITEM --shoppers N` it is a waiting room's crowd instead: N shoppers join the item's
room (`POST /items/ITEM/queue`, before `ready`), then poll it with their tickets
(`GET /items/ITEM/queue`) whenever the last answer's `poll_after_s` says, as their pages would;
with `--flat-out` as fast as the server answers instead, as a scraper would.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from bench.loadgen import SECRET_ENV, KeepAlive, _run
from flashsale.auth import mint_shopper_token
from flashsale.services.sale_tokens import sale_token_key
from flashsale.services.waiting_room import room_ticket


def encode(path: str) -> bytes:
    """Return the bytes of one anonymous GET."""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n".encode()


async def flood(port: int, path: str, connections: int) -> tuple[float, Counter[int]]:
    """GET `path` on `connections` connections until SIGTERM/SIGINT; return the seconds and statuses."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    request = encode(path)
    statuses: Counter[int] = Counter()
    first_answers = asyncio.Barrier(connections + 1)

    async def connection() -> None:
        async with KeepAlive(port) as conn:
            statuses[await conn.exchange(request)] += 1
            await first_answers.wait()
            while not stop.is_set():
                statuses[await conn.exchange(request)] += 1

    started = time.perf_counter()
    tasks = [asyncio.ensure_future(connection()) for _ in range(connections)]
    await first_answers.wait()
    print("ready", flush=True)
    await asyncio.gather(*tasks)
    return time.perf_counter() - started, statuses


async def watch(port: int, path: str, connections: int) -> tuple[float, Counter[int], int]:
    """Hold `connections` event streams on `path` open until told to stop.

    Return the seconds, the statuses and how many board events the viewers received.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    statuses: Counter[int] = Counter()
    events = [0]
    first_events = asyncio.Barrier(connections + 1)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()

    async def viewer() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            statuses[int(head.split(b" ", 2)[1])] += 1
            first = True
            while chunk := await reader.read(65536):
                events[0] += chunk.count(b"\nevent: ")  # `board` (the whole board) or `patch`
                if first and b"event: board" in chunk:
                    first = False
                    await first_events.wait()
        finally:
            writer.close()

    started = time.perf_counter()
    tasks = [asyncio.ensure_future(viewer()) for _ in range(connections)]
    await first_events.wait()
    print("ready", flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return time.perf_counter() - started, statuses, events[0]


async def waiting(
    port: int, item: int, shoppers: int, connections: int, *, flat_out: bool = False
) -> tuple[float, Counter[int], int]:
    """Join `shoppers` to the item's room, print `ready`, then poll as the answers say until told to stop.

    Each shopper asks again `poll_after_s` after each answer (the join's included), as its page
    would, and stops once it has no more to wait for (admitted, its window over, the room closed).
    With `flat_out` each connection instead polls its shoppers' tickets in turn as fast as the server
    answers, ignoring `poll_after_s` (a client that scrapes the room): the room answers 429 to the
    polls that come too soon. Return the seconds polled, the statuses of joins and polls, and the
    number of polls.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    secret = os.environ[SECRET_ENV]
    now = time.time()
    who = [f"waiting{n}" for n in range(shoppers)]
    # The server's tickets are HMACs under a key derived from its JWT secret, which the bench holds.
    key = sale_token_key(None, secret)
    joins = [
        f"POST /items/{item}/queue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
        f"Authorization: Bearer {mint_shopper_token(secret, s, 3600, now)}\r\n\r\n".encode()
        for s in who
    ]
    polls = [
        f"GET /items/{item}/queue HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Queue-Ticket: {room_ticket(key, item, s)}\r\n\r\n".encode()
        for s in who
    ]
    statuses: Counter[int] = Counter()
    due: list[tuple[float, int]] = []  # (when, shopper): each shopper's next poll
    joined = asyncio.Barrier(connections + 1)
    polled = [0]

    async def ask(conn: KeepAlive, request: bytes, shopper: int) -> None:
        status, body = await conn.exchange_body(request)
        statuses[status] += 1
        wait = json.loads(body).get("poll_after_s") if status == 200 else None
        if wait is not None:
            heapq.heappush(due, (loop.time() + wait, shopper))

    async def connection(n: int) -> None:
        async with KeepAlive(port) as conn:
            for shopper in range(n, shoppers, connections):
                await ask(conn, joins[shopper], shopper)
            await joined.wait()
            mine = range(n, shoppers, connections)
            while flat_out and not stop.is_set():
                for shopper in mine:
                    statuses[await conn.exchange(polls[shopper])] += 1
                    polled[0] += 1
                    if stop.is_set():
                        break
            while not stop.is_set():
                if not due:
                    await asyncio.sleep(0.1)
                    continue
                when, shopper = heapq.heappop(due)  # claimed: no other connection polls it meanwhile
                await asyncio.sleep(max(0.0, when - loop.time()))
                await ask(conn, polls[shopper], shopper)
                polled[0] += 1

    tasks = [asyncio.ensure_future(connection(n)) for n in range(connections)]
    await joined.wait()
    print("ready", flush=True)
    started = time.perf_counter()
    await asyncio.gather(*tasks)
    return time.perf_counter() - started, statuses, polled[0]


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/sessions")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--stream", action="store_true", help="hold event streams open instead of GETs")
    parser.add_argument("--result", type=Path, required=True, help="where to write the JSON result")
    parser.add_argument("--room", type=int, help="a waiting room's crowd on this item instead")
    parser.add_argument("--shoppers", type=int, default=10_000, help="waiting shoppers (with --room)")
    parser.add_argument(
        "--flat-out", action="store_true", help="with --room: poll as fast as answered, ignoring poll_after_s"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Flood until told to stop, then write seconds, requests and statuses."""
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.room is not None:
        crowd = waiting(args.port, args.room, args.shoppers, args.connections, flat_out=args.flat_out)
        seconds, statuses, seen = _run(crowd)
    elif args.stream:
        seconds, statuses, seen = _run(watch(args.port, args.path, args.connections))
    else:
        seconds, statuses = _run(flood(args.port, args.path, args.connections))
        seen = sum(statuses.values())
    by_status = {str(status): n for status, n in statuses.items()}
    args.result.write_text(json.dumps({"seconds": seconds, "requests": seen, "statuses": by_status}))


if __name__ == "__main__":
    main()
