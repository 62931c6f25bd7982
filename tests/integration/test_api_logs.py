"""Structured logs, one line per event (JSON or key=value), and `flashsale serve` checking readiness."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.logs import EventFormatter
from tests.conftest import Sale
from tests.integration.api_support import Api, open_api
from tests.integration.edge_server import SECRETS, SERVE, serving
from tests.integration.redis_support import redis_ledgers, with_query
from tests.integration.servers import free_port
from tests.services import REDIS_URL


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def capture(json_lines: bool) -> Iterator[io.StringIO]:
    """Route flashsale's INFO events through the formatter into a buffer for the test's duration."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(EventFormatter(json_lines=json_lines))
    logger = logging.getLogger("flashsale")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    yield from capture(json_lines=True)


@pytest.fixture
def plain_log() -> Iterator[io.StringIO]:
    yield from capture(json_lines=False)


def test_a_purchase_logs_one_json_object_for_its_decision_and_one_for_its_request(
    api: Api, sale: Sale, json_log: io.StringIO
) -> None:
    bought = api.buy("alice", sale.phone_id)
    refused = api.buy("alice", sale.phone_id)
    assert (bought.status_code, refused.status_code) == (201, 409)

    events = [json.loads(line) for line in json_log.getvalue().splitlines()]

    purchases = [e for e in events if e["event"] == "purchase"]
    assert [(p["outcome"], p["item_id"], p["order_id"]) for p in purchases] == [
        ("created", sale.phone_id, bought.json()["id"]),
        ("LIMIT_EXCEEDED", sale.phone_id, None),
    ]
    requests = [e for e in events if e["event"] == "request"]
    assert [(r["method"], r["route"], r["status"]) for r in requests] == [
        ("POST", "/purchases", 201),
        ("POST", "/purchases", 409),
    ]
    assert all(r["duration_ms"] > 0 and r["level"] == "info" and r["ts"] for r in requests)


def test_plain_lines_are_key_value_pairs_with_awkward_values_quoted(
    api: Api, sale: Sale, plain_log: io.StringIO
) -> None:
    assert api.client.get(f"/orders/{'x' * 24}", headers=api.shopper("alice")).status_code == 404
    logging.getLogger("flashsale.test").info("note", extra={"flashsale_fields": {"said": 'a "b" = c'}})

    request_line, note_line = plain_log.getvalue().splitlines()

    assert " event=request method=GET route=/orders/{order_id} status=404 duration_ms=" in request_line
    assert note_line.endswith(r'event=note said="a \"b\" = c"')


def run_serve(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", SERVE, "serve", "--port", str(free_port())]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_serve_refuses_to_start_when_neither_store_nor_ledger_answers(tmp_path: Path) -> None:
    nobody = free_port()  # nothing listens there
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")},
        **SECRETS,
        "FLASHSALE_DATA_DIR": str(tmp_path),
        "FLASHSALE_BACKEND": "redis",
        "FLASHSALE_REDIS_URL": f"redis://127.0.0.1:{nobody}/0",
        "FLASHSALE_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{nobody}/flashsale",
        "FLASHSALE_LOG_JSON": "true",
    }

    done = run_serve(env, tmp_path)

    assert done.returncode == 1, done.stderr
    said = " ".join(done.stderr.split())  # the refusal is wrapped to the terminal's width
    assert "cannot start: store (OperationalError), ledger (ConnectionError) not reachable" in said
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    outcomes = {e["check"]: e["ok"] for e in events if e["event"] == "readiness"}
    assert outcomes == {"store": False, "ledger": False, "order_writer": False}


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_a_served_process_is_ready_answers_metrics_and_logs_only_json_lines(tmp_path: Path) -> None:
    with serving(tmp_path, log_json="true") as server:
        health, ready, metrics = (get(server.port, path) for path in ("/healthz", "/readyz", "/metrics"))

    assert health == (200, b'{"status":"ok"}')
    assert ready[0] == 200 and json.loads(ready[1])["status"] == "ready"
    assert metrics[0] == 200 and b"flashsale_http_request_duration_seconds" in metrics[1]
    events = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    names = [e["event"] for e in events]
    assert "startup" in names and "shutdown" in names
    readiness = {e["check"]: e["ok"] for e in events if e["event"] == "readiness"}
    assert readiness == {"store": True, "ledger": True}


@pytest.mark.redis
def test_every_scrape_of_several_workers_counts_the_requests_of_all_of_them(
    tmp_path: Path, clock: ManualClock
) -> None:
    assert REDIS_URL is not None
    with redis_ledgers(REDIS_URL, clock) as make:  # a fresh key prefix, deleted afterwards
        shared = with_query(REDIS_URL, prefix=make().prefix)
        with serving(tmp_path, workers=2, log_json="true", backend="redis", redis_url=shared) as server:
            for _ in range(20):  # a connection each: the kernel hands them to either worker
                assert get(server.port, "/healthz")[0] == 200
            scrapes = [get(server.port, "/metrics") for _ in range(4)]

    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    for status, body in scrapes:
        assert status == 200
        counted = [
            s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples
            if s.name == "flashsale_http_responses_total" and s.labels == healthz
        ]
        assert counted == [20.0]
    events = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    assert sum(e["event"] == "startup" for e in events) == 2
