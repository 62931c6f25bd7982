"""Request bodies are capped at the edge: 413 PAYLOAD_TOO_LARGE, before the body is read or auth runs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from tests.conftest import Sale
from tests.integration.api_support import Api, assert_refused, open_api
from tests.integration.edge_server import Served, read_response, serving

CAP = 64 * 1024  # the default FLASHSALE_MAX_BODY_BYTES
CALLBACK = "/payments/sandbox/callback"
MIB = 1024 * 1024
RSS_GROWTH_LIMIT_KIB = 16 * 1024


def purchase_body(item_id: int, size: int) -> bytes:
    """Return a valid purchase body padded with JSON whitespace to exactly `size` bytes."""
    body = json.dumps({"item_id": item_id, "quantity": 1}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def pieces(body: bytes, size: int = 4096) -> Iterator[bytes]:
    """Yield `body` in pieces, so the client sends it chunked, without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def megabytes(total: int) -> Iterator[bytes]:
    """Yield `total` MiB of filler one MiB at a time: the test never holds the whole body."""
    block = b"x" * MIB
    for _ in range(total):
        yield block


# In process: the boundary, with and without a Content-Length


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def _buy_headers(api: Api) -> dict[str, str]:
    return {**api.shopper("alice"), "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}


def test_a_purchase_body_at_the_cap_is_accepted_and_one_byte_more_is_refused_413(
    api: Api, sale: Sale
) -> None:
    at_cap = api.client.post(
        "/purchases", content=purchase_body(sale.phone_id, CAP), headers=_buy_headers(api)
    )
    assert at_cap.status_code == 201, at_cap.text

    over = api.client.post(
        "/purchases", content=purchase_body(sale.earbuds_id, CAP + 1), headers=_buy_headers(api)
    )
    assert_refused(over, 413, "PAYLOAD_TOO_LARGE")
    assert over.headers["connection"] == "close"
    assert api.platform.ledger.stock(sale.earbuds_id).held == 0


def test_a_chunked_purchase_body_is_counted_as_it_streams_and_refused_once_past_the_cap(
    api: Api, sale: Sale
) -> None:
    at_cap = api.client.post(
        "/purchases", content=pieces(purchase_body(sale.phone_id, CAP)), headers=_buy_headers(api)
    )
    assert at_cap.status_code == 201, at_cap.text

    over = api.client.post(
        "/purchases", content=pieces(purchase_body(sale.earbuds_id, CAP + 1)), headers=_buy_headers(api)
    )
    assert_refused(over, 413, "PAYLOAD_TOO_LARGE")
    assert over.headers["connection"] == "close"
    assert api.platform.ledger.stock(sale.earbuds_id).held == 0


def test_the_payment_callback_reading_raw_bytes_is_capped_too(api: Api) -> None:
    # Within the cap the callback is judged on its signature; past it, refused before that.
    within = api.client.post(CALLBACK, content=pieces(b"{" + b" " * (CAP - 2) + b"}"))
    assert_refused(within, 400, "INVALID_SIGNATURE")
    assert_refused(api.client.post(CALLBACK, content=pieces(b" " * (CAP + 1))), 413, "PAYLOAD_TOO_LARGE")
    assert_refused(api.client.post(CALLBACK, content=b" " * (CAP + 1)), 413, "PAYLOAD_TOO_LARGE")


def test_an_oversized_body_is_refused_before_auth(api: Api) -> None:
    refused = api.client.post(
        "/purchases", content=b" " * (CAP + 1), headers={"Content-Type": "application/json"}
    )
    assert_refused(refused, 413, "PAYLOAD_TOO_LARGE")


# Against a real server: memory and the order of refusals


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("edge-limits")) as served:
        yield served


@pytest.mark.parametrize("path", ["/purchases", CALLBACK])
def test_a_300_mb_streamed_body_gets_413_and_the_server_stays_small(server: Served, path: str) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
        # Warm the route up first, so what is measured is the big body, not the first request.
        client.post(path, content=b"{}", headers={"Content-Type": "application/json"})
        before = server.rss_kib()
        refused = client.post(path, content=megabytes(300), headers={"Content-Type": "application/json"})
        grown = server.rss_kib() - before
    assert refused.status_code == 413, refused.text
    assert refused.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert grown < RSS_GROWTH_LIMIT_KIB, f"server RSS grew by {grown} KiB"


def test_a_declared_100_mb_body_without_auth_is_refused_413_before_it_is_sent(server: Served) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /purchases HTTP/1.1\r\nHost: flashsale\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (100 * MIB)
        )
        # Not one byte of the body is sent: the answer must come from the headers alone.
        status, headers, body = read_response(sock)
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["code"] == "PAYLOAD_TOO_LARGE"


def test_a_declared_body_over_the_cap_is_refused_without_100_continue(server: Served) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /payments/sandbox/callback HTTP/1.1\r\nHost: flashsale\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % (CAP + 1)
        )
        status, _, body = read_response(sock)
    assert status == 413  # and not "100 Continue", which would invite the body
    assert json.loads(body)["code"] == "PAYLOAD_TOO_LARGE"
