"""Operability: /healthz, /readyz and /metrics through the app, on real stores and a Redis that dies."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flashsale.api.main import create_app
from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.services.reconcile import Reconciler
from tests.conftest import Sale, make_sale
from tests.engines import drain_orders
from tests.integration.api_support import Api, open_api
from tests.integration.redis_support import redis_platform
from tests.integration.servers import OwnRedis

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: Api) -> Samples:
    """GET /metrics and parse it as Prometheus does: every sample by name and labels."""
    answer = api.client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str | int) -> float:
    """The value of one sample; KeyError names it when it is missing."""
    key = (name, frozenset((k, str(v)) for k, v in labels.items()))
    if key not in samples:
        raise KeyError(f"no sample {name}{labels}")
    return samples[key]


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def test_healthz_answers_ok_without_a_token(api: Api) -> None:
    answer = api.client.get("/healthz")

    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


@pytest.mark.engines()
def test_readyz_answers_200_when_the_store_and_the_ledger_answer(api: Api, sale: Sale) -> None:
    answer = api.client.get("/readyz")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["failing"]) == ("ready", [])
    expected = (
        {"store", "ledger", "order_writer"} if api.platform.orders.write_behind else {"store", "ledger"}
    )
    assert set(body["checks"]) == expected
    assert all(check["ok"] for check in body["checks"].values())
    assert "Retry-After" not in answer.headers


@pytest.mark.redis_server
def test_readyz_answers_503_naming_the_ledger_once_redis_is_gone(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        redis_settings = settings.model_copy(update={"backend": "redis", "redis_url": server.url})
        with open_api(build(redis_settings, clock=clock), clock) as api:
            make_sale(api.platform)
            assert api.client.get("/readyz").status_code == 200
            server.kill()

            answer = api.client.get("/readyz")
            alive = api.client.get("/healthz")
            samples = scrape(api)
    finally:
        server.stop()

    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) > 0
    body = answer.json()
    assert body["status"] == "not ready"
    assert "ledger" in body["failing"] and body["checks"]["ledger"]["ok"] is False
    assert body["checks"]["store"]["ok"] is True
    assert alive.status_code == 200  # alive, only not ready: nothing to restart
    # The scrape still answers, and says which source it could not read.
    assert sample(samples, "flashsale_scrape_source_up", source="ledger") == 0
    assert sample(samples, "flashsale_scrape_source_up", source="order_writer") == 0
    assert sample(samples, "flashsale_scrape_source_up", source="store") == 1


@pytest.mark.redis_server
def test_a_redis_that_stops_answering_fails_its_check_at_the_timeout(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    server = OwnRedis(tmp_path)
    server.start()
    assert server.process is not None
    try:
        update = {"backend": "redis", "redis_url": server.url, "ready_timeout_s": 0.5}
        with open_api(build(settings.model_copy(update=update), clock=clock), clock) as api:
            server.process.send_signal(signal.SIGSTOP)  # connections open, nothing answered
            try:
                answer = api.client.get("/readyz")
            finally:
                server.process.send_signal(signal.SIGCONT)
            recovered = api.client.get("/readyz")
    finally:
        server.stop()

    assert answer.status_code == 503, answer.text
    checks = answer.json()["checks"]
    assert checks["ledger"] == {"ok": False, "detail": "no answer within 0.5 s"}
    assert checks["store"]["ok"] is True
    assert recovered.status_code == 200, recovered.text


@pytest.mark.redis
def test_readyz_answers_503_while_the_order_writer_lags_past_the_bound(
    settings: Settings, clock: ManualClock
) -> None:
    strict = settings.model_copy(update={"ready_max_writer_lag": 0})
    with redis_platform(strict, clock) as platform, open_api(platform, clock) as api:
        sale = make_sale(platform)
        states = []
        for user in ("alice", "bob"):  # before the writer's group exists, then with it
            assert api.buy(user, sale.phone_id).status_code == 201  # the writer is not running
            lagging = api.client.get("/readyz")
            drain_orders(platform)
            states.append((lagging, api.client.get("/readyz")))

    for lagging, caught_up in states:
        assert lagging.status_code == 503, lagging.text
        assert lagging.json()["failing"] == ["order_writer"]
        assert "1 unread" in lagging.json()["checks"]["order_writer"]["detail"]
        assert "Retry-After" in lagging.headers
        assert caught_up.status_code == 200, caught_up.text


@pytest.mark.redis
def test_the_writer_backlog_is_counted_when_redis_cannot_tell_the_lag(
    settings: Settings, clock: ManualClock
) -> None:
    with redis_platform(settings, clock) as platform, open_api(platform, clock) as api:
        sale = make_sale(platform)
        drain_orders(platform)  # the writers' group exists, and has read everything (nothing)
        for user in ("alice", "bob", "carol"):
            assert api.buy(user, sale.earbuds_id).status_code == 201
        stream = platform.ledger.purchase_stream()
        assert stream is not None
        _, middle, _ = (entry_id for entry_id, _ in stream.client.xrange(stream.key))
        stream.client.xdel(stream.key, middle)  # a deleted entry leaves Redis unable to count the lag
        assert stream.client.xinfo_groups(stream.key)[0]["lag"] is None

        answer = api.client.get("/readyz")

    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"]["order_writer"]["detail"].startswith("2 unread + 0 pending")


@pytest.mark.engines()
def test_metrics_count_purchases_by_outcome_and_time_every_decision(api: Api, sale: Sale) -> None:
    key = str(uuid.uuid4())
    assert api.buy("u0", sale.phone_id, key=key).status_code == 201
    assert api.buy("u0", sale.phone_id, key=key).status_code == 200  # a replay
    for n in range(1, 10):
        assert api.buy(f"u{n}", sale.phone_id).status_code == 201
    assert api.buy("late", sale.phone_id).json()["code"] == "SOLD_OUT"

    samples = scrape(api)

    purchases = {
        outcome: sample(samples, "flashsale_purchases_total", outcome=outcome)
        for outcome in ("created", "replayed", "SOLD_OUT")
    }
    assert purchases == {"created": 10, "replayed": 1, "SOLD_OUT": 1}
    assert sample(samples, "flashsale_purchase_decision_seconds_count") == 12
    assert sample(samples, "flashsale_purchase_decision_seconds_sum") > 0
    route = {"method": "POST", "route": "/purchases"}
    assert sample(samples, "flashsale_http_request_duration_seconds_count", **route) == 12
    assert sample(samples, "flashsale_http_responses_total", **route, status=409) == 1
    phone = {"item_id": sale.phone_id}
    assert sample(samples, "flashsale_holds_live", **phone) == 10
    assert sample(samples, "flashsale_stock_available", **phone) == 0
    assert sample(samples, "flashsale_stock_quota", **phone) == 10
    assert sample(samples, "flashsale_ledger_conserved", **phone) == 1
    if api.platform.orders.write_behind:  # no writer runs under the test client
        assert sample(samples, "flashsale_order_writer_lag") == 10
        drain_orders(api.platform)
        assert sample(scrape(api), "flashsale_order_writer_lag") == 0


def test_a_public_read_answered_by_the_fast_path_is_timed_under_its_route(api: Api, sale: Sale) -> None:
    for _ in range(3):
        assert api.client.get(f"/sessions/{sale.session_id}").status_code == 200
    assert api.client.get("/no/such/path").status_code == 404

    samples = scrape(api)

    one_session = {"method": "GET", "route": "/sessions/{session_id}"}
    assert sample(samples, "flashsale_http_request_duration_seconds_count", **one_session) == 3
    unmatched = {"method": "GET", "route": "unmatched", "status": 404}
    assert sample(samples, "flashsale_http_responses_total", **unmatched) == 1


def test_methods_outside_http_are_counted_as_one_series(api: Api) -> None:
    for method in ("BREW", "WHEN", "FOO"):
        assert api.client.request(method, "/purchases").status_code == 405

    samples = scrape(api)

    refused = {"method": "other", "route": "/purchases", "status": 405}
    assert sample(samples, "flashsale_http_responses_total", **refused) == 3
    assert not any(dict(labels).get("method") == "BREW" for _, labels in samples)


def test_expired_orders_are_counted_once_the_sweep_writes_them(api: Api, sale: Sale) -> None:
    assert api.buy("alice", sale.phone_id).status_code == 201
    assert sample(scrape(api), "flashsale_orders_expired_total") == 0

    api.clock.advance(timedelta(minutes=16).total_seconds())
    assert api.platform.orders.expire_due() == 1

    samples = scrape(api)
    assert sample(samples, "flashsale_orders_expired_total") == 1
    assert sample(samples, "flashsale_holds_live", item_id=sale.phone_id) == 0


def test_a_reconciliation_reported_to_the_metrics_shows_its_drift_and_its_pause(api: Api, sale: Sale) -> None:
    metrics = api.client.app.state.metrics
    assert sample(scrape(api), "flashsale_reconcile_pauses_total") == 0

    metrics.record_reconcile(Reconciler(api.platform.orders).run(repair=True))

    samples = scrape(api)
    assert sample(samples, "flashsale_reconcile_pauses_total") == 1
    assert sample(samples, "flashsale_reconcile_drift", kind="orders missing in db") == 0


def test_a_paused_item_shows_what_is_left_of_its_lease(api: Api, sale: Sale) -> None:
    assert sample(scrape(api), "flashsale_sale_paused_seconds", item_id=sale.phone_id) == 0
    api.platform.ledger.pause([sale.phone_id], until=api.clock() + 30, token="repair")

    samples = scrape(api)
    assert sample(samples, "flashsale_sale_paused_seconds", item_id=sale.phone_id) == 30
    assert sample(samples, "flashsale_sale_paused_seconds", item_id=sale.earbuds_id) == 0
    api.clock.advance(31)  # the lease ends by itself
    assert sample(scrape(api), "flashsale_sale_paused_seconds", item_id=sale.phone_id) == 0


def test_metrics_can_be_turned_off(settings: Settings, clock: ManualClock) -> None:
    quiet = settings.model_copy(update={"metrics_enabled": False})

    with open_api(build(quiet, clock=clock), clock) as api:
        assert api.client.get("/metrics").status_code == 404
        assert api.client.get("/healthz").status_code == 200


def test_two_apps_in_one_process_count_separately(platform: Platform) -> None:
    first, second = create_app(platform, start_jobs=False), create_app(platform, start_jobs=False)

    first.state.metrics.record_purchase("created", 0.001)

    counted = {
        app: [
            s.value
            for family in text_string_to_metric_families(app.state.metrics.render().decode())
            for s in family.samples
            if s.name == "flashsale_purchases_total"
        ]
        for app in (first, second)
    }
    assert (counted[first], counted[second]) == ([1.0], [])
