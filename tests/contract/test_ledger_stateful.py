"""Model-based test: random reserve/confirm/release/refund/expire/configure/abandon/forget runs vs a model.

Retention of sold holds too: `forget_sold` and `refund_stored` (from the hold as its stored order
has it) are steps of the runs.

After every step the ledger must agree with the model, and the invariants must hold: units are
conserved, no counter is negative, and no user holds more than the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from flashsale.clock import ManualClock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.holds import Hold, HoldState
from flashsale.domain.sale import MAX_QUANTITY_PER_REQUEST, ItemTerms
from flashsale.ledger import Decision, Ledger, StockLevel
from tests.contract.conftest import LedgerFactory
from tests.factories import OPENS_AT, stress_size, terms

TTL = 60.0
ITEMS = (
    terms(1, quota=4, per_user_limit=2, hold_ttl_s=TTL),
    terms(2, quota=2, per_user_limit=1, hold_ttl_s=TTL),
)
USERS = ("ann", "bob", "cy")
KEYS = ("k1", "k2", "k3")
SOURCE = {
    HoldState.SOLD: HoldState.HELD,
    HoldState.RELEASED: HoldState.HELD,
    HoldState.REFUNDED: HoldState.SOLD,
}
VERB = {HoldState.SOLD: "confirm", HoldState.RELEASED: "release", HoldState.REFUNDED: "refund"}

REQUESTS = st.tuples(
    st.sampled_from([t.item_id for t in ITEMS]),
    st.sampled_from(USERS),
    st.integers(-1, 3),
    st.sampled_from(KEYS),
)
SETTINGS = settings(
    max_examples=stress_size(30, 400),
    stateful_step_count=stress_size(30, 80),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass
class ModelHold:
    item_id: int
    user_id: str
    qty: int
    expires_at: float
    state: HoldState


class Model:
    """What the ledger should say, computed the obvious way."""

    def __init__(self) -> None:
        self.now = OPENS_AT
        self.terms: dict[int, ItemTerms] = {t.item_id: t for t in ITEMS}
        self.holds: dict[str, ModelHold] = {}
        self.keys: dict[tuple[str, str], str] = {}
        self.unreported: set[str] = set()
        self.done: dict[str, float] = {}  # finished and handed out -> when (what retention may forget)
        self.sold_at: dict[str, float] = {}  # sold -> when (what the sold retention may forget)
        # Sold holds forgotten: their units still count; the hold as its stored order has it.
        self.forgotten_sold: dict[str, tuple[ModelHold, Hold]] = {}
        self.retired: set[str] = set()  # users some of whose keys were forgotten
        self.gone: set[str] = set()  # abandoned or forgotten holds

    def units(self, item_id: int, *states: HoldState, user_id: str | None = None) -> int:
        every = [*self.holds.values(), *(h for h, _ in self.forgotten_sold.values())]
        return sum(
            h.qty
            for h in every
            if h.item_id == item_id and h.state in states and user_id in (None, h.user_id)
        )

    def used(self, item_id: int, user_id: str) -> int:
        return self.units(item_id, HoldState.HELD, HoldState.SOLD, user_id=user_id)

    def level(self, item_id: int) -> StockLevel:
        held, sold = self.units(item_id, HoldState.HELD), self.units(item_id, HoldState.SOLD)
        quota = self.terms[item_id].quota
        return StockLevel(item_id, quota, quota - held - sold, held, sold)

    def refusal(
        self, item_id: int, user_id: str, qty: int, key: str, checked: bool = False
    ) -> ErrorCode | None:
        """Return the code the ledger must refuse with, or None when it must grant (or replay)."""
        known = self.keys.get((user_id, key))
        if known is not None:
            hold = self.holds[known]
            return None if (hold.item_id, hold.qty) == (item_id, qty) else ErrorCode.IDEMPOTENCY_MISMATCH
        if user_id in self.retired and not checked:
            return ErrorCode.REQUEST_FORGOTTEN
        item = self.terms[item_id]
        available = self.level(item_id).available
        if not 1 <= qty <= MAX_QUANTITY_PER_REQUEST:
            return ErrorCode.INVALID_QUANTITY
        if not item.opens_at <= self.now < item.closes_at:
            return ErrorCode.SESSION_NOT_OPEN
        if self.used(item_id, user_id) + qty > item.per_user_limit:
            return ErrorCode.LIMIT_EXCEEDED
        if available <= 0:
            return ErrorCode.SOLD_OUT
        if qty > available:
            return ErrorCode.INSUFFICIENT_STOCK
        return None

    def move_error(self, hold_id: str, target: HoldState) -> ErrorCode | None:
        """Return why the hold cannot move to `target`; None if it may (or already did)."""
        if hold_id in self.gone:
            return ErrorCode.UNKNOWN_HOLD
        state = self.holds[hold_id].state
        if state in (target, SOURCE[target]):
            return None
        return ErrorCode.ORDER_EXPIRED if state is HoldState.EXPIRED else ErrorCode.INVALID_TRANSITION

    def drop(self, hold_id: str) -> None:
        del self.holds[hold_id]
        self.keys = {k: h for k, h in self.keys.items() if h != hold_id}
        self.unreported.discard(hold_id)
        self.done.pop(hold_id, None)
        self.sold_at.pop(hold_id, None)
        self.gone.add(hold_id)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for hold_id, hold in self.holds.items():
            if hold.state is HoldState.HELD and hold.expires_at <= self.now:
                hold.state = HoldState.EXPIRED
                self.unreported.add(hold_id)


class LedgerMachine(RuleBasedStateMachine):
    """Drive one ledger and the model side by side; `build` is set per engine by the test."""

    build: LedgerFactory
    holds = Bundle("holds")

    @initialize()
    def open_the_sale(self) -> None:
        self.model = Model()
        self.clock = ManualClock(OPENS_AT)
        self.ledger: Ledger = type(self).build(self.clock)
        for item in ITEMS:
            self.ledger.configure(item)

    @rule(target=holds, request=REQUESTS)
    def reserve(self, request: tuple[int, str, int, str]) -> object:
        item_id, user_id, qty, key = request
        decision = self.ledger.reserve(item_id=item_id, user_id=user_id, qty=qty, request_id=key)
        return multiple(*self.follow(request, decision))

    @rule(target=holds, batch=st.lists(REQUESTS, max_size=4), checked=st.booleans())
    def reserve_many(self, batch: list[tuple[int, str, int, str]], checked: bool) -> object:
        decisions = self.ledger.reserve_many(batch, checked=checked)
        assert len(decisions) == len(batch)
        return multiple(
            *(i for r, d in zip(batch, decisions, strict=True) for i in self.follow(r, d, checked))
        )

    def follow(
        self, request: tuple[int, str, int, str], decision: Decision, checked: bool = False
    ) -> list[str]:
        """Check a decision against the model, apply it there, and return the id of a new hold."""
        item_id, user_id, qty, key = request
        assert decision.code is self.model.refusal(item_id, user_id, qty, key, checked)
        known = self.model.keys.get((user_id, key))
        if decision.hold is None:
            return []
        hold = decision.hold
        assert (hold.item_id, hold.user_id, hold.qty, hold.request_id) == request
        assert decision.replayed is (known is not None)
        if known is not None:
            assert hold.hold_id == known and hold.state is self.model.holds[known].state
            return []
        assert hold.hold_id not in self.model.holds and hold.state is HoldState.HELD
        assert hold.expires_at == self.model.now + TTL
        self.model.holds[hold.hold_id] = ModelHold(item_id, user_id, qty, hold.expires_at, HoldState.HELD)
        self.model.keys[(user_id, key)] = hold.hold_id
        return [hold.hold_id]

    def settle(self, hold_id: str, target: HoldState) -> None:
        expected = self.model.move_error(hold_id, target)
        try:
            hold = getattr(self.ledger, VERB[target])(hold_id)
        except FlashSaleError as exc:
            assert exc.code is expected
            return
        assert expected is None and hold.state is target
        if self.model.holds[hold_id].state is not target:
            if target is HoldState.SOLD:
                self.model.sold_at[hold_id] = self.model.now
            else:
                self.model.sold_at.pop(hold_id, None)
                self.model.done[hold_id] = self.model.now
        self.model.holds[hold_id].state = target

    @rule(hold_id=holds)
    def confirm(self, hold_id: str) -> None:
        self.settle(hold_id, HoldState.SOLD)

    @rule(hold_id=holds)
    def release(self, hold_id: str) -> None:
        self.settle(hold_id, HoldState.RELEASED)

    @rule(hold_id=holds)
    def refund(self, hold_id: str) -> None:
        self.settle(hold_id, HoldState.REFUNDED)

    @rule(seconds=st.sampled_from([1.0, 30.0, TTL - 1, TTL, TTL + 1]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.model.advance(seconds)

    @rule(limit=st.sampled_from([1, 1000]))
    def expire_due(self, limit: int) -> None:
        handed = {h.hold_id for h in self.ledger.expire_due(limit)}

        assert handed <= self.model.unreported and len(handed) == min(limit, len(self.model.unreported))
        self.model.unreported -= handed
        self.model.done.update(dict.fromkeys(handed, self.model.now))

    @rule(hold_ids=st.lists(holds, max_size=3, unique=True))
    def abandon(self, hold_ids: list[str]) -> None:
        gone = self.ledger.abandon(hold_ids)
        undone = [
            i
            for i in hold_ids
            if i in self.model.holds
            and self.model.holds[i].state in (HoldState.HELD, HoldState.RELEASED, HoldState.EXPIRED)
        ]
        assert gone == len(undone)
        for hold_id in undone:
            self.model.drop(hold_id)

    @rule(picked=st.lists(holds, max_size=3, unique=True), ago=st.sampled_from([0.0, 1.0, TTL]))
    def forget(self, picked: list[str], ago: float) -> None:
        before = self.model.now - ago
        listed = self.ledger.finished(before, 1000)
        assert {h.hold_id for h in listed} == {i for i, at in self.model.done.items() if at < before}
        assert all(h.state is self.model.holds[h.hold_id].state for h in listed)
        chosen = list(dict.fromkeys(picked + [h.hold_id for h in listed[:2]]))
        gone = self.ledger.forget(chosen)
        forgettable = [i for i in chosen if i in self.model.done]
        assert gone == len(forgettable)
        for hold_id in forgettable:
            self.model.retired.add(self.model.holds[hold_id].user_id)
            self.model.drop(hold_id)

    @rule(picked=st.lists(holds, max_size=3, unique=True), ago=st.sampled_from([0.0, 1.0, TTL]))
    def forget_sold(self, picked: list[str], ago: float) -> None:
        before = self.model.now - ago
        listed = self.ledger.sold_before(before, 1000)
        assert {h.hold_id for h in listed} == {i for i, at in self.model.sold_at.items() if at < before}
        assert all(h.state is HoldState.SOLD for h in listed)
        chosen = list(dict.fromkeys(picked + [h.hold_id for h in listed[:2]]))
        stored = {i: self.ledger.get_hold(i) for i in chosen}  # as the order store has them
        gone = self.ledger.forget_sold(chosen)
        forgettable = [i for i in chosen if i in self.model.sold_at]
        assert gone == len(forgettable)
        for hold_id in forgettable:
            hold, snapshot = self.model.holds[hold_id], stored[hold_id]
            assert snapshot is not None
            self.model.forgotten_sold[hold_id] = (hold, snapshot)
            self.model.retired.add(hold.user_id)
            self.model.drop(hold_id)

    @rule(hold_id=holds)
    def refund_stored(self, hold_id: str) -> None:
        if hold_id in self.model.forgotten_sold:
            hold, stored = self.model.forgotten_sold.pop(hold_id)
            refunded = self.ledger.refund_stored(stored)
            assert refunded == stored._replace(state=HoldState.REFUNDED)
            self.model.holds[hold_id] = replace(hold, state=HoldState.REFUNDED)  # kept, finished
            self.model.gone.discard(hold_id)
            self.model.done[hold_id] = self.model.now
        elif hold_id in self.model.holds:  # a hold the ledger knows: refunded by id
            current = self.ledger.get_hold(hold_id)
            assert current is not None
            expected = self.model.move_error(hold_id, HoldState.REFUNDED)
            try:
                refunded = self.ledger.refund_stored(current._replace(state=HoldState.SOLD))
            except FlashSaleError as exc:
                assert exc.code is expected
                return
            assert expected is None and refunded.state is HoldState.REFUNDED
            if self.model.holds[hold_id].state is not HoldState.REFUNDED:
                self.model.sold_at.pop(hold_id, None)
                self.model.done[hold_id] = self.model.now
            self.model.holds[hold_id].state = HoldState.REFUNDED

    @rule(item_id=st.sampled_from([t.item_id for t in ITEMS]), quota=st.integers(0, 6))
    def configure_quota(self, item_id: int, quota: int) -> None:
        committed = self.model.units(item_id, HoldState.HELD, HoldState.SOLD)
        changed = replace(self.model.terms[item_id], quota=quota)
        try:
            level = self.ledger.configure(changed)
        except FlashSaleError as exc:
            assert exc.code is ErrorCode.QUOTA_BELOW_COMMITTED and quota < committed
            return
        assert quota >= committed
        self.model.terms[item_id] = changed
        assert level == self.model.level(item_id)

    @invariant()
    def ledger_agrees_with_the_model(self) -> None:
        for item_id in self.model.terms:
            level = self.ledger.stock(item_id)
            assert level.conserved, level
            assert level == self.model.level(item_id)
            for user in USERS:
                used = self.ledger.used_by(item_id, user)
                assert used == self.model.used(item_id, user) <= self.model.terms[item_id].per_user_limit
        for hold_id, hold in self.model.holds.items():
            current = self.ledger.get_hold(hold_id)
            assert current is not None and current.state is hold.state
        for hold_id in self.model.gone:
            assert self.ledger.get_hold(hold_id) is None
        live = [h.expires_at for h in self.model.holds.values() if h.state is HoldState.HELD]
        assert self.ledger.next_expiry() == (min(live) if live else None)


def test_the_ledger_agrees_with_a_simple_model_after_every_step(make_ledger: LedgerFactory) -> None:
    machine = type("Machine", (LedgerMachine,), {"build": staticmethod(make_ledger)})
    run_state_machine_as_test(machine, settings=SETTINGS)
