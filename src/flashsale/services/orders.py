"""Shopper use cases: buy (reserve + record), pay, cancel, refund, read, and expiring unpaid holds.

The ledger decides first and the order row follows; if recording fails, the hold is abandoned (its
units go back and its key is forgotten, so a retry is decided afresh) and no unit is lost. The
ledger is the arbiter between a late payment and the expiry of a hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace

from flashsale.domain import events as ev
from flashsale.domain.cart import is_checkout_line
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold, HoldState
from flashsale.domain.orders import Order, OrderStatus
from flashsale.domain.pricing import quote_flash_line
from flashsale.ledger.contract import Decision
from flashsale.services.deps import Deps
from flashsale.services.fence import Refusals
from flashsale.services.payments import PaymentProvider
from flashsale.services.recall import reserve_recalling
from flashsale.services.settlement import Paid, PaymentDesk
from flashsale.store import repositories as repo
from flashsale.store.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class Buy:
    user_id: str
    item_id: int
    qty: int
    request_id: str
    hold_ttl_s: float | None = None  # a shorter payment window than the item's (hoarders); None: the item's


@dataclass(frozen=True, slots=True)
class Cancel:
    order_id: str
    user_id: str | None = None  # the shopper's own orders only; None: any (operators, jobs)


@dataclass(frozen=True, slots=True)
class Purchase:
    order: Order
    replayed: bool


class OrderService:
    """Buy, pay, cancel, refund and expire.

    With `write_behind`, a granted hold is answered at once and its order row is written by the
    order writer (jobs/order_writer.py) from the ledger's purchase stream; every later step first
    makes sure the row exists, so nothing depends on the writer having caught up.
    """

    def __init__(
        self, deps: Deps, providers: dict[str, PaymentProvider], *, write_behind: bool = False
    ) -> None:
        self.deps = deps
        self.write_behind = write_behind
        self.payments = PaymentDesk(deps, self, providers)
        self.refusals = Refusals(deps, shared=write_behind)
        # Told of the orders written EXPIRED (by a sweep) or CANCELLED, once durable and once each
        # (hoarder control counts them).
        self.closed_listeners: list[Callable[[list[Order]], None]] = []
        # Told of the orders written REFUNDED, once durable (a checkout's coupons may go back).
        self.refunded_listeners: list[Callable[[list[Order]], None]] = []

    # -- buy -----------------------------------------------------------------------------------
    def buy(self, cmd: Buy) -> Purchase:
        """Reserve atomically in the ledger, then record the order; a refusal raises its code."""
        outcome = self.buy_many([cmd])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def buy_many(self, cmds: Sequence[Buy]) -> list[Purchase | Exception]:
        """Decide purchases in one ledger call, in order, and record their new orders together.

        Each answer is what `buy` alone would have answered (a refusal is its FlashSaleError). With
        write-through, every new order of the batch is written in one transaction (group commit:
        one fsync for the batch) before any of them is answered; if that transaction fails, every
        hold of the batch is released (no undersell) and each purchase gets the failure.
        """
        try:
            requests = [(c.item_id, c.user_id, c.qty, c.request_id) for c in cmds]
            decisions = reserve_recalling(self.deps, requests)
        except Exception as exc:  # a retry with the same Idempotency-Key replays what was decided
            return [exc] * len(cmds)
        outcomes: list[Purchase | Order | Exception | int] = []
        granted_at: dict[str, int] = {}  # hold id -> index of the fresh grant in this batch
        replayed = self._stored_replays(decisions)
        for cmd, decision in zip(cmds, decisions, strict=True):
            hold = decision.hold
            if decision.replayed and hold is not None and hold.hold_id in granted_at:
                outcomes.append(granted_at[hold.hold_id])  # a double-click inside the batch: answered below
                continue
            try:
                outcomes.append(self._decided(cmd, decision, replayed))
            except Exception as exc:  # a refusal, or a failure of this purchase alone
                outcomes.append(exc)
            if isinstance(outcomes[-1], Order) and hold is not None:
                granted_at[hold.hold_id] = len(outcomes) - 1
        pairs = enumerate(zip(cmds, outcomes, strict=True))
        fresh = [(i, cmd, o) for i, (cmd, o) in pairs if isinstance(o, Order)]
        recorded = dict(self._record(fresh)) if fresh else {}
        return [self._answer(o, i, recorded) for i, o in enumerate(outcomes)]

    @staticmethod
    def _answer(
        outcome: Purchase | Order | Exception | int, index: int, recorded: dict[int, Purchase | Exception]
    ) -> Purchase | Exception:
        """The final answer of one purchase of a batch, once the batch's fresh orders are recorded."""
        if isinstance(outcome, Order):
            return recorded[index]
        if isinstance(outcome, int):  # the replay of the grant at that index, after it was recorded
            original = recorded[outcome]
            return original if isinstance(original, Exception) else replace(original, replayed=True)
        return outcome

    def _stored_replays(self, decisions: Sequence[Decision]) -> dict[str, Order]:
        """The stored orders of a batch's replays, read at once (a crowd's retries come in hundreds)."""
        ids = [d.hold.hold_id for d in decisions if d.replayed and d.hold is not None]
        if not ids:
            return {}
        with self.deps.read() as r:
            return r.orders.get_many(ids)

    def _decided(
        self, cmd: Buy, decision: Decision, replayed: Mapping[str, Order]
    ) -> Purchase | Order | FlashSaleError:
        """A refusal is returned, not raised; a replay is answered now (from `replayed`, its stored
        order, if read); a fresh grant returns its priced order to record.

        Not raised, because a raised refusal's traceback would hold this batch's frame, whose
        `outcomes` hold the refusal: a reference cycle per refused batch, and with it every command,
        hold and order of the batch, left to the garbage collector (a crowd is refused as often as
        it is granted, and those collections were pauses of tens of milliseconds on a worker).
        """
        if decision.hold is None:
            assert decision.code is not None
            return self.refusals.refusal(cmd.item_id, decision.code)
        hold = decision.hold
        if decision.replayed:  # as it is now: an expired hold reads EXPIRED before the sweeper writes it
            stored = replayed.get(hold.hold_id) or self._ensure_order(hold)
            return Purchase(self._current(stored), replayed=True)
        try:
            if cmd.hold_ttl_s is not None:
                hold = self.deps.ledger.shorten(hold.hold_id, hold.created_at + cmd.hold_ttl_s)
            return self.priced(hold)
        except BaseException:
            self._undo([hold.hold_id])  # undersell guard: the unit goes back
            raise

    def _record(self, fresh: list[tuple[int, Buy, Order]]) -> list[tuple[int, Purchase | Exception]]:
        """Answer fresh grants: with write-behind at once, else after their one shared commit."""
        if self.write_behind:  # the order writer records them from the ledger's stream
            answers: list[tuple[int, Purchase | Exception]] = []
            for i, cmd, order in fresh:
                try:
                    if cmd.hold_ttl_s is not None:
                        self._pin_deadline(order)
                except Exception as exc:
                    with suppress(Exception):
                        self.deps.ledger.release(order.id)  # undersell guard: the unit goes back
                    answers.append((i, exc))
                    continue
                answers.append((i, Purchase(order, replayed=False)))
            return answers
        try:
            with self.deps.uow() as uow:
                new_ids = store_placed(uow, [order for _, _, order in fresh])
                self.deps.commit(uow)
        except BaseException as exc:
            with suppress(Exception):
                self._undo([order.id for _, _, order in fresh])  # undersell guard: the units go back
            if not isinstance(exc, Exception):
                raise
            return [(i, exc) for i, _, _ in fresh]
        answers = []
        for i, cmd, order in fresh:
            if order.id in new_ids:
                answers.append((i, Purchase(order, replayed=False)))
                continue
            try:
                answers.append((i, self._already_stored(cmd, order)))
            except Exception as exc:
                answers.append((i, exc))
        return answers

    def _undo(self, hold_ids: list[str]) -> None:
        """Give back fresh grants whose orders were not recorded and that nobody was told of.

        Write-through: abandoned, so the ledger forgets their keys and a retry is decided afresh
        (released, a retry would replay a cancelled order the shopper never had). Write-behind:
        released, as before: the grant is in the purchase stream already, and the order writer
        stores it, so the ledger must keep it (the order reads cancelled once its move is written).
        """
        if self.write_behind:
            for hold_id in hold_ids:
                self.deps.ledger.release(hold_id)
        else:
            self.deps.ledger.abandon(hold_ids)

    def _already_stored(self, cmd: Buy, order: Order) -> Purchase:
        """A fresh grant whose row was not inserted: the writer stored it first, or its key was used."""
        with self.deps.read() as r:
            stored = r.orders.get(order.id)
        if stored is not None:
            return Purchase(stored, replayed=False)
        # The key was used before the ledger lost it (e.g. a Redis restart): the stored order wins,
        # and the ledger forgets the grant again, so the next retry comes back here, not to it.
        self._undo([order.id])
        return Purchase(self._current(self._stored_by_key(cmd)), replayed=True)

    def _pin_deadline(self, order: Order) -> None:
        """Store an order whose hold was shortened now, with its deadline: the purchase stream carries
        the deadline the hold was granted with, so the writer would store that one."""
        with self.deps.uow() as uow:
            if not store_placed(uow, [order]):  # the writer stored it first
                repo.bring_deadline_forward(uow.db, order.id, order.expires_at)
            self.deps.commit(uow)

    def ledger_lost(self, item_id: int) -> None:
        """A shared ledger forgot a stored order of the item: it lost writes, so start the repair.

        The in-process ledger is rebuilt from the store at start and cannot forget one while it runs.
        """
        if self.write_behind:
            self.refusals.lost_writes(item_id)

    def priced(self, hold: Hold) -> Order:
        """Return the order a hold stands for, at the price its checkout gave it or the flash price."""
        if is_checkout_line(hold.request_id):  # a cart line: priced by the checkout, stored first
            with self.deps.read() as r:
                line = repo.checkout_line_price(r.db, hold.user_id, hold.request_id)
            if line is not None:
                return repo.order_of_hold(hold, unit_price_cents=line[0], total_cents=line[1])
        item, product = self.deps.prices.get(hold.item_id)
        quote = quote_flash_line(item, product, hold.qty, self.deps.price_steps)
        return repo.order_of_hold(
            hold, unit_price_cents=quote.unit_price_cents, total_cents=quote.total_cents
        )

    def _store(self, order: Order) -> Order:
        """Write the order unless it is stored already (a replay or the writer won the race)."""
        with self.deps.uow() as uow:
            if store_placed(uow, [order]):
                self.deps.commit(uow)
                return order
            stored = uow.orders.get(order.id)
            if stored is None:
                raise FlashSaleError(ErrorCode.CONFLICT, f"request id {order.request_id!r} already used")
            return stored

    def _ensure_order(self, hold: Hold) -> Order:
        """Return the stored order of a hold, writing it first if the writer or a crash left it out."""
        with self.deps.read() as r:
            stored = r.orders.get(hold.hold_id)
        return stored if stored is not None else self._store(self.priced(hold))

    def placed(self, cmd: Buy) -> Order | None:
        """The stored order this purchase's Idempotency-Key already placed (same item and qty), or None.

        Admission asks it only of a purchase it is about to refuse, so that a retry of an order placed
        earlier still replays it (see services/admission_gate.py).
        """
        with self.deps.read() as r:
            stored = r.orders.by_key(cmd.user_id, cmd.request_id)
        if stored is None or stored.item_id != cmd.item_id or stored.qty != cmd.qty:
            return None
        return stored

    def _stored_by_key(self, cmd: Buy) -> Order:
        with self.deps.read() as r:
            stored = r.orders.by_key(cmd.user_id, cmd.request_id)
        if stored is None or stored.item_id != cmd.item_id or stored.qty != cmd.qty:
            raise FlashSaleError(ErrorCode.IDEMPOTENCY_MISMATCH)
        return stored

    # -- reads ---------------------------------------------------------------------------------
    def get(self, order_id: str, user_id: str | None = None) -> Order:
        """Return an order as it is now; with `user_id`, someone else's order is reported as not found."""
        return self._seen_by(self.find(order_id), order_id, user_id)

    def _seen_by(self, order: Order | None, order_id: str, user_id: str | None) -> Order:
        """The order as `get` answers it: not found when missing or, with `user_id`, someone else's."""
        if order is None or (user_id is not None and order.user_id != user_id):
            raise FlashSaleError(ErrorCode.ORDER_NOT_FOUND, f"no order {order_id}")
        return self._current(order)

    def stored(self, order_id: str) -> Order:
        """Return an order as stored (an UNPAID one past its window still UNPAID): a transition's start."""
        order = self.find(order_id)
        if order is None:
            raise FlashSaleError(ErrorCode.ORDER_NOT_FOUND, f"no order {order_id}")
        return order

    def find(self, order_id: str) -> Order | None:
        """Return the stored order, writing it from the ledger's hold if the writer has not yet."""
        with self.deps.read() as r:
            stored = r.orders.get(order_id)
        if stored is not None:
            return stored
        hold = self.deps.ledger.get_hold(order_id)
        return None if hold is None else self._ensure_order(hold)

    def list_for_user(self, user_id: str, *, limit: int = 50, offset: int = 0) -> list[Order]:
        with self.deps.read() as r:
            return [self._current(o) for o in r.orders.for_user(user_id, limit=limit, offset=offset)]

    def _current(self, order: Order) -> Order:
        return order.as_seen(self.deps.now())

    # -- money (see services/settlement.py) ----------------------------------------------------
    def pay(
        self, order_id: str, user_id: str, provider: str = "sandbox", *, idempotency_key: str | None = None
    ) -> Order:
        """Pay the shopper's order (charged at most once); see PaymentDesk.pay."""
        return self.pay_once(order_id, user_id, provider, idempotency_key=idempotency_key).order

    def pay_once(
        self, order_id: str, user_id: str, provider: str = "sandbox", *, idempotency_key: str | None = None
    ) -> Paid:
        """Pay as `pay` does, also telling whether the request replayed an earlier one."""
        return self.payments.pay(order_id, user_id, provider, idempotency_key=idempotency_key)

    def handle_payment_callback(self, provider: str, body: bytes, signature: str) -> Order:
        """Settle an order from a provider's signed callback; see PaymentDesk.handle_callback."""
        return self.payments.handle_callback(provider, body, signature)

    def refund(self, order_id: str) -> Order:
        """Refund a paid order; see PaymentDesk.refund."""
        return self.payments.refund(order_id)

    # -- cancel ------------------------------------------------------------------------------
    def cancel(self, order_id: str, user_id: str | None = None) -> Order:
        """Cancel an unpaid order: the units and the shopper's quota go back on sale at once."""
        (answer,) = self.cancel_many([Cancel(order_id, user_id)])
        if isinstance(answer, Exception):
            raise answer
        return answer

    def cancel_many(self, requests: Sequence[Cancel]) -> list[Order | Exception]:
        """Cancel many orders, each answered as `cancel` would answer it alone (a refusal is its
        exception); the ledger releases each hold, and one transaction stores every move."""
        answers: list[Order | Exception] = []
        released: list[tuple[int, Order]] = []
        try:
            with self.deps.read() as r:  # one read for the batch; an order not written yet is found alone
                stored = r.orders.get_many(request.order_id for request in requests)
        except Exception as exc:  # the store failing: every request's answer
            return [exc] * len(requests)
        for request in requests:
            try:
                found = stored.get(request.order_id) or self.find(request.order_id)
                order = self._seen_by(found, request.order_id, request.user_id)
                if order.needs_transition(OrderStatus.CANCELLED):
                    self._release(order.id)
                    released.append((len(answers), order))
                answers.append(order)
            except Exception as exc:  # a refusal, or the store failing: this request's answer alone
                answers.append(exc)
        if not released:
            return answers
        now = self.deps.clock()
        try:
            closed = self._close([(order, order.cancelled(now)) for _, order in released], now)
        except Exception as exc:
            for index, _ in released:
                answers[index] = exc
        else:
            for index, order in released:
                answers[index] = closed[order.id]
        return answers

    def _release(self, order_id: str) -> None:
        """Give the hold's units back in the ledger; a hold found expired is written down first."""
        try:
            self.deps.ledger.release(order_id)
        except FlashSaleError as exc:
            if exc.code is ErrorCode.ORDER_EXPIRED:
                self.expire_due()
            raise

    def _close(self, moves: Sequence[tuple[Order, Order]], at: float) -> dict[str, Order]:
        """Store moves (before, after) the ledger already made, in one transaction; only the request
        that changed a row records its event (the same order twice: the second finds it moved).
        Return the orders as stored after."""
        with self.deps.uow() as uow:
            changed = [after for before, after in moves if uow.orders.save_transition(before, after)]
            for after in changed:
                uow.record(after.event(at))
            closed = uow.orders.get_many(before.id for before, _ in moves)
            self.deps.commit(uow)
        if changed:
            self._closed(changed)
        return closed

    def _closed(self, orders: list[Order]) -> None:
        for listener in self.closed_listeners:
            listener(orders)

    # -- expiry --------------------------------------------------------------------------------
    def expire_due(self, batch: int = 1000) -> int:
        """Expire unpaid holds whose window passed and write them down; return how many were written.

        Also catches orders whose expiry the ledger handed out before a crash: any UNPAID row past
        its window whose hold the ledger reports EXPIRED is written now. With write-behind, an
        expired hold whose order the writer has not stored yet is stored as EXPIRED.
        """
        now = self.deps.clock()
        handed = {h.hold_id: h for h in self.deps.ledger.expire_due(batch)}
        priced = [self.priced(h) for h in handed.values()]  # before the transaction: prices read the store
        written: list[Order] = []
        with self.deps.uow() as uow:
            for unpaid in uow.orders.unpaid_due(repo.from_epoch(now), batch):
                hold = handed.get(unpaid.id) or self.deps.ledger.get_hold(unpaid.id)
                if hold is None or hold.state is not HoldState.EXPIRED:
                    continue
                expired = unpaid.expired(hold.expires_at)
                if uow.orders.save_transition(unpaid, expired):  # another sweep may have written it
                    uow.record(expired.event(hold.expires_at))
                    written.append(expired)
            stored = uow.orders.stored_ids(handed)
            unseen = [o for o in priced if o.id not in stored]
            new_ids = store_placed(uow, unseen)
            for order in (o for o in unseen if o.id in new_ids):
                uow.record(order.event(order.expires_at.timestamp()))  # stored EXPIRED: its OrderExpired
                written.append(order)
            self.deps.commit(uow)
        if written:
            self._closed(written)
        return len(written)


def store_placed(uow: UnitOfWork, orders: list[Order]) -> set[str]:
    """Insert the orders not stored yet, with a HoldPlaced event for each; return the new ids."""
    new_ids = uow.orders.add_new(orders)
    for order in orders:
        if order.id in new_ids:
            uow.record(_placed_event(order))
    return new_ids


def _placed_event(order: Order) -> ev.HoldPlaced:
    """The event of a newly stored order, whatever status it is stored in (an expired one follows)."""
    return ev.HoldPlaced(
        order.id,
        order.item_id,
        order.user_id,
        order.qty,
        order.created_at.timestamp(),
        expires_at=order.expires_at.timestamp(),
        total_cents=order.total_cents,
    )
