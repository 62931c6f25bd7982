"""Live-hold caps across accounts (services/hold_caps.py) on the in-process and Redis engines: a
scalper with fifty accounts behind one address, or one device fingerprint, gets at most the
campaign's cap of live holds, even when every account buys at once; other addresses and devices
are not held back; a slot comes back at its hold's deadline; a retry takes no second slot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.domain.errors import FlashSaleError
from flashsale.services.admission_gate import AdmissionGate
from flashsale.services.orders import Buy
from tests.engines import POSTGRES_REDIS, SQLITE
from tests.factories import open_sale, release_together
from tests.integration.api_support import Api, assert_refused, open_api

pytestmark = pytest.mark.engines(SQLITE, POSTGRES_REDIS)

ACCOUNTS, CAP, WINDOW_S = 50, 3, 900


@pytest.fixture
def api(platform: Platform, clock: ManualClock) -> Iterator[Api]:
    with open_api(platform, clock) as api:
        yield api


@pytest.fixture
def item(api: Api, platform: Platform) -> int:
    """An item on sale now with stock for everyone, its campaign capping live holds per address and device."""
    item_id = open_sale(platform, quota=1_000, per_user_limit=2, payment_window_s=WINDOW_S)
    campaign = api.client.get(f"/admin/items/{item_id}/admission", headers=api.admin).json()["campaign_id"]
    answer = api.client.patch(
        f"/admin/campaigns/{campaign}/admission",
        json={"holds_per_client": CAP, "holds_per_device": CAP},
        headers=api.admin,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["hold_caps"] == {"per_client": CAP, "per_device": CAP}
    return item_id


def crowd(api: Api, item: int, sources: list[tuple[str | None, str | None]]) -> Counter[str]:
    """Every account buys one unit at once, each from its (address, device), through the gate and the
    order service as the purchase route does; count the outcomes."""
    gate: AdmissionGate = api.client.app.state.gate  # type: ignore[attr-defined]

    def buy(n: int, client: str | None, device: str | None) -> str:
        cmd = Buy(f"acct{n}", item, 1, f"key-{n}")
        try:
            admitted = gate.admit_purchase(cmd, client, None, device)
        except FlashSaleError as exc:
            return exc.code.value
        try:
            result = api.platform.orders.buy(admitted.cmd)
        except FlashSaleError as exc:
            gate.decided(admitted, None)
            return exc.code.value
        gate.decided(admitted, result)
        return "granted"

    calls = [lambda n=n, c=c, d=d: buy(n, c, d) for n, (c, d) in enumerate(sources)]
    return Counter(release_together(calls))


def test_fifty_accounts_behind_one_address_get_the_cap_of_live_holds(api: Api, item: int) -> None:
    outcomes = crowd(api, item, [("10.0.0.66", f"phone{n}") for n in range(ACCOUNTS)])
    assert outcomes == {"granted": CAP, "HOLDS_CAPPED": ACCOUNTS - CAP}
    level = api.platform.ledger.stock(item)
    assert level.held == CAP and level.conserved  # the refused ones held nothing
    assert api.buy("neighbour", item).status_code == 201  # another address is not held back


def test_fifty_accounts_on_one_device_get_the_cap_across_addresses(api: Api, item: int) -> None:
    outcomes = crowd(api, item, [(f"10.0.1.{n}", "farm-device") for n in range(ACCOUNTS)])
    assert outcomes == {"granted": CAP, "HOLDS_CAPPED": ACCOUNTS - CAP}
    assert api.platform.ledger.stock(item).held == CAP


def test_the_edge_reads_the_device_and_slots_come_back_at_the_holds_deadline(
    api: Api, clock: ManualClock, item: int
) -> None:
    def buy(user: str, device: str, key: str | None = None) -> int:
        headers = {**api.shopper(user), "Idempotency-Key": key or f"{user}-{clock()}", "Device-Id": device}
        answer = api.client.post("/purchases", json={"item_id": item, "quantity": 1}, headers=headers)
        return answer.status_code

    campaign = api.client.get(f"/admin/items/{item}/admission", headers=api.admin).json()["campaign_id"]
    url = f"/admin/campaigns/{campaign}/admission"
    off = api.client.patch(url, json={"holds_per_client": 0}, headers=api.admin).json()  # 0: no cap
    assert off["hold_caps"] == {"per_client": None, "per_device": CAP}
    assert [buy(f"a{n}", "dev-1") for n in range(CAP)] == [201] * CAP
    capped = api.client.post(
        "/purchases",
        json={"item_id": item, "quantity": 1},
        headers={**api.shopper("a9"), "Idempotency-Key": "k9", "Device-Id": "dev-1"},
    )
    assert_refused(capped, 409, "HOLDS_CAPPED")
    assert buy("a0", "dev-1", key=f"a0-{clock()}") == 200  # a retry replays, taking no second slot
    assert buy("b0", "dev-2") == 201  # another device
    clock.advance(WINDOW_S)  # the holds' deadline: their slots come back
    assert buy("a9", "dev-1") == 201
