"""A lean HTTP/1.1 client for the rehearsal's shoppers: keep-alive connections over asyncio streams.

A rehearsal's client must not be what it measures. httpx's connection pool spends time quadratic in
the requests waiting for a connection, so an open-loop burst of a few thousand arrivals kept it
busy while the server idled (the bench's load generator met the same, see bench/loadgen.py).
Here a request waits for one of `size` connections on a FIFO semaphore (that wait counts in its
latency, as it should) and then costs a write and a read.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class WireError(Exception):
    """The exchange failed before a whole answer arrived; `kind` names how (for errors by code).

    `unanswered`: not one byte of an answer came (a kept-alive connection the server had closed).
    """

    def __init__(self, kind: str, *, unanswered: bool = False) -> None:
        super().__init__(kind)
        self.kind = kind
        self.unanswered = unanswered


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body parsed as JSON (ValueError if it is not)."""
        return json.loads(self.body)


class ConnectionPool:
    """At most `size` keep-alive connections to the origin of `url`; one request at a time on each."""

    def __init__(self, url: str, *, size: int, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._authority = parts.netloc
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Connection] = []

    async def post(self, path: str, *, headers: dict[str, str], body: Any = None) -> Reply:
        """POST `body` as JSON (no body when None) and return the answer; WireError if none came.

        A kept-alive connection the server closed meanwhile is replaced once, before any byte of an
        answer was read (the request is sent again; the Idempotency-Key makes that safe).
        """
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"POST {path} HTTP/1.1", f"Host: {self._authority}", f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload
        async with self._slots:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._open()
            try:
                reply, keep = await self._exchange(conn, request)
            except WireError as exc:
                if not (reused and exc.unanswered):
                    raise
                conn = await self._open()
                reply, keep = await self._exchange(conn, request)
            if keep:
                self._idle.append(conn)
            else:
                conn[1].close()
            return reply

    async def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            self._idle.pop()[1].close()

    async def _open(self) -> Connection:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await asyncio.open_connection(self._host, self._port, ssl=self._ssl)
        except (OSError, TimeoutError) as exc:
            raise WireError(f"connect: {type(exc).__name__}") from exc

    async def _exchange(self, conn: Connection, request: bytes) -> tuple[Reply, bool]:
        reader, writer = conn
        try:
            async with asyncio.timeout(self._timeout_s):
                writer.write(request)
                return await _read_reply(reader)
        except asyncio.IncompleteReadError as exc:
            writer.close()
            raise WireError("IncompleteRead", unanswered=not exc.partial) from exc
        except ConnectionError as exc:
            writer.close()
            raise WireError(type(exc).__name__, unanswered=True) from exc
        except TimeoutError as exc:
            writer.close()
            raise WireError("TimeoutError") from exc
        except (asyncio.LimitOverrunError, ValueError) as exc:
            writer.close()
            raise WireError("malformed answer") from exc


async def _read_reply(reader: asyncio.StreamReader) -> tuple[Reply, bool]:
    """Read one answer; return it and whether the connection may be used again."""
    status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    version, status = status_line.split(" ", 2)[:2]
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")  # the empty trailer
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif int(status) in (204, 304):
        body = b""
    else:  # neither length nor chunks: the body runs to the end of the connection
        body, headers["connection"] = await reader.read(), "close"
    close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
    return Reply(int(status), headers, body), not close
