"""Money in and out: charges, refunds, and finishing whatever a crash interrupted.

Every movement of money is written to the `payments` journal *before* the order changes state.
So a process killed at any instant leaves a journal row that `recover()` completes on the next
start or sweep: a charge that never reached its order is applied (or refunded when the hold is
gone), and a refund that was decided is carried through. Nothing paid is lost or counted twice.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from contextlib import suppress
from typing import NamedTuple, Protocol

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import Order, OrderStatus
from flashsale.domain.payments import AttemptStatus
from flashsale.services.deps import Deps
from flashsale.services.pay_attempts import PaymentAttempts
from flashsale.services.payments import Callback, PaymentProvider
from flashsale.store import repositories as repo
from flashsale.store.tables import OrderRow, PaymentRow

CHARGE, REFUND = "charge", "refund"
PENDING, DONE = "pending", "done"
# A confirm refused with one of these leaves the charge without its order: it is refunded at once.
REFUND_ON = frozenset(
    {ErrorCode.ORDER_EXPIRED, ErrorCode.INVALID_TRANSITION, ErrorCode.SALE_PAUSED, ErrorCode.UNKNOWN_HOLD}
)
WAIT_S = 5.0  # how long a second pay request waits for the first before PAYMENT_IN_PROGRESS
POLL_S = 0.02


class Paid(NamedTuple):
    """The answer to a pay request: the order as it now is, and whether the request was a replay."""

    order: Order
    replayed: bool


class OrderBook(Protocol):
    """The reads of orders the desk needs; `flashsale.services.orders.OrderService` is one.

    Settlement depends on this, not on the order service, so the dependency runs one way
    (orders → settlement).
    """

    # Told of the orders written REFUNDED, once durable.
    refunded_listeners: list[Callable[[list[Order]], None]]

    def get(self, order_id: str, user_id: str | None = None) -> Order:
        """The order as it is now (an UNPAID one past its window reads EXPIRED); not found raises."""
        ...

    def stored(self, order_id: str) -> Order:
        """The order as stored: the start of a transition; not found raises."""
        ...

    def find(self, order_id: str) -> Order | None:
        """The stored order, or None."""
        ...

    def expire_due(self, batch: int = 1000) -> int:
        """Write down the expiries the ledger hands out."""
        ...

    def ledger_lost(self, item_id: int) -> None:
        """The ledger does not know a stored order of the item: it lost writes; have it repaired."""
        ...


class PaymentDesk:
    def __init__(
        self,
        deps: Deps,
        orders: OrderBook,
        providers: dict[str, PaymentProvider],
        *,
        wait_s: float = WAIT_S,
    ) -> None:
        self.orders = orders
        self.deps = deps
        self.providers = providers
        self.attempts = PaymentAttempts(deps)
        self.wait_s = wait_s

    def provider(self, name: str) -> PaymentProvider:
        try:
            return self.providers[name]
        except KeyError:
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, f"unknown payment provider {name!r}") from None

    # -- charges -------------------------------------------------------------------------------
    def pay(self, order_id: str, user_id: str, provider: str, *, idempotency_key: str | None = None) -> Paid:
        """Pay the shopper's order, charging at most once however many requests arrive together.

        The first request takes the order's charge slot and charges; the others wait for it (up to
        `wait_s`) and answer the order it left, or PAYMENT_IN_PROGRESS with nothing charged. With an
        `idempotency_key`, a repeat replays the first request's outcome, and the key used for
        another order is refused with IDEMPOTENCY_MISMATCH.
        """
        key = idempotency_key or f"auto:{secrets.token_hex(16)}"  # no key: every request is new
        deadline = time.monotonic() + self.wait_s
        while True:
            if idempotency_key is not None:
                replay = self._replay(order_id, user_id, key)
                if isinstance(replay, Paid):
                    return replay
                attempt_id = replay
            else:
                attempt_id = None
            if attempt_id is None:
                order = self.orders.get(order_id, user_id)
                if not order.needs_transition(OrderStatus.PAID):
                    return Paid(order, replayed=False)
                attempt_id = self.attempts.open(order_id, user_id, key, provider)
            if attempt_id is not None:
                return Paid(self._charge(attempt_id, provider, order_id, user_id), replayed=False)
            if time.monotonic() >= deadline:
                raise FlashSaleError(
                    ErrorCode.PAYMENT_IN_PROGRESS, f"a payment of order {order_id} is under way; retry"
                )
            time.sleep(POLL_S)

    def _replay(self, order_id: str, user_id: str, key: str) -> Paid | int | None:
        """Answer a repeated key: its outcome, or the id of its abandoned attempt to run again."""
        seen = self.attempts.find(user_id, key)
        if seen is None:
            return None
        if seen.order_id != order_id:
            raise FlashSaleError(ErrorCode.IDEMPOTENCY_MISMATCH, "this Idempotency-Key paid another order")
        if seen.status is AttemptStatus.FAILED:
            assert seen.error_code is not None
            raise FlashSaleError(seen.error_code, "this Idempotency-Key was refused before")
        if seen.status is AttemptStatus.ABANDONED:
            return seen.id if self.attempts.reopen(seen.id, order_id) else None
        order = self.orders.get(order_id, user_id)
        if seen.status is AttemptStatus.DONE or order.status is not OrderStatus.UNPAID:
            return Paid(order, replayed=True)
        return None  # still pending: wait for it like any concurrent request

    def _charge(self, attempt_id: int, provider: str, order_id: str, user_id: str) -> Order:
        """Charge once under a held slot and settle; the attempt records how it ended."""
        try:
            order = self.orders.get(order_id, user_id)
            if not order.needs_transition(OrderStatus.PAID):  # paid while we took the slot
                self.attempts.finish(attempt_id, AttemptStatus.DONE)
                return order
            signed = self.provider(provider).charge(order)
            if signed is None:  # a real provider calls back later; the callback ends the attempt
                return order
            # The order exists (we just read it): settle without looking it up again.
            paid = self._settle(provider, self.provider(provider).verify(signed.body, signed.signature))
        except FlashSaleError as exc:
            # A pause is temporary: the attempt is left for a retry (same key included) to run again.
            paused = exc.code is ErrorCode.SALE_PAUSED
            self.attempts.finish(
                attempt_id, AttemptStatus.ABANDONED if paused else AttemptStatus.FAILED, exc.code
            )
            raise
        except BaseException:
            with suppress(Exception):  # the store may be what failed; the lease frees the slot then
                self.attempts.finish(attempt_id, AttemptStatus.ABANDONED)
            raise
        if paid.status is not OrderStatus.PAID:  # paying it ended the attempt in the same transaction
            self.attempts.finish(attempt_id, AttemptStatus.DONE)
        return paid

    def handle_callback(self, provider: str, body: bytes, signature: str) -> Order:
        """Verify a provider's callback, journal the charge, and settle the order.

        Repeats of one callback are harmless. Money that cannot settle its order (the hold expired
        or was cancelled, the amount is wrong, the order was already paid) is refunded. A provider
        reference is one charge: the same reference with another order or amount is refused, and
        a charge that was refunded never pays an order afterwards.
        """
        callback = self.provider(provider).verify(body, signature)
        if self.orders.find(callback.order_id) is None:  # with write-behind, this stores it if need be
            raise FlashSaleError(ErrorCode.ORDER_NOT_FOUND, f"no order {callback.order_id}")
        return self._settle(provider, callback)

    def _settle(self, provider: str, callback: Callback) -> Order:
        """Journal a verified charge of a stored order and settle the order with it."""
        if callback.status != "succeeded":
            raise FlashSaleError(ErrorCode.PAYMENT_MISMATCH, "the provider declined the payment")
        ref = callback.provider_ref
        with self.deps.uow() as uow:
            self._journal(uow.db, callback.order_id, provider, ref, callback.amount_cents, CHARGE, DONE)
            found = uow.db.execute(self._entries(provider, ref))
            entries = {kind: (order, cents) for kind, order, cents in found}
            charged_order, charged_cents = entries[CHARGE]
            refunded = REFUND in entries
            stored = uow.orders.get(callback.order_id)  # the settlement's starting point, read once
            uow.commit()
        if (charged_order, charged_cents) != (callback.order_id, callback.amount_cents):
            raise FlashSaleError(
                ErrorCode.PAYMENT_MISMATCH, f"provider reference {ref!r} belongs to another charge"
            )
        if refunded:  # that money went back: it cannot pay the order now; answer as the first time
            order = self.orders.get(callback.order_id)
            if callback.amount_cents != order.total_cents:
                raise FlashSaleError(ErrorCode.PAYMENT_MISMATCH, "the amount does not match the order")
            return order
        return self._apply_charge(provider, callback.order_id, ref, callback.amount_cents, stored)

    @staticmethod
    def _entries(provider: str, ref: str) -> Select[str, str, int]:
        """The journal rows of one charge reference (its charge, a refund if any): kind, order, amount."""
        return select(PaymentRow.kind, PaymentRow.order_id, PaymentRow.amount_cents).where(
            PaymentRow.provider == provider, PaymentRow.provider_ref == ref
        )

    def _apply_charge(
        self, provider: str, order_id: str, charge_ref: str, amount: int, stored: Order | None = None
    ) -> Order:
        """Settle the order with a journaled charge, or refund the charge; `stored`: the order as read."""
        order = stored if stored is not None else self.orders.stored(order_id)
        if order.status is OrderStatus.PAID:
            if order.payment_ref == charge_ref:
                return order
            self._refund_charge(provider, order, charge_ref, amount)  # paid twice: give the second back
            return order
        if amount != order.total_cents:
            self._refund_charge(provider, order, charge_ref, amount)
            raise FlashSaleError(ErrorCode.PAYMENT_MISMATCH, f"paid {amount}, order is {order.total_cents}")
        try:
            self.deps.ledger.confirm(order_id)
        except FlashSaleError as exc:
            # SALE_PAUSED (a repair for a moment), or UNKNOWN_HOLD of a stored order (the ledger lost its
            # data and is being rebuilt): the money goes back too, and the shopper pays again shortly.
            if exc.code in REFUND_ON:
                if exc.code is ErrorCode.ORDER_EXPIRED:
                    self.orders.expire_due()  # write the expiry down before answering
                self._refund_charge(provider, order, charge_ref, amount)
            if exc.code is ErrorCode.UNKNOWN_HOLD:
                self.orders.ledger_lost(order.item_id)
                raise FlashSaleError(
                    ErrorCode.SALE_PAUSED, "the stock ledger is being rebuilt", retry_after_s=1.0
                ) from exc
            raise
        now = self.deps.clock()
        with self.deps.uow() as uow:
            # `order` is as stored (not as reported): the compare-and-set starts from its status.
            if order.can_become(OrderStatus.PAID):
                paid = order.paid(charge_ref, now)
                if uow.orders.save_transition(order, paid):
                    self.attempts.settle_open(uow.db, order_id)
                    uow.record(paid.event(now))
            settled = uow.orders.get(order_id)  # as this transaction leaves it: no second read
            assert settled is not None
            self.deps.commit(uow)
        if settled.payment_ref != charge_ref:
            # Another charge paid the order between our read and our update: give this one back now.
            self._refund_charge(provider, settled, charge_ref, amount)
        return settled

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, order_id: str) -> Order:
        """Refund a paid order (operator action): money back, unit and quota back to the sale."""
        order = self.orders.get(order_id)
        if not order.needs_transition(OrderStatus.REFUNDED):
            return order
        assert order.payment_ref is not None
        provider = self._charge_provider(order)
        with self.deps.uow() as uow:
            self._journal(uow.db, order.id, provider, order.payment_ref, order.total_cents, REFUND, PENDING)
            uow.commit()
        return self._carry_out_refund(order)

    def _carry_out_refund(self, order: Order) -> Order:
        """Ledger, then order, then provider: each step is idempotent, so recovery may repeat it."""
        self.deps.ledger.refund(order.id)
        now = self.deps.clock()
        written = False
        with self.deps.uow() as uow:
            if order.can_become(OrderStatus.REFUNDED):  # recovery may find it refunded already
                refunded = order.refunded(now)
                if uow.orders.save_transition(order, refunded):
                    uow.record(refunded.event(now))
                    written = True
            self.deps.commit(uow)
        if written:
            for listener in self.orders.refunded_listeners:
                listener([refunded])
        self._send_pending_refunds(order.id)
        return self.orders.get(order.id)

    def _refund_charge(self, provider: str, order: Order, charge_ref: str, amount: int) -> None:
        """Give back a charge that did not settle its order (the order itself does not change)."""
        with self.deps.uow() as uow:
            self._journal(uow.db, order.id, provider, charge_ref, amount, REFUND, PENDING)
            uow.commit()
        self._send_pending_refunds(order.id)

    def _send_pending_refunds(self, order_id: str | None = None) -> int:
        with self.deps.uow() as uow:
            query = select(PaymentRow).where(PaymentRow.kind == REFUND, PaymentRow.status == PENDING)
            if order_id is not None:
                query = query.where(PaymentRow.order_id == order_id)
            pending = uow.db.scalars(query).all()
            for row in pending:
                # The charge reference doubles as the provider's idempotency key: a repeat is a no-op.
                refund_ref = self.provider(row.provider).refund(
                    order_id=row.order_id, charge_ref=row.provider_ref, amount_cents=row.amount_cents
                )
                repo.finish_payment(uow.db, row.id, status=DONE, refund_ref=refund_ref)
            uow.commit()
            return len(pending)

    # -- recovery ------------------------------------------------------------------------------
    def recover(self) -> int:
        """Finish every money movement a crash interrupted; return how many were finished."""
        finished = 0
        with self.deps.uow() as uow:
            unsettled = uow.db.execute(
                select(
                    PaymentRow.provider, PaymentRow.order_id, PaymentRow.provider_ref, PaymentRow.amount_cents
                )
                .join(OrderRow, OrderRow.id == PaymentRow.order_id)
                .outerjoin(
                    refunds := PaymentRow.__table__.alias("refunds"),
                    and_(
                        refunds.c.provider == PaymentRow.provider,
                        refunds.c.provider_ref == PaymentRow.provider_ref,
                        refunds.c.kind == REFUND,
                    ),
                )
                .where(
                    PaymentRow.kind == CHARGE,
                    refunds.c.id.is_(None),
                    (OrderRow.payment_ref.is_(None)) | (OrderRow.payment_ref != PaymentRow.provider_ref),
                )
            ).all()
            interrupted_refunds = uow.db.scalars(
                select(OrderRow.id)
                .join(
                    PaymentRow,
                    and_(PaymentRow.order_id == OrderRow.id, PaymentRow.provider_ref == OrderRow.payment_ref),
                )
                .where(PaymentRow.kind == REFUND, OrderRow.status == OrderStatus.PAID.value)
            ).all()
        for provider, order_id, charge_ref, amount in unsettled:
            with suppress(FlashSaleError):  # refused charges were refunded: the journal says so
                self._apply_charge(provider, order_id, charge_ref, amount)
            finished += 1
        for order_id in interrupted_refunds:
            try:
                self._carry_out_refund(self.orders.get(order_id))
            except FlashSaleError as exc:
                if exc.code is not ErrorCode.SALE_PAUSED:
                    raise
                continue  # paused for a repair: the next recovery carries it out (a start must not fail)
            finished += 1
        return finished + self._send_pending_refunds()

    # -- helpers -------------------------------------------------------------------------------
    def _charge_provider(self, order: Order) -> str:
        with self.deps.read() as r:
            provider = r.db.scalar(
                select(PaymentRow.provider).where(
                    PaymentRow.order_id == order.id,
                    PaymentRow.provider_ref == order.payment_ref,
                    PaymentRow.kind == CHARGE,
                )
            )
        return provider or "sandbox"

    def _journal(
        self, db: Session, order_id: str, provider: str, charge_ref: str, amount: int, kind: str, status: str
    ) -> None:
        """Write a journal row unless that (provider, charge, kind) is there already."""
        row = {
            "order_id": order_id,
            "provider": provider,
            "provider_ref": charge_ref,
            "amount_cents": amount,
            "kind": kind,
            "status": status,
            "created_at": repo.from_epoch(self.deps.clock()),
        }
        db.connection().execute(repo.insert_ignoring_duplicates(db, PaymentRow), [row])
