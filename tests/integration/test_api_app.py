"""The app as a whole: error mapping, unknown routes, the catch-all 500, the OpenAPI document, the factory."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flashsale.api.errors import STATUS_OF
from flashsale.api.main import app_factory, create_app
from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode
from tests.integration.api_support import Api, assert_refused, open_api


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def test_every_error_code_has_an_http_status() -> None:
    assert set(STATUS_OF) == set(ErrorCode)
    assert all(400 <= status < 600 for status in STATUS_OF.values())


def test_unknown_routes_and_methods_answer_in_the_error_shape(api: Api) -> None:
    assert_refused(api.client.get("/no-such-route"), 404, "NOT_FOUND")
    assert_refused(api.client.delete("/purchases"), 405, "METHOD_NOT_ALLOWED")


def test_an_unexpected_failure_is_a_logged_500_without_details(
    platform: Platform, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    with open_api(platform, clock, raise_server_exceptions=False) as api:
        with platform.engine.begin() as conn:  # a real fault: the table the route reads is gone
            conn.exec_driver_sql("ALTER TABLE orders RENAME TO orders_gone")
        with caplog.at_level(logging.ERROR, logger="flashsale.api.errors"):
            failed = api.client.get("/orders", headers=api.shopper("alice"))
    assert failed.status_code == 500
    assert failed.json() == {"code": "INTERNAL_ERROR", "message": "internal error"}
    assert any("GET /orders" in r.getMessage() and r.exc_info for r in caplog.records)


def test_the_openapi_document_describes_routes_security_and_the_error_shape(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    assert doc["info"]["title"] == "flashsale"
    assert {"/purchases", "/orders/{order_id}/pay", "/admin/items/{item_id}/stats"} <= set(doc["paths"])
    assert {"ShopperToken", "AdminToken"} <= set(doc["components"]["securitySchemes"])
    refusal = doc["paths"]["/purchases"]["post"]["responses"]["409"]
    assert refusal["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    assert {t["name"] for t in doc["tags"]} >= {"purchases", "admin: items"}
    assert api.client.get("/docs").status_code == 200


def test_a_platform_without_secrets_is_refused(platform: Platform) -> None:
    bare = dataclasses.replace(platform, settings=platform.settings.model_copy(update={"admin_token": None}))
    with pytest.raises(ValueError, match="no secrets"):
        create_app(bare)


def test_the_factory_builds_from_the_environment_and_runs_the_expiry_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASHSALE_DATA_DIR", str(tmp_path))
    app = app_factory()
    platform: Platform = app.state.platform
    with TestClient(app) as client:
        assert client.get("/sessions").json() == []
        assert platform.sweeper is not None
    assert platform.sweeper is None  # the lifespan closed the platform
    assert (tmp_path / "secrets.json").exists()
