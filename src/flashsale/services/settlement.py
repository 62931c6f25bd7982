"""Money in and out: charges, refunds, and finishing whatever a crash interrupted.

Every movement of money is written to the `payments` journal *before* the order changes state.
So a process killed at any instant leaves a journal row that `recover()` completes on the next
start or sweep: a charge that never reached its order is applied (or refunded when the hold is
gone), and a refund that was decided is carried through. Nothing paid is lost or counted twice.

A free order (services/free_orders.py) is decided in the transaction that marks the order paid,
which also journals its rebate as pending; the rebate is then sent like a refund (and by
`recover()` after a crash), and a later refund of the order gives back only what the rebate left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from sqlalchemy import Select, and_, select, tuple_
from sqlalchemy.orm import Session

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.free_orders import FreeOrderRule, refundable_cents
from flashsale.domain.orders import Order, OrderStatus
from flashsale.domain.payments import AttemptStatus
from flashsale.randomness import token_hex
from flashsale.services import free_orders
from flashsale.services.deps import Deps
from flashsale.services.pay_attempts import PaymentAttempts
from flashsale.services.payments import Callback, PaymentProvider
from flashsale.store import repositories as repo
from flashsale.store.tables import OrderRow, PaymentRow
from flashsale.store.uow import UnitOfWork

CHARGE, REFUND, REBATE = "charge", "refund", "rebate"
MONEY_BACK = (REFUND, REBATE)  # the journal kinds sent to the provider as (partial) refunds
PENDING, DONE = "pending", "done"
FREE = "free"  # the journal's provider of a zero-total order's 0-cent charge: no provider is asked
# A confirm refused with one of these leaves the charge without its order: it is refunded at once.
REFUND_ON = frozenset(
    {ErrorCode.ORDER_EXPIRED, ErrorCode.INVALID_TRANSITION, ErrorCode.SALE_PAUSED, ErrorCode.UNKNOWN_HOLD}
)
WAIT_S = 5.0  # how long a second pay request waits for the first before PAYMENT_IN_PROGRESS
POLL_S = 0.02


_Entries = dict[str, tuple[str, int]]  # a charge reference's journal rows: kind -> (order id, amount)


@dataclass(frozen=True, slots=True)
class PayRequest:
    """One pay request of a batch (`PaymentDesk.pay_many`): what `PaymentDesk.pay` takes."""

    order_id: str
    user_id: str
    provider: str = "sandbox"
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class _Charge:
    """A charge of a batch that the provider confirmed, on its way to the journal and the order."""

    index: int  # the request's place in the batch
    provider: str
    order: Order  # as read before the charge
    attempt_id: int
    callback: Callback


def _auto_key() -> str:
    """The attempt key of a pay request that brought none: every such request is new."""
    return f"auto:{token_hex(16)}"


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
        key = idempotency_key or _auto_key()
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
        with self._attempt(attempt_id):
            order = self.orders.get(order_id, user_id)
            if not order.needs_transition(OrderStatus.PAID):  # paid while we took the slot
                self.attempts.finish(attempt_id, AttemptStatus.DONE)
                return order
            callback = self._charged(provider, order)
            if callback is None:  # a real provider calls back later; the callback ends the attempt
                return order
            # The order exists (we just read it): settle without looking it up again.
            paid = self._settle(provider, callback)
        if paid.status is not OrderStatus.PAID:  # paying it ended the attempt in the same transaction
            self.attempts.finish(attempt_id, AttemptStatus.DONE)
        return paid

    @contextmanager
    def _attempt(self, attempt_id: int) -> Iterator[None]:
        """End the attempt as a failure escaping this block says: refused, or abandoned for a retry."""
        try:
            yield
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

    def _charged(self, provider: str, order: Order) -> Callback | None:
        """Charge the order; the verified callback of a provider that answers at once, else None."""
        signed = self.provider(provider).charge(order)
        if signed is None:
            return None
        callback = self.provider(provider).verify(signed.body, signed.signature)
        if callback.status != "succeeded":
            raise FlashSaleError(ErrorCode.PAYMENT_MISMATCH, "the provider declined the payment")
        return callback

    # -- charges in batches ----------------------------------------------------------------------
    def pay_many(self, requests: Sequence[PayRequest]) -> list[Paid | Exception]:
        """Pay many orders, each answered as `pay` would answer it alone (a refusal is its exception).

        A crowd's common case, the first pay of a live unpaid order, goes in batch: one
        transaction takes the charge slots, one journals the charges, one settles the orders (a
        compare-and-set each), so a batch costs three commits instead of three per payment.
        Anything else (a repeated key, a taken slot, the same order twice, a declined charge, a
        refusal of the ledger, a journal that disagrees) is left to `pay` and the single-payment
        steps, so every rule lives there once.
        """
        answers: list[Paid | Exception | None] = [None] * len(requests)
        first = self._first_pays(requests)
        opened = self.attempts.open_many(
            [(o.id, r.user_id, r.idempotency_key or _auto_key(), r.provider) for _, r, o in first]
        )
        # Read again under the slots, as `_charge` does: a pay that ended just before took them is seen.
        with self.deps.read() as r:
            now_stored = r.orders.get_many(opened)
        now = self.deps.now()
        charges: list[_Charge] = []
        for index, request, _ in first:
            attempt_id = opened.get(request.order_id)
            if attempt_id is None:
                continue  # the slot or the key was taken meanwhile: `pay` waits on it below
            order = now_stored[request.order_id].as_seen(now)  # as `OrderBook.get` reports it
            try:
                with self._attempt(attempt_id):
                    if not order.needs_transition(OrderStatus.PAID):
                        self.attempts.finish(attempt_id, AttemptStatus.DONE)
                        answers[index] = Paid(order, replayed=False)
                        continue
                    callback = self._charged(request.provider, order)
            except Exception as exc:
                answers[index] = exc
                continue
            if callback is None:
                answers[index] = Paid(order, replayed=False)
            else:
                charges.append(_Charge(index, request.provider, order, attempt_id, callback))
        for index, paid in self._settle_many(charges).items():
            answers[index] = paid
        for index, request in enumerate(requests):
            if answers[index] is None:
                try:
                    answers[index] = self.pay(
                        request.order_id,
                        request.user_id,
                        request.provider,
                        idempotency_key=request.idempotency_key,
                    )
                except Exception as exc:
                    answers[index] = exc
        return [a for a in answers if a is not None]

    def _first_pays(self, requests: Sequence[PayRequest]) -> list[tuple[int, PayRequest, Order]]:
        """The requests that are an order's first pay: stored, the shopper's, UNPAID and live, key unused."""
        keys = [(r.user_id, r.idempotency_key) for r in requests if r.idempotency_key is not None]
        used = self.attempts.seen_keys(keys)
        with self.deps.read() as r:
            stored = r.orders.get_many({req.order_id for req in requests})
        now = self.deps.now()
        first: list[tuple[int, PayRequest, Order]] = []
        taken: set[str] = set()
        for index, request in enumerate(requests):
            order = stored.get(request.order_id)
            if (
                order is None  # with write-behind, perhaps not written yet: `pay` stores it
                or order.user_id != request.user_id
                or order.effective_status(now) is not OrderStatus.UNPAID
                or order.id in taken
                or (request.user_id, request.idempotency_key) in used
            ):
                continue
            taken.add(order.id)
            first.append((index, request, order))
        return first

    def _settle_many(self, charges: Sequence[_Charge]) -> dict[int, Paid | Exception]:
        """Journal the charges in one transaction and settle them in another; answer each by index."""
        answers: dict[int, Paid | Exception] = {}
        try:
            # The orders as read under their slots: only a cancel or an expiry can have moved one
            # since, and then the ledger refuses the confirm below and the single steps settle it.
            read = {c.order.id: c.order for c in charges}
            journaled = self._journal_charges([(c.provider, c.callback) for c in charges], read)
        except Exception as exc:
            for charge in charges:
                with suppress(Exception):
                    self.attempts.finish(charge.attempt_id, AttemptStatus.ABANDONED)
                answers[charge.index] = exc
            return answers
        confirmed: list[_Charge] = []
        for charge, (entries, stored) in zip(charges, journaled, strict=True):
            plain = (
                entries.get(CHARGE) == (charge.order.id, charge.callback.amount_cents)
                and REFUND not in entries
                and stored is not None
                and stored.status is OrderStatus.UNPAID
                and charge.callback.amount_cents == stored.total_cents
            )
            if plain:
                try:
                    self.deps.ledger.confirm(charge.order.id)
                except FlashSaleError:
                    pass  # the single steps below say what the refusal means (a refund, a repair)
                else:
                    confirmed.append(charge)
                    continue
            answers[charge.index] = self._finish_one(charge, entries, stored)
        if confirmed:
            answers.update(self._mark_paid(confirmed))
        return answers

    def _finish_one(self, charge: _Charge, entries: _Entries, stored: Order | None) -> Paid | Exception:
        """Settle one journaled charge of a batch by the single-payment steps."""
        try:
            with self._attempt(charge.attempt_id):
                paid = self._settle_journaled(charge.provider, charge.callback, entries, stored)
        except Exception as exc:
            return exc
        if paid.status is not OrderStatus.PAID:
            self.attempts.finish(charge.attempt_id, AttemptStatus.DONE)
        return Paid(paid, replayed=False)

    def _mark_paid(self, confirmed: Sequence[_Charge]) -> dict[int, Paid | Exception]:
        """Store the confirmed charges' orders as paid in one transaction, with their events."""
        now = self.deps.clock()
        paid = [c.order.paid(c.callback.provider_ref, now) for c in confirmed]
        try:
            with self.deps.uow() as uow:
                settled = uow.orders.mark_paid(paid)
                mine = [
                    (c, o)
                    for c, o in zip(confirmed, paid, strict=True)
                    if settled[o.id].payment_ref == o.payment_ref
                ]
                self.attempts.settle_open(uow.db, *(o.id for _, o in mine))
                rules = free_orders.rules_for(uow.db, {o.item_id for _, o in mine})
                free = self._record_paid(uow, [(o, c.provider) for c, o in mine], now, rules)
                self.deps.commit(uow)
        except Exception as exc:
            # Journaled and confirmed, not settled: `recover()` applies these charges (the journal says so).
            for charge in confirmed:
                with suppress(Exception):
                    self.attempts.finish(charge.attempt_id, AttemptStatus.ABANDONED)
            return {c.index: exc for c in confirmed}
        answers: dict[int, Paid | Exception] = {}
        for charge in confirmed:
            order = settled[charge.order.id]
            if order.payment_ref != charge.callback.provider_ref:
                # Another charge paid the order first: give this one back, as `_apply_charge` does.
                self._refund_charge(
                    charge.provider, order, charge.callback.provider_ref, charge.callback.amount_cents
                )
            answers[charge.index] = Paid(order, replayed=False)
        for order_id in free:
            self._send_pending_refunds(order_id)  # the rebates; recovery sends them if we die first
        return answers

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

    def settle_free(self, order_id: str) -> Order:
        """Settle an order whose total is 0 (a prize's) with no money moved; a repeat is harmless.

        The order goes the way of any charge: a 0-cent charge row, referenced by the order, is
        journaled first, then the ledger confirms the hold and the order is marked PAID, so the
        audit nets it to 0 and `recover()` finishes a settlement a crash cut. A hold that ended
        unpaid is refused as any late charge is (ORDER_EXPIRED, ...), and its 0 cents "refunded".
        """
        order = self.orders.stored(order_id)  # with write-behind, this stores it if need be
        if order.total_cents != 0:
            raise FlashSaleError(ErrorCode.PAYMENT_MISMATCH, f"order {order_id} is not free")
        if not order.needs_transition(OrderStatus.PAID):
            return order
        callback = Callback(order_id, f"{FREE}:{order_id}", 0, "succeeded")
        return self._settle(FREE, callback)

    def _settle(self, provider: str, callback: Callback) -> Order:
        """Journal a verified charge of a stored order and settle the order with it."""
        if callback.status != "succeeded":
            raise FlashSaleError(ErrorCode.PAYMENT_MISMATCH, "the provider declined the payment")
        ((entries, stored),) = self._journal_charges([(provider, callback)])
        return self._settle_journaled(provider, callback, entries, stored)

    def _journal_charges(
        self, charges: Sequence[tuple[str, Callback]], read: Mapping[str, Order] | None = None
    ) -> list[tuple[_Entries, Order | None]]:
        """Journal verified charges in one transaction; per charge, its journal entries and its order.

        The entries are the journal's rows of that charge reference by kind (the charge, a refund
        if any): (order id, amount) each. The order is as stored: the settlement's starting point,
        read in this transaction unless the caller read it under the charge slot (`read`).
        """
        with self.deps.uow() as uow:
            self._journal_rows(
                uow.db,
                [(c.order_id, p, c.provider_ref, c.amount_cents, CHARGE, DONE) for p, c in charges],
            )
            refs = {(provider, callback.provider_ref) for provider, callback in charges}
            found = uow.db.execute(self._entries(refs))
            entries: dict[tuple[str, str], _Entries] = {}
            for provider, ref, kind, order_id, cents in found:
                entries.setdefault((provider, ref), {})[kind] = (order_id, cents)
            stored = read if read is not None else uow.orders.get_many(c.order_id for _, c in charges)
            uow.commit()
        return [(entries[(p, c.provider_ref)], stored.get(c.order_id)) for p, c in charges]

    def _settle_journaled(
        self, provider: str, callback: Callback, entries: _Entries, stored: Order | None
    ) -> Order:
        """Settle the order with a journaled charge (`entries`: the journal's rows of its reference)."""
        charged_order, charged_cents = entries[CHARGE]
        if (charged_order, charged_cents) != (callback.order_id, callback.amount_cents):
            raise FlashSaleError(
                ErrorCode.PAYMENT_MISMATCH,
                f"provider reference {callback.provider_ref!r} belongs to another charge",
            )
        if REFUND in entries:  # that money went back: it cannot pay the order now; answer as the first time
            order = self.orders.get(callback.order_id)
            if callback.amount_cents != order.total_cents:
                raise FlashSaleError(ErrorCode.PAYMENT_MISMATCH, "the amount does not match the order")
            return order
        return self._apply_charge(
            provider, callback.order_id, callback.provider_ref, callback.amount_cents, stored
        )

    @staticmethod
    def _entries(refs: set[tuple[str, str]]) -> Select[str, str, str, str, int]:
        """The journal rows of these charge references (provider, reference): the charge, a refund if any."""
        return select(
            PaymentRow.provider,
            PaymentRow.provider_ref,
            PaymentRow.kind,
            PaymentRow.order_id,
            PaymentRow.amount_cents,
        ).where(tuple_(PaymentRow.provider, PaymentRow.provider_ref).in_(refs))

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
        won = False
        with self.deps.uow() as uow:
            # `order` is as stored (not as reported): the compare-and-set starts from its status.
            if order.can_become(OrderStatus.PAID):
                paid = order.paid(charge_ref, now)
                if uow.orders.save_transition(order, paid):
                    self.attempts.settle_open(uow.db, order_id)
                    won = bool(self._record_paid(uow, [(paid, provider)], now))
            settled = uow.orders.get(order_id)  # as this transaction leaves it: no second read
            assert settled is not None
            self.deps.commit(uow)
        if settled.payment_ref != charge_ref:
            # Another charge paid the order between our read and our update: give this one back now.
            self._refund_charge(provider, settled, charge_ref, amount)
        if won:
            self._send_pending_refunds(order_id)  # the rebate; recovery sends it if we die first
        return settled

    def _record_paid(
        self,
        uow: UnitOfWork,
        paid: Sequence[tuple[Order, str]],
        now: float,
        rules: Mapping[int, FreeOrderRule] | None = None,
    ) -> list[str]:
        """In the transaction that paid the orders (each with its charge's provider): their events, and
        free orders' ranks; return the ids of the orders that won one.

        Counted only by the one transaction that paid an order: a free order's rank is taken and its
        rebate journaled together with the payment, or not at all. `rules`: see `free_orders.count`.
        """
        for order, _ in paid:
            uow.record(order.event(now))
        by_id = {order.id: (order, provider) for order, provider in paid}
        wins = free_orders.count(uow.db, [order for order, _ in paid], now, rules)
        for win in wins:
            order, provider = by_id[win.order_id]
            assert order.payment_ref is not None
            self._journal(uow.db, order.id, provider, order.payment_ref, win.rebate_cents, REBATE, PENDING)
            uow.record(win.event())
        return [win.order_id for win in wins]

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, order_id: str) -> Order:
        """Refund a paid order (operator action): money back, unit and quota back to the sale.

        A free order gives back only what its rebate left: the charge less the rebate.
        """
        order = self.orders.get(order_id)
        if not order.needs_transition(OrderStatus.REFUNDED):
            return order
        assert order.payment_ref is not None
        provider = self._charge_provider(order)
        with self.deps.uow() as uow:
            # The rebate is journaled with the payment, so a refund of a PAID order always sees it.
            rebated = uow.db.scalar(
                select(PaymentRow.amount_cents).where(
                    PaymentRow.provider == provider,
                    PaymentRow.provider_ref == order.payment_ref,
                    PaymentRow.kind == REBATE,
                )
            )
            rest = refundable_cents(order.total_cents, rebated or 0)
            self._journal(uow.db, order.id, provider, order.payment_ref, rest, REFUND, PENDING)
            uow.commit()
        return self._carry_out_refund(order)

    def _carry_out_refund(self, order: Order) -> Order:
        """Ledger, then order, then provider: each step is idempotent, so recovery may repeat it.

        The ledger is told the hold as the order stands for it: retention may have forgotten a
        sold hold, and `refund_stored` still moves its units back once.
        """
        self.deps.ledger.refund_stored(repo.hold_of(order))
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
        """Send every refund and rebate decided but not sent (of one order, or all); return how many."""
        with self.deps.uow() as uow:
            query = select(PaymentRow).where(PaymentRow.kind.in_(MONEY_BACK), PaymentRow.status == PENDING)
            if order_id is not None:
                query = query.where(PaymentRow.order_id == order_id)
            pending = uow.db.scalars(query.order_by(PaymentRow.id)).all()
            now = self.deps.clock()
            for row in pending:
                refund_ref = None
                if row.amount_cents > 0:  # a free order's refund may have nothing left to give
                    # The charge reference (the rebate: its own key) is the provider's idempotency key,
                    # so a repeat after a crash, or by a racing sender, is a no-op.
                    refund_ref = self.provider(row.provider).refund(
                        order_id=row.order_id,
                        charge_ref=row.provider_ref,
                        amount_cents=row.amount_cents,
                        key=f"rebate:{row.provider_ref}" if row.kind == REBATE else None,
                    )
                repo.finish_payment(uow.db, row.id, status=DONE, refund_ref=refund_ref)
                if row.kind == REBATE:
                    rebated = free_orders.rebate_sent(uow.db, row.order_id, now)
                    if rebated is not None:  # only the sender that moved the win tells of it
                        uow.record(rebated.event())
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
        self._journal_rows(db, [(order_id, provider, charge_ref, amount, kind, status)])

    def _journal_rows(self, db: Session, rows: Sequence[tuple[str, str, str, int, str, str]]) -> None:
        """`_journal` for many rows at once: (order, provider, charge, amount, kind, status) each."""
        at = repo.from_epoch(self.deps.clock())
        values = [
            {
                "order_id": order_id,
                "provider": provider,
                "provider_ref": charge_ref,
                "amount_cents": amount,
                "kind": kind,
                "status": status,
                "created_at": at,
            }
            for order_id, provider, charge_ref, amount, kind, status in rows
        ]
        db.connection().execute(repo.insert_ignoring_duplicates(db, PaymentRow), values)
