"""The admission gate: everything a purchase must pass before the ledger decides, in one place.

Sale tokens are issued after the item's quiz, if it has one (services/quiz.py). Purchases are
checked in order, cheapest and least final first: the rate limits (settings'), a rehearsal copy's
pass (services/rehearsal_pass.py), the campaign's rate limits, hoarder
control, the waiting room (a live buy window), then the sale token, which is spent last so that a
refusal by an earlier check does not burn it. Every term comes from memory (`AdmissionPolicies`);
the state the checks share across workers (counters, the line, spent tokens) is in the ledger's
Redis in scale-out and in process on the embedded default. Both purchase edges (the FastAPI route
and its pure-ASGI fast path) call `admit_purchase` through `api.shop.purchases.decide`.

A replay of an earlier purchase (same Idempotency-Key) passes the sale token again (the token
remembers the request it was spent on) but not a buy window that has ended: such a retry hears
IN_QUEUE; the order itself stays, and `GET /orders/{id}` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from flashsale.clock import Clock
from flashsale.domain.admission import ItemAdmission, QuizQuestion
from flashsale.domain.errors import ErrorCode, FlashSaleError
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
from flashsale.services.orders import Buy, OrderService
from flashsale.services.quiz import MemoryPenalties, Penalties, QuizDesk, RedisPenalties
from flashsale.services.rehearsal_pass import RehearsalPasses
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
    passes: RehearsalPasses
    redis: Redis | None = None  # the client of the ledger's Redis, in scale-out

    def close(self) -> None:
        """Close the Redis client (its connection pool), if any."""
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
    policies = AdmissionPolicies(reads, clock)
    shared = shared_redis(ledger_url)
    spent: SpentTokens
    line: Line
    counts: HoardCounts
    penalties: Penalties
    if shared is None:
        spent, line, counts = MemorySpentTokens(clock), MemoryLine(), MemoryHoardCounts()
        penalties = MemoryPenalties(clock)
        with reads() as db:
            counts.add(stored_closings(db))
        client = None
    else:
        client, prefix = shared
        spent, line = RedisSpentTokens(client, prefix), RedisLine(client, prefix)
        counts, penalties = RedisHoardCounts(client, prefix), RedisPenalties(client, prefix, clock)
    hoarders = HoarderControl(counts, policies, ledger)
    orders.closed_listeners.append(hoarders.closed)
    return AdmissionState(
        policies,
        SaleTokens(key, spent, ttl_s=token_ttl_s),
        WaitingRoom(line, ledger, key),
        hoarders,
        QuizDesk(penalties),
        RehearsalPasses(key),
        client,
    )


class AdmissionGate:
    """Admit a purchase or refuse it with its code; issue sale tokens; run the waiting rooms' edge."""

    def __init__(self, limits: Admission, state: AdmissionState, clock: Clock) -> None:
        self.limits = limits
        self.state = state
        self._clock = clock

    def admit_purchase(
        self, cmd: Buy, client: str | None, sale_token: str | None, rehearsal_pass: str | None = None
    ) -> None:
        """Let the purchase on to the ledger, or raise why not (see the module doc for the order)."""
        self.limits.admit_purchase(cmd.user_id, client)
        policy = self.state.policies.policy(cmd.item_id)
        if policy is None:  # unknown here: the ledger answers UNKNOWN_ITEM
            return
        if policy.rehearsal and not self.state.passes.admits(policy.campaign_id, rehearsal_pass):
            # A rehearsal's copy does not exist for anyone but its crowd: the same answer as no item.
            raise FlashSaleError(ErrorCode.UNKNOWN_ITEM, f"no item {cmd.item_id}")
        if policy.purchase_per_shopper or policy.purchase_per_client:
            self.limits.admit_campaign_purchase(policy, cmd.user_id, client)
        self.state.hoarders.check(policy, cmd.user_id, cmd.qty)
        now = self._clock()
        if policy.waiting_room_k is not None:
            self.state.room.check_admitted(policy, cmd.user_id, now)
        if policy.requires_sale_token:
            if sale_token is None:
                raise FlashSaleError(
                    ErrorCode.SALE_TOKEN_REQUIRED,
                    f"item {cmd.item_id} is bought with a sale token: POST /items/{cmd.item_id}/sale-token",
                )
            self.state.tokens.spend(
                sale_token, shopper=cmd.user_id, item_id=cmd.item_id, request_id=cmd.request_id, now=now
            )

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
        """Where the ticket's holder stands in the item's waiting room."""
        policy = self._room_policy(item_id)
        return self.state.room.status(policy, self.state.room.holder(ticket, item_id), self._clock())

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
