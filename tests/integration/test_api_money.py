"""Money over HTTP: a double-clicked pay, the pay Idempotency-Key, the operator's order and payment
search, the audit route and `flashsale payments audit`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from flashsale.bootstrap import Platform
from flashsale.cli.main import app as cli_app
from flashsale.clock import ManualClock
from tests.conftest import Sale
from tests.engines import drain_orders
from tests.integration.api_support import Api, assert_refused, open_api
from tests.integration.money_support import keep_stray_charge

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py


@pytest.fixture
def api(platform: Platform, clock: ManualClock, sale: Sale) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


def _unpaid(api: Api, item_id: int, user_id: str) -> str:
    bought = api.buy(user_id, item_id)
    assert bought.status_code == 201, bought.text
    order_id: str = bought.json()["id"]
    return order_id


def _pay(api: Api, order_id: str, user_id: str, key: str | None = None) -> httpx2.Response:
    headers = api.shopper(user_id) | ({"Idempotency-Key": key} if key else {})
    return api.client.post(f"/orders/{order_id}/pay", headers=headers)


def test_a_double_clicked_pay_charges_once(api: Api, sale: Sale, clock: ManualClock) -> None:
    clock.advance(1)
    orders = [(_unpaid(api, sale.earbuds_id, f"u{n}"), f"u{n}") for n in range(10)]
    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda pair: _pay(api, *pair), [p for p in orders for _ in range(3)]))
    assert {a.status_code for a in answers} <= {200, 409}
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["code"] == "PAYMENT_IN_PROGRESS"
            assert answer.headers["Retry-After"] == "1"
    for order_id, _ in orders:
        page = api.client.get("/admin/payments", params={"order_id": order_id}, headers=api.admin).json()
        assert [p["kind"] for p in page["items"]] == ["charge"]
    audit = api.client.get("/admin/payments/audit", headers=api.admin).json()
    assert audit["clean"] and audit["orders_checked"] == 10
    assert audit["net_cents"] == audit["expected_cents"] == 10 * 49_900


def test_pay_replays_its_idempotency_key(api: Api, sale: Sale, clock: ManualClock) -> None:
    clock.advance(1)
    first, second = _unpaid(api, sale.phone_id, "alice"), _unpaid(api, sale.earbuds_id, "alice")
    key = str(uuid.uuid4())
    paid = _pay(api, first, "alice", key)
    assert paid.status_code == 200 and "Idempotent-Replayed" not in paid.headers
    again = _pay(api, first, "alice", key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == paid.json()
    before = api.snapshot(sale.phone_id, sale.earbuds_id)
    assert_refused(_pay(api, second, "alice", key), 422, "IDEMPOTENCY_MISMATCH")
    assert api.snapshot(sale.phone_id, sale.earbuds_id) == before


def test_operators_search_orders_and_payments(api: Api, sale: Sale, clock: ManualClock) -> None:
    clock.advance(1)
    ids = [_unpaid(api, sale.earbuds_id, f"s{n}") for n in range(5)]
    for n in (0, 1, 2):
        assert _pay(api, ids[n], f"s{n}").status_code == 200
    api.client.post(f"/admin/orders/{ids[0]}/refund", headers=api.admin)
    drain_orders(api.platform)  # the search reads stored orders; Redis writes the unpaid ones behind

    def orders(**params: object) -> dict[str, Any]:
        response = api.client.get("/admin/orders", params=params, headers=api.admin)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert orders()["total"] == 5
    assert {o["id"] for o in orders(status="PAID")["items"]} == {ids[1], ids[2]}
    assert [o["id"] for o in orders(user_id="s3")["items"]] == [ids[3]]
    assert orders(item_id=sale.phone_id)["total"] == 0
    page = orders(limit=2, offset=0)
    assert (len(page["items"]), page["total"]) == (2, 5)
    rest = orders(limit=2, offset=2)["items"] + orders(limit=2, offset=4)["items"]
    assert {o["id"] for o in page["items"] + rest} == set(ids)
    assert orders(since=(api.platform.deps.now() + timedelta(seconds=1)).isoformat())["total"] == 0
    assert orders(until=api.platform.deps.now().isoformat())["total"] == 0
    paid = orders(status="PAID")["items"][0]
    assert paid["payment_ref"] and paid["user_id"].startswith("s")

    refunds = api.client.get("/admin/payments", params={"kind": "refund"}, headers=api.admin).json()
    assert [(p["order_id"], p["status"]) for p in refunds["items"]] == [(ids[0], "done")]
    assert api.client.get("/admin/payments/audit", headers=api.admin).json()["clean"]
    for path in ("/admin/orders", "/admin/payments", "/admin/payments/audit"):
        assert_refused(api.client.get(path, headers=api.shopper("s1")), 403, "FORBIDDEN")
    assert_refused(
        api.client.get("/admin/orders", params={"since": "2026-01-01T00:00:00"}, headers=api.admin),
        422,
        "VALIDATION_ERROR",
    )


def test_the_audit_command_is_clean_then_names_a_seeded_discrepancy(
    platform: Platform, sale: Sale, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.advance(1)
    with open_api(platform, clock) as api:
        paid, unpaid = _unpaid(api, sale.earbuds_id, "a"), _unpaid(api, sale.earbuds_id, "b")
        assert _pay(api, paid, "a").status_code == 200
    monkeypatch.chdir(tmp_path)
    env = {
        "FLASHSALE_DATA_DIR": str(platform.settings.data_dir),
        "FLASHSALE_DATABASE_URL": platform.settings.database_url,  # None (unset) on the SQLite default
        "FLASHSALE_JWT_SECRET": "x" * 32,
        "FLASHSALE_ADMIN_TOKEN": "admin",
        "FLASHSALE_PAYMENT_SECRET": "pay",
    }
    runner = CliRunner(env=env)
    clean = runner.invoke(cli_app, ["payments", "audit"])  # the server's lease does not stop a reader
    assert clean.exit_code == 0, clean.output
    assert "clean" in clean.output

    drain_orders(platform)  # on Redis the unpaid order's row is written behind; the stray charge needs it
    keep_stray_charge(platform, unpaid, 700)
    found = runner.invoke(cli_app, ["payments", "audit", "--json"])
    assert found.exit_code == 1
    report = json.loads(found.output)
    assert not report["clean"]
    assert [(d["order_id"], d["net_cents"], d["expected_cents"]) for d in report["discrepancies"]] == [
        (unpaid, 700, 0)
    ]
