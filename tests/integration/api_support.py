"""Drive the API through TestClient: tokens, headers, and a snapshot of what a refusal must not touch."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from flashsale.api.main import create_app
from flashsale.auth import mint_shopper_token
from flashsale.bootstrap import Platform
from flashsale.clock import ManualClock
from flashsale.ledger.contract import StockLevel
from flashsale.store.tables import EventRow, OrderRow, PaymentRow
from tests.engines import drain_orders


@dataclass(frozen=True)
class Snapshot:
    """Ledger counters of the watched items plus row counts of everything a purchase or payment writes."""

    stock: tuple[StockLevel, ...]
    orders: int
    payments: int
    events: int


@dataclass
class Api:
    client: TestClient
    platform: Platform
    clock: ManualClock

    def token(self, user_id: str, *, ttl_s: float = 3600) -> str:
        """Mint a shopper token valid from the platform's now."""
        secret = self.platform.settings.jwt_secret
        assert secret is not None
        return mint_shopper_token(secret, user_id, ttl_s, self.clock())

    def shopper(self, user_id: str) -> dict[str, str]:
        """Return the Authorization header of a shopper."""
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.platform.settings.admin_token}"}

    def buy(
        self, user_id: str, item_id: int, quantity: Any = 1, *, key: str | None = None
    ) -> httpx2.Response:
        """POST /purchases as `user_id` with a fresh Idempotency-Key unless one is given."""
        headers = {**self.shopper(user_id), "Idempotency-Key": key or str(uuid.uuid4())}
        return self.client.post(
            "/purchases", json={"item_id": item_id, "quantity": quantity}, headers=headers
        )

    def snapshot(self, *item_ids: int) -> Snapshot:
        """Read the ledger counters of `item_ids` and count stored orders, payments and events.

        With the Redis ledger the order writer first stores what was bought (orders are written
        behind), so the counts are what every engine has once its writes are done.
        """
        drain_orders(self.platform)
        with self.platform.deps.uow() as uow:
            counts = [
                uow.db.scalar(select(func.count()).select_from(table)) or 0
                for table in (OrderRow, PaymentRow, EventRow)
            ]
        stock = tuple(self.platform.ledger.stock(i) for i in item_ids)
        return Snapshot(stock, *counts)


@contextmanager
def open_api(
    platform: Platform, clock: ManualClock, *, raise_server_exceptions: bool = True
) -> Iterator[Api]:
    """Run the app (lifespan included, background jobs off) around the test's platform."""
    app = create_app(platform, start_jobs=False)
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        yield Api(client, platform, clock)


def assert_refused(response: httpx2.Response, status: int, code: str) -> None:
    """Check a refusal's status and its stable `{code, message}` body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
