"""The shoppers' side of a rehearsal: the demo's behaviours (`flashsale.demo.shop.shop_for`) played
over HTTP against the deployment, every request timed from its intended send time.

A shopper's first requests are meant for its scheduled arrival (a double click sends two at
once); each later one (the retry, the pay, the cancel) is meant for the moment the shopper had
its previous answer and decided, as a real shopper would.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flashsale.demo.crowd import Shopper
from flashsale.demo.shop import Answer, Tally
from flashsale.domain.errors import ErrorCode
from flashsale.domain.orders import Order, OrderStatus
from flashsale.rehearsal.openloop import OK, Recorder
from flashsale.rehearsal.wire import ConnectionPool, Reply, WireError

REPLAYED_HEADER = "idempotent-replayed"  # as the pool gives names: lower case
CODES = {code.value: code for code in ErrorCode}


class Storefront:
    """What every shopper shares: the HTTP client, their tokens, the tally and the recorder."""

    def __init__(
        self, http: ConnectionPool, tokens: Mapping[str, str], recorder: Recorder, rehearsal_pass: str
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.recorder = recorder
        self.rehearsal_pass = rehearsal_pass  # the copy is sold only to purchases that carry it
        self.tally = Tally()

    def door(self, intended: float) -> ShopperDoor:
        """The door of one shopper who arrives at `intended` (clock time)."""
        return ShopperDoor(self, intended)

    async def send(
        self,
        kind: str,
        intended: float,
        user_id: str,
        path: str,
        *,
        key: str,
        body: dict[str, Any] | None = None,
    ) -> tuple[Any, ErrorCode | None, bool]:
        """POST `path` as `user_id`; record the answer against `intended`.

        Return (JSON body, refusal code or None, replayed). A failure without a code of ours (a
        timeout, a reset, a 502 from a proxy) is recorded under its own name and reported to the
        shopper as INTERNAL_ERROR: the shopper gives up, the report shows what it was.
        """
        headers = {"Authorization": f"Bearer {self.tokens[user_id]}", "Idempotency-Key": key}
        try:
            reply = await self.http.post(path, headers=headers, body=body)
        except WireError as exc:
            self.recorder.record(kind, exc.kind, intended)
            return None, ErrorCode.INTERNAL_ERROR, False
        if reply.is_success:
            self.recorder.record(kind, OK, intended)
            return reply.json(), None, reply.headers.get(REPLAYED_HEADER) == "true"
        code = _code_of(reply)
        self.recorder.record(kind, code.value if code else f"HTTP_{reply.status}", intended)
        return None, code or ErrorCode.INTERNAL_ERROR, False


class ShopperDoor:
    """One shopper's door (the demo's `Door`): requests sent before any answer arrived are meant for
    the arrival; after an answer, for the moment the shopper acts on it."""

    def __init__(self, front: Storefront, arrival: float) -> None:
        self._front = front
        self._due: float | None = arrival
        self.tally = front.tally

    def _intended(self) -> float:
        return self._front.recorder.clock() if self._due is None else self._due

    def _answered(self) -> None:
        self._due = None

    async def buy(self, shopper: Shopper, qty: int, request_id: str) -> Answer:
        """POST /purchases with the request id as Idempotency-Key; return the order or the refusal."""
        self.tally.reserve_calls += 1
        item_id = shopper.item.id
        body, code, replayed = await self._front.send(
            "purchase",
            self._intended(),
            shopper.user_id,
            "/purchases",
            key=request_id,
            body={"item_id": item_id, "quantity": qty, "rehearsal_pass": self._front.rehearsal_pass},
        )
        self._answered()
        if code is not None:
            self.tally.refused(item_id, shopper.user_id, code)
            return code
        self.tally.bought(item_id, shopper.user_id, replayed=replayed)
        return _order_of(body, user_id=shopper.user_id, request_id=request_id)

    async def pay(self, order: Order) -> None:
        """Pay through the sandbox provider; a refusal is tallied as a failure."""
        if await self._settle("pay", order):
            self.tally.payments += 1

    async def cancel(self, order: Order) -> None:
        """Cancel the unpaid order; a refusal is tallied as a failure."""
        if await self._settle("cancel", order):
            self.tally.cancellations += 1

    async def _settle(self, action: str, order: Order) -> bool:
        _, code, _ = await self._front.send(
            action,
            self._intended(),
            order.user_id,
            f"/orders/{order.id}/{action}",
            key=f"{order.id}-{action}",
        )
        self._answered()
        if code is not None:
            self.tally.failures[f"{action}: {code.value}"] += 1
        return code is None


def _code_of(reply: Reply) -> ErrorCode | None:
    try:
        body = reply.json()
    except ValueError:
        return None
    return CODES.get(str(body.get("code"))) if isinstance(body, dict) else None


def _order_of(body: dict[str, Any], *, user_id: str, request_id: str) -> Order:
    """The order an OrderOut body describes (it names neither shopper nor key: the caller knows them)."""

    def moment(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    created, expires = moment(body["created_at"]), moment(body["expires_at"])
    assert created is not None and expires is not None
    return Order(
        id=body["id"],
        user_id=user_id,
        item_id=body["item_id"],
        qty=body["qty"],
        unit_price_cents=body["unit_price_cents"],
        total_cents=body["total_cents"],
        status=OrderStatus(body["status"]),
        request_id=request_id,
        created_at=created,
        expires_at=expires,
        paid_at=moment(body["paid_at"]),
        closed_at=moment(body["closed_at"]),
    )
