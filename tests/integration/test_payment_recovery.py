"""Money journaled before a crash is finished after the restart: applied, or given back, never lost."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from flashsale.bootstrap import Platform, build
from flashsale.clock import ManualClock
from flashsale.config import Settings
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import HoldState
from flashsale.domain.orders import OrderStatus
from flashsale.services.orders import Buy
from flashsale.services.payments import SandboxProvider
from flashsale.services.settlement import CHARGE, PENDING, REFUND
from flashsale.store.tables import PaymentRow
from tests.conftest import Sale

pytestmark = pytest.mark.engines()  # every engine: see tests/engines.py


def _journal(platform: Platform, order_id: str, charge_ref: str, amount: int, kind: str, status: str) -> None:
    """Write what the process had journaled at the instant it was killed."""
    with platform.deps.uow() as uow:
        platform.orders.payments._journal(uow.db, order_id, "sandbox", charge_ref, amount, kind, status)
        uow.commit()


def _journal_rows(platform: Platform, order_id: str) -> set[tuple[str, str]]:
    with platform.deps.uow() as uow:
        rows = uow.db.scalars(select(PaymentRow).where(PaymentRow.order_id == order_id))
        return {(r.kind, r.status) for r in rows}


Restart = Callable[[Platform], Platform]


@pytest.fixture
def restart(clock: ManualClock) -> Iterator[Restart]:
    started: list[Platform] = []

    def _restart(crashed: Platform) -> Platform:
        crashed.close()  # the lease goes with the process, as after kill -9
        again = build(crashed.settings, clock=clock)  # same database, same Redis key prefix
        started.append(again)
        return again

    yield _restart
    for plat in started:
        plat.close()


@pytest.fixture
def unpaid(platform: Platform, sale: Sale, clock: ManualClock) -> str:
    clock.set(clock() + 1)  # inside the 10:00 session
    return platform.orders.buy(Buy("alice", sale.phone_id, 1, "k1")).order.id


def test_a_charge_journaled_before_a_crash_pays_the_order_after_restart(
    platform: Platform, unpaid: str, restart: Restart
) -> None:
    total = platform.orders.get(unpaid).total_cents
    _journal(platform, unpaid, "sbx_crash", total, CHARGE, "done")

    again = restart(platform)

    order = again.orders.get(unpaid)
    assert order.status is OrderStatus.PAID and order.payment_ref == "sbx_crash"
    assert again.ledger.get_hold(unpaid).state is HoldState.SOLD
    assert _journal_rows(again, unpaid) == {("charge", "done")}


def test_a_charge_that_arrives_after_the_hold_expired_is_refunded_after_restart(
    platform: Platform, unpaid: str, restart: Restart, clock: ManualClock, sale: Sale
) -> None:
    total = platform.orders.get(unpaid).total_cents
    _journal(platform, unpaid, "sbx_late", total, CHARGE, "done")
    clock.advance(15 * 60)

    again = restart(platform)

    assert again.orders.get(unpaid).status is OrderStatus.EXPIRED
    assert _journal_rows(again, unpaid) == {("charge", "done"), ("refund", "done")}
    assert again.ledger.stock(sale.phone_id).sold == 0


def test_a_refund_decided_before_a_crash_is_carried_out_after_restart(
    platform: Platform, unpaid: str, restart: Restart, sale: Sale
) -> None:
    paid = platform.orders.pay(unpaid, "alice")
    assert paid.payment_ref is not None
    _journal(platform, unpaid, paid.payment_ref, paid.total_cents, REFUND, PENDING)

    again = restart(platform)

    assert again.orders.get(unpaid).status is OrderStatus.REFUNDED
    assert again.ledger.stock(sale.phone_id).available == 10
    assert _journal_rows(again, unpaid) == {("charge", "done"), ("refund", "done")}


def test_a_second_charge_for_a_paid_order_is_given_back(
    platform: Platform, unpaid: str, settings: Settings
) -> None:
    first = platform.orders.pay(unpaid, "alice")
    assert settings.payment_secret is not None
    sandbox = SandboxProvider(settings.payment_secret)
    body = json.dumps(
        {
            "order_id": unpaid,
            "provider_ref": "sbx_twice",
            "amount_cents": first.total_cents,
            "status": "succeeded",
        }
    ).encode()

    again = platform.orders.handle_payment_callback("sandbox", body, sandbox._sign(body))

    assert again.status is OrderStatus.PAID and again.payment_ref == first.payment_ref
    with platform.deps.uow() as uow:
        refunds = uow.db.scalars(select(PaymentRow.provider_ref).where(PaymentRow.kind == REFUND)).all()
    assert refunds == ["sbx_twice"]


def test_a_charge_for_a_cancelled_order_is_refused_and_refunded(platform: Platform, unpaid: str) -> None:
    order = platform.orders.get(unpaid)
    signed = platform.orders.payments.provider("sandbox").charge(order)
    platform.orders.cancel(unpaid, "alice")

    with pytest.raises(FlashSaleError) as refused:
        platform.orders.handle_payment_callback("sandbox", signed.body, signed.signature)

    assert refused.value.code is ErrorCode.INVALID_TRANSITION
    assert platform.orders.get(unpaid).status is OrderStatus.CANCELLED
    assert _journal_rows(platform, unpaid) == {("charge", "done"), ("refund", "done")}
