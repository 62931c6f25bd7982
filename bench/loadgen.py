"""The HTTP load generator, run as its own process: `python -m bench.loadgen --port P ...`.

It replays the benchmark crowd as `POST /purchases` with a bearer token per user and an
Idempotency-Key per request over many keep-alive connections, and writes what it saw as JSON.

It speaks HTTP/1.1 over asyncio streams instead of using httpx: on the 2-core machine these figures
come from, httpx spent more CPU per request than the server (a few hundred req/s), so it would have
measured itself. Requests are encoded before the clock starts; only sending, reading the status
line and the body are timed. It runs on uvloop when installed (uvicorn[standard] brings it): the
load generator shares the cores with the server, and uvloop spends less CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from bench.workload import Shape
from flashsale.auth import mint_shopper_token

SECRET_ENV = "FLASHSALE_BENCH_JWT_SECRET"
TOKEN_TTL_S = 3600

T = TypeVar("T")


def encode(*, item_id: int, token: str, key: str) -> bytes:
    """Return the bytes of one purchase request."""
    return encode_request("POST", "/purchases", token, {"item_id": item_id, "quantity": 1}, key)


class KeepAlive:
    """One client connection: send a request, read its answer, reopen when the server closes."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def __aenter__(self) -> KeepAlive:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.writer.close()

    async def exchange(self, payload: bytes) -> int:
        """Send one request and return the status of its answer."""
        return (await self.exchange_body(payload))[0]

    async def exchange_body(self, payload: bytes) -> tuple[int, bytes]:
        """Send one request and return the status and the body of its answer."""
        self.writer.write(payload)
        status, close, body = await _read_response(self.reader)
        if close:
            self.writer.close()
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return status, body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    return status, close, await reader.readexactly(length)


def encode_request(method: str, path: str, token: str, body: object | None, key: str | None = None) -> bytes:
    """Return the bytes of one JSON request of a shopper."""
    data = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    if key is not None:
        head += f"Idempotency-Key: {key}\r\n"
    return (head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data


# A step of a journey: the request's bytes, or how to make them from the previous answer's body.
Step = bytes | Callable[[bytes], bytes]


def checkout_journey(item_ids: list[int], token: str, key: str, coupon_wave: int | None = None) -> list[Step]:
    """A shopper's checkout: one unit of each item into the cart, then POST /checkouts.

    With `coupon_wave`, the shopper then claims a coupon of that wave (`POST /coupons/claims`) and
    checks out with it (the checkout's body is made from the claim's answer).
    """
    adds = [encode_request("POST", "/cart/items", token, {"item_id": i, "quantity": 1}) for i in item_ids]
    if coupon_wave is None:
        return [*adds, encode_request("POST", "/checkouts", token, None, key)]
    claim = encode_request("POST", "/coupons/claims", token, {"wave_id": coupon_wave}, f"claim-{key}")

    def checkout(claimed: bytes) -> bytes:
        body = {"coupon_ids": [json.loads(claimed)["id"]]}
        return encode_request("POST", "/checkouts", token, body, key)

    return [*adds, claim, checkout]


async def replay(
    port: int, payloads: list[bytes] | list[list[Step]], connections: int
) -> tuple[float, list[int], list[int]]:
    """Send every payload once over `connections` keep-alive connections.

    A payload may be a list of requests sent one after another on one connection (a journey);
    its latency is the whole journey's and its status the first failure's, else the last one's.
    Return the wall time, and each payload's latency (ns) and status, in payload order.
    """
    latencies = [0] * len(payloads)
    statuses = [0] * len(payloads)
    queue = iter(range(len(payloads)))
    clock = time.perf_counter_ns

    async def connection() -> None:
        async with KeepAlive(port) as conn:
            for i in queue:
                payload = payloads[i]
                t0 = clock()
                body = b""
                for step in payload if isinstance(payload, list) else [payload]:
                    # A step may be made from the previous answer (the coupon a claim gave).
                    request = step(body) if callable(step) else step
                    statuses[i], body = await conn.exchange_body(request)
                    if statuses[i] >= 300:
                        break
                latencies[i] = clock() - t0

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return time.perf_counter() - started, latencies, statuses


def _run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on uvloop, or on asyncio's own loop without it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--items", type=int, required=True, help="items in the crowd's shape")
    parser.add_argument("--item-ids", required=True, help="comma-separated ids the shape's items map to")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--key-prefix", default="", help="makes Idempotency-Keys unique to this run")
    parser.add_argument("--result", type=Path, required=True, help="where to write the JSON result")
    parser.add_argument(
        "--checkout",
        action="store_true",
        help="each shopper puts one unit of every item id in the cart and checks out, instead of buying",
    )
    parser.add_argument(
        "--coupon-wave",
        type=int,
        default=None,
        help="with --checkout: each shopper claims a coupon and uses it",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Encode the crowd, replay it, and write seconds, latencies, statuses and granted indices."""
    args = parse(sys.argv[1:] if argv is None else argv)
    secret = os.environ[SECRET_ENV]
    item_ids = [int(i) for i in args.item_ids.split(",")]
    crowd = Shape(args.requests, args.items).crowd()
    now = time.time()
    tokens = {
        u: mint_shopper_token(secret, u, TOKEN_TTL_S, now) for u in dict.fromkeys(r.user_id for r in crowd)
    }
    payloads: list[bytes] | list[list[Step]]
    prefix = args.key_prefix
    if args.checkout:
        payloads = [
            checkout_journey(item_ids, token, prefix + user, args.coupon_wave)
            for user, token in tokens.items()
        ]
    else:
        payloads = [
            encode(item_id=item_ids[r.item_id - 1], token=tokens[r.user_id], key=prefix + r.request_id)
            for r in crowd
        ]
    seconds, latencies, statuses = _run(replay(args.port, payloads, args.connections))
    args.result.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "latencies_ns": latencies,
                "statuses": dict(Counter(map(str, statuses))),
                "granted": [i for i, status in enumerate(statuses) if status == 201],
            }
        )
    )


if __name__ == "__main__":
    main()
