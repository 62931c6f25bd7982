"""`flashsale serve` drops clients that send too slowly, keeps healthy keep-alive ones, caps connections."""

from __future__ import annotations

import pickle
import select
import socket
import time
from collections.abc import Iterator

import pytest

from flashsale.api.serving import GuardedHttpToolsProtocol, ReadDeadlines, guarded_http
from flashsale.config import Settings
from tests.integration.edge_server import Served, read_response, read_until_closed, serving

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 2
MAX_CONNECTIONS = 8
# Bounds that only prove a deadline fired (not before it, and well before "never"); no tighter timing.
NOT_BEFORE_S = 0.8
GIVE_UP_S = 10.0
GET_SESSIONS = b"GET /sessions HTTP/1.1\r\nHost: flashsale\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(
        tmp_path_factory.mktemp("edge-serving"),
        header_timeout_s=str(HEADER_TIMEOUT_S),
        body_timeout_s=str(BODY_TIMEOUT_S),
        keep_alive_s=str(KEEP_ALIVE_S),
        max_connections=str(MAX_CONNECTIONS),
    ) as served:
        yield served


def trickle(sock: socket.socket, data: bytes, *, every_s: float = 0.2) -> tuple[bytes, float]:
    """Send `data` a byte at a time until the server answers or closes; return what it sent back and when."""
    started = time.monotonic()
    for byte in data:
        readable, _, _ = select.select([sock], [], [], every_s)
        if readable:
            break
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
    else:
        raise AssertionError("the server read the whole trickled request")
    return read_until_closed(sock), time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(server: Served) -> None:
    with server.connect(timeout_s=GIVE_UP_S) as sock:
        started = time.monotonic()
        answer = read_until_closed(sock)
        waited = time.monotonic() - started
    assert answer == b""  # nothing was asked, so nothing is answered
    assert NOT_BEFORE_S <= waited < GIVE_UP_S


def test_a_request_line_and_headers_trickled_slowly_get_408_and_the_close(server: Served) -> None:
    # Slowloris: a byte every 0.2 s keeps the connection busy but never finishes the headers.
    request = b"GET /sessions HTTP/1.1\r\nHost: flashsale\r\nX-Slow: " + b"a" * 200
    with server.connect(timeout_s=GIVE_UP_S) as sock:
        answer, waited = trickle(sock, request)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"connection: close" in answer.lower()
    assert NOT_BEFORE_S <= waited < GIVE_UP_S


@pytest.mark.parametrize("how", ["stalls", "trickles"])
def test_a_body_sent_too_slowly_is_dropped_at_the_body_timeout(server: Served, how: str) -> None:
    head = b"POST /purchases HTTP/1.1\r\nHost: flashsale\r\nContent-Type: application/json\r\n"
    with server.connect(timeout_s=GIVE_UP_S) as sock:
        sock.sendall(head + b"Content-Length: 500\r\n\r\n" + b'{"item_id": 1,')
        if how == "stalls":
            started = time.monotonic()
            answer, waited = read_until_closed(sock), time.monotonic() - started
        else:
            answer, waited = trickle(sock, b" " * 400)
    assert answer == b""  # dropped: the app saw the client go away
    assert NOT_BEFORE_S <= waited < GIVE_UP_S
    assert "Traceback" not in server.log.read_text(errors="replace")


def test_keep_alive_requests_on_one_connection_outlive_the_header_timeout(server: Served) -> None:
    started = time.monotonic()
    with server.connect() as sock:
        for _ in range(5):
            sock.sendall(GET_SESSIONS)
            status, headers, _ = read_response(sock)
            assert status == 200 and headers.get("connection") != "close"
            time.sleep(0.4)  # idle, but less than the keep-alive timeout
    assert time.monotonic() - started > 2 * HEADER_TIMEOUT_S  # one connection, longer than one deadline


def test_requests_beyond_max_connections_get_503_and_service_resumes_below_it(server: Served) -> None:
    idle = [server.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.1)  # let the server accept them; the header deadline drops them only after 1 s
        with server.connect() as sock:
            sock.sendall(GET_SESSIONS)
            status, _, _ = read_response(sock)
        assert status == 503
    finally:
        for sock in idle:
            sock.close()
    for _ in range(50):  # the server notices the closes within a loop turn or two
        with server.connect() as sock:
            sock.sendall(GET_SESSIONS)
            status, _, _ = read_response(sock)
        if status == 200:
            return
        time.sleep(0.05)
    raise AssertionError("still 503 after the idle connections closed")


def test_the_protocol_factory_travels_to_spawned_workers() -> None:
    # `serve --workers N` spawns processes and pickles uvicorn's config, protocol factory included.
    factory = pickle.loads(pickle.dumps(guarded_http(Settings(header_timeout_s=3, body_timeout_s=7))))
    assert factory.func is GuardedHttpToolsProtocol
    assert factory.keywords == {"deadlines": ReadDeadlines(header_s=3, body_s=7)}
