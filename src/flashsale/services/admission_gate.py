"""The admission gate: everything a purchase must pass before the ledger decides, in one place.

Sale tokens are issued after the item's quiz, if it has one (services/quiz.py). Purchases are
checked in order, cheapest and least final first: the rate limits (settings'), a rehearsal copy's
pass (services/rehearsal_pass.py), the campaign's rate limits, hoarder control, the waiting room (a
live buy window), the live-hold caps per address and device (a slot claimed, settled by `decided`
once the ledger answered), then the sale token, which is spent last so that a refusal by an earlier
check does not burn it. Every term comes from memory (`AdmissionPolicies`);
the state the checks share across workers (counters, the line, spent tokens) is in the ledger's
Redis in scale-out and in process on the embedded default. Both purchase edges (the FastAPI route
and its pure-ASGI fast path) call `admit_purchase` through `api.shop.purchases.decide`.

A replay of an earlier purchase (same Idempotency-Key) returns the original order whatever came
since: the sale token remembers the request it was spent on, and a shopper refused by hoarder
control or a live-hold cap, or whose buy window has ended, is let through when the key already
placed an order of that item and quantity (one indexed read of the store, made only on those
refusals), so the ledger replays it. A new purchase still needs a live window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from flashsale.clock import Clock
from flashsale.domain.admission import ItemAdmission, QuizQuestion
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import Order
from flashsale.ledger.contract import Ledger
from flashsale.services.admission import Admission, shared_redis
from flashsale.services.admission_policy import AdmissionPolicies
from flashsale.services.hoarders import (
    HoardCounts,
    HoarderControl,
    MemoryHoardCounts,
    RedisHoardCounts,
    stored_closings,
)
from flashsale.services.hold_caps import HoldCapControl, HoldClaim, HoldSlots, MemoryHoldSlots, RedisHoldSlots
from flashsale.services.orders import Buy, OrderService, Purchase
from flashsale.services.quiz import MemoryPenalties, Penalties, QuizDesk, RedisPenalties
from flashsale.services.rehearsal_pass import RehearsalPasses
from flashsale.services.room_pace import MemoryPollPace, PollPace, RedisPollPace
from flashsale.services.sale_tokens import MemorySpentTokens, RedisSpentTokens, SaleTokens, SpentTokens
from flashsale.services.waiting_room import Line, MemoryLine, RedisLine, RoomStatus, WaitingRoom


@dataclass
class AdmissionState:
    """What admission keeps per platform (shared by every app built on it): terms, tokens, lines, counts."""

    policies: AdmissionPolicies
    tokens: SaleTokens
    room: WaitingRoom
    hoarders: HoarderControl
    quiz: QuizDesk
    caps: HoldCapControl
    passes: RehearsalPasses
    redis: Redis | None = None  # the client of the ledger's Redis, in scale-out
    placed: Callable[[Buy], Order | None] = lambda cmd: None  # the order a purchase's key placed before

    def close(self) -> None:
        """Wait for a reload of the terms under way; close the Redis client (its connection pool), if any."""
        self.policies.close()
        if self.redis is not None:
            self.redis.close()


def admission_state(
    reads: sessionmaker[Session],
    ledger: Ledger,
    clock: Clock,
    orders: OrderService,
    *,
    ledger_url: str,
    key: bytes,
    token_ttl_s: float,
) -> AdmissionState:
    """Wire admission's state on the ledger's Redis (scale-out) or in process; count closings from now.

    In process, the hoarders' counts start from the stored EXPIRED and CANCELLED orders (the database is the
    truth after a restart); in Redis they persist with the ledger.
    """
    policies = AdmissionPolicies(reads)
    shared = shared_redis(ledger_url)
    spent: SpentTokens
    line: Line
    counts: HoardCounts
    penalties: Penalties
    pace: PollPace
    slots: HoldSlots
    if shared is None:
        spent, line, counts = MemorySpentTokens(clock), MemoryLine(), MemoryHoardCounts()
        pace, slots = MemoryPollPace(), MemoryHoldSlots()
        penalties = MemoryPenalties(clock)
        with reads() as db:
            counts.add(stored_closings(db))
        client = None
    else:
        client, prefix = shared
        spent, line = RedisSpentTokens(client, prefix), RedisLine(client, prefix)
        pace, slots = RedisPollPace(client, prefix), RedisHoldSlots(client, prefix)
        counts, penalties = RedisHoardCounts(client, prefix), RedisPenalties(client, prefix, clock)
    hoarders = HoarderControl(counts, policies, ledger)
    orders.closed_listeners.append(hoarders.closed)
    return AdmissionState(
        policies,
        SaleTokens(key, spent, ttl_s=token_ttl_s),
        WaitingRoom(line, ledger, key, pace=pace),
        hoarders,
        QuizDesk(penalties),
        HoldCapControl(slots),
        RehearsalPasses(key),
        client,
        placed=orders.placed,
    )


@dataclass(frozen=True, slots=True)
class Admitted:
    """A purchase the gate let through: the command to buy with, and the live-hold slots it claimed."""

    cmd: Buy
    claim: HoldClaim | None = None


class AdmissionGate:
    """Admit a purchase or refuse it with its code; issue sale tokens; run the waiting rooms' edge."""

    def __init__(self, limits: Admission, state: AdmissionState, clock: Clock) -> None:
        self.limits = limits
        self.state = state
        self._clock = clock

    def admit_purchase(
        self,
        cmd: Buy,
        client: str | None,
        sale_token: str | None,
        device: str | None = None,
        rehearsal_pass: str | None = None,
    ) -> Admitted:
        """Let the purchase on to the ledger, or raise why not (see the module doc for the order).

        Buy with the returned command (it carries a hoarder's shorter payment window) and tell
        `decided` the outcome, so that the live-hold slots it claimed are kept or given back.
        """
        self.limits.admit_purchase(cmd.user_id, client)
        policy = self.state.policies.policy(cmd.item_id)
        if policy is None:  # unknown here: the ledger answers UNKNOWN_ITEM
            return Admitted(cmd)
        if policy.rehearsal and not self.state.passes.admits(policy.campaign_id, rehearsal_pass):
            # A rehearsal's copy does not exist for anyone but its crowd: the same answer as no item.
            raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {cmd.item_id}")
        if policy.purchase_per_shopper or policy.purchase_per_client:
            self.limits.admit_campaign_purchase(policy, cmd.user_id, client)
        try:
            hold_ttl_s = self.state.hoarders.check(policy, cmd.user_id, cmd.qty)
        except FlashSaleError:
            if self.state.placed(cmd) is None:  # a retry of an order placed before goes on to replay
                raise
            hold_ttl_s = None
        now = self._clock()
        if policy.waiting_room_k is not None:
            self.state.room.check_admitted(
                policy, cmd.user_id, now, replay=lambda: self.state.placed(cmd) is not None
            )
        claim = self._claim_slots(policy, cmd, client, device, now)
        if policy.requires_sale_token:
            try:
                if sale_token is None:
                    raise FlashSaleError(
                        ErrorCode.SALE_TOKEN_REQUIRED,
                        f"item {cmd.item_id} is bought with a sale token: "
                        f"POST /items/{cmd.item_id}/sale-token",
                    )
                self.state.tokens.spend(
                    sale_token, shopper=cmd.user_id, item_id=cmd.item_id, request_id=cmd.request_id, now=now
                )
            except BaseException:
                self.state.caps.settle(claim, None)
                raise
        return Admitted(cmd if hold_ttl_s is None else replace(cmd, hold_ttl_s=hold_ttl_s), claim)

    def _claim_slots(
        self, policy: ItemAdmission, cmd: Buy, client: str | None, device: str | None, now: float
    ) -> HoldClaim | None:
        if not policy.hold_caps.active:
            return None
        try:
            return self.state.caps.claim(
                policy, shopper=cmd.user_id, request_id=cmd.request_id, client=client, device=device, now=now
            )
        except FlashSaleError:
            if self.state.placed(cmd) is None:  # a retry of an order placed before takes no slot
                raise
            return None

    def decided(self, admitted: Admitted, purchase: Purchase | None) -> None:
        """Keep the purchase's live-hold slots until its hold's deadline, or give them back (None)."""
        if admitted.claim is not None:
            deadline = None if purchase is None else purchase.order.expires_at.timestamp()
            self.state.caps.settle(admitted.claim, deadline)

    def issue_sale_token(self, shopper: str, item_id: int, answer: int | None = None) -> tuple[str, int]:
        """A sale token for the shopper and item, once its session is open, the room admitted them and
        they answered the item's quiz right (`answer`: the index of their choice)."""
        policy, now = self._open_policy(item_id)
        if policy.waiting_room_k is not None:
            self.state.room.check_admitted(policy, shopper, now)
        self.state.quiz.check(policy, shopper, answer)
        return self.state.tokens.issue(shopper, item_id, now)

    def quiz_question(self, shopper: str, item_id: int) -> QuizQuestion:
        """The shopper's quiz question for the item, once its session is open; NOT_FOUND without a quiz."""
        policy, _ = self._open_policy(item_id)
        question = self.state.quiz.question(policy, shopper)
        if question is None:
            raise FlashSaleError(ErrorCode.NOT_FOUND, f"item {item_id} has no quiz")
        return question

    def _open_policy(self, item_id: int) -> tuple[ItemAdmission, float]:
        policy, now = self._policy(item_id), self._clock()
        if not policy.is_open(now):
            raise FlashSaleError(ErrorCode.SESSION_NOT_OPEN, "asked only once the session is open")
        return policy, now

    def join_room(self, shopper: str, item_id: int) -> RoomStatus:
        """Join the item's waiting room (again: one keeps one's place) and say where one stands."""
        return self.state.room.join(self._room_policy(item_id), shopper, self._clock())

    def room_status(self, ticket: str, item_id: int) -> RoomStatus:
        """Where the ticket's holder stands in the item's waiting room (429 if it polls too soon)."""
        return self.state.room.poll(self._room_policy(item_id), ticket, self._clock())

    def _policy(self, item_id: int) -> ItemAdmission:
        policy = self.state.policies.policy(item_id)
        if policy is None:
            raise FlashSaleError(ErrorCode.NOT_FOUND, f"no item {item_id}")
        return policy

    def _room_policy(self, item_id: int) -> ItemAdmission:
        policy = self._policy(item_id)
        if policy.waiting_room_k is None:
            raise FlashSaleError(ErrorCode.NOT_FOUND, f"item {item_id} has no waiting room")
        return policy
