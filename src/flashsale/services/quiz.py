"""The quiz (答题) before a sale token: it spreads the first second's peak and costs a bot a delay.

An item's terms may hold a question bank; each shopper is asked one question of it, fixed per
(shopper, item) (`domain.admission.question_for`), so asking again draws no easier one. The answer
is checked here, on the server; the right choice never leaves it. A wrong answer (or none) costs
`quiz_penalty_s` before the next try, kept where every worker sees it: a key with that expiry in
the ledger's Redis (scale-out), a dict in process (the embedded default).
"""

from __future__ import annotations

import math
import threading
from typing import Protocol

from redis import Redis

from flashsale.clock import Clock
from flashsale.domain.admission import ItemAdmission, QuizQuestion, question_for
from flashsale.domain.errors import ErrorCode, FlashSaleError


class Penalties(Protocol):
    """Delays imposed on shoppers, each ending by itself."""

    def impose(self, key: str, seconds: float) -> None:
        """Make `key` wait `seconds` from now (a new penalty replaces the one running)."""
        ...

    def remaining(self, key: str) -> float:
        """Seconds `key` must still wait; 0 when free."""
        ...


class MemoryPenalties:
    """Penalties in process (the embedded default)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def impose(self, key: str, seconds: float) -> None:
        now = self._clock()
        with self._lock:
            # Forget the penalties that ended, so the dict holds only those running.
            self._until = {k: t for k, t in self._until.items() if t > now}
            self._until[key] = now + seconds

    def remaining(self, key: str) -> float:
        return max(0.0, self._until.get(key, 0.0) - self._clock())


class RedisPenalties:
    """Penalties in the ledger's Redis: one key each, holding when it ends, seen by every worker.

    The end is read on the sale's clock, as every other deadline is; Redis drops the key a second
    after it, so ended penalties take no memory.
    """

    def __init__(self, client: Redis, prefix: str, clock: Clock) -> None:
        self._client = client
        self._prefix = f"{prefix}:quizwait:"
        self._clock = clock

    def impose(self, key: str, seconds: float) -> None:
        until = self._clock() + seconds
        self._client.set(self._prefix + key, repr(until), ex=math.ceil(seconds) + 1)

    def remaining(self, key: str) -> float:
        until = self._client.get(self._prefix + key)
        return max(0.0, float(until) - self._clock()) if until is not None else 0.0


class QuizDesk:
    """Ask the shopper's question and check the answer; see the module doc."""

    def __init__(self, penalties: Penalties) -> None:
        self.penalties = penalties

    @staticmethod
    def question(policy: ItemAdmission, shopper: str) -> QuizQuestion | None:
        """The shopper's question for the item, or None when the item has no quiz."""
        return question_for(policy.quiz, shopper, policy.item_id) if policy.quiz else None

    def check(self, policy: ItemAdmission, shopper: str, answer: int | None) -> None:
        """Pass a right answer; refuse with QUIZ_FAILED (and Retry-After) a wrong one, none, or too soon."""
        asked = self.question(policy, shopper)
        if asked is None:
            return
        key = f"{policy.item_id}:{shopper}"
        wait = self.penalties.remaining(key)
        if wait > 0:
            raise FlashSaleError(
                ErrorCode.QUIZ_FAILED, "a wrong answer costs a wait; try again later", retry_after_s=wait
            )
        if answer is None:  # forgot to answer: nothing was guessed, so nothing costs a wait
            raise FlashSaleError(ErrorCode.QUIZ_FAILED, f"answer the quiz: GET /items/{policy.item_id}/quiz")
        if answer != asked.answer:
            self.penalties.impose(key, policy.quiz_penalty_s)
            raise FlashSaleError(
                ErrorCode.QUIZ_FAILED, "not the right answer", retry_after_s=policy.quiz_penalty_s
            )
