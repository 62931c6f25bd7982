"""A read flood, run as its own process: `python -m bench.flood --port P --connections 32 --result R`.

Each connection sends `GET /sessions` (anonymous, no `If-None-Match`: the worst case, a full body
every time) over keep-alive as fast as the server answers, until the process gets SIGTERM or
SIGINT. It prints `ready` once every connection has had its first answer, so the caller can start
measuring with the flood already running, then writes how many requests it sent, their statuses
and the bytes read as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from bench.loadgen import KeepAlive, _run


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


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/sessions")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--result", type=Path, required=True, help="where to write the JSON result")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Flood until told to stop, then write seconds, requests and statuses."""
    args = parse(sys.argv[1:] if argv is None else argv)
    seconds, statuses = _run(flood(args.port, args.path, args.connections))
    args.result.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "requests": sum(statuses.values()),
                "statuses": {str(s): n for s, n in statuses.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
