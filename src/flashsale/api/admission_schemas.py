"""Bodies of admission's routes: sale tokens, waiting rooms, and operators' admission terms."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from flashsale.api.schemas import AdminIn, In, Out, PatchIn, domain_value
from flashsale.domain.admission import (
    MAX_BUY_WINDOW_S,
    MAX_HOARDER_PAYMENT_WINDOW_S,
    MAX_HOLD_CAP,
    MAX_QUIZ_PENALTY_S,
    MAX_WAITING_ROOM_K,
    MIN_HOARDER_PAYMENT_WINDOW_S,
    QuizQuestion,
)
from flashsale.services.waiting_room import RoomState

LimitText = Annotated[
    str,
    Field(
        max_length=200,
        examples=["5/second;60/minute"],
        description="A `limits` string, counted per campaign; empty: no limit of this kind",
    ),
]
Expiries = Annotated[int, Field(ge=1, le=1000, description="Expired holds in the campaign")]
HoldCap = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_HOLD_CAP,
        description="Live holds in the campaign from one address or device, across accounts; 0: no cap",
    ),
]


MAX_QUIZ_QUESTIONS = 200
MAX_CHOICES = 10


class SaleTokenIn(In):
    answer: Annotated[int, Field(strict=True, ge=0, lt=MAX_CHOICES)] | None = Field(
        None, description="For an item with a quiz: the index of your choice (GET /items/{id}/quiz)"
    )


class QuizOut(Out):
    question: str
    choices: list[str] = Field(description="Answer with the index of one of them")


class QuizQuestionIn(AdminIn):
    question: Annotated[str, Field(min_length=1, max_length=500)]
    choices: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]], Field(min_length=2, max_length=MAX_CHOICES)
    ]
    answer: Annotated[int, Field(ge=0, lt=MAX_CHOICES, description="The index of the right choice")]

    def to_domain(self) -> QuizQuestion:
        return domain_value(lambda: QuizQuestion(self.question, tuple(self.choices), self.answer))


class QuizQuestionOut(Out):
    question: str
    choices: list[str]
    answer: int


class SaleTokenOut(Out):
    token: str = Field(description="Send it as `sale_token` in POST /purchases; single-use")
    expires_at: datetime


class RoomOut(Out):
    item_id: int
    state: RoomState
    ahead: int | None = Field(description="Shoppers to be admitted before you (while waiting)")
    eta_s: float | None = Field(description="Seconds until your turn at the measured admission rate")
    window_ends_at: datetime | None = Field(description="While admitted: buy before this")
    ticket: str = Field(description="Poll GET /items/{id}/queue with it in the `Queue-Ticket` header")
    poll_after_s: float | None = Field(
        None, description="While waiting: poll again in this many seconds (sooner learns nothing new)"
    )


class CampaignAdmissionPatch(PatchIn):
    purchase_per_shopper: LimitText | None = None
    purchase_per_client: LimitText | None = None
    throttle_after: Expiries | None = None
    throttled_limit: Annotated[int, Field(ge=1, le=1000)] | None = None
    block_after: Expiries | None = None
    cancel_limit: (
        Annotated[
            int, Field(ge=1, le=1000, description="Cancelled holds in the campaign after which no more holds")
        ]
        | None
    ) = None
    payment_window_s: (
        Annotated[
            int,
            Field(
                ge=MIN_HOARDER_PAYMENT_WINDOW_S,
                le=MAX_HOARDER_PAYMENT_WINDOW_S,
                description="A throttled shopper's holds expire this many seconds after they are granted",
            ),
        ]
        | None
    ) = None
    holds_per_client: HoldCap | None = None
    holds_per_device: HoldCap | None = None


class HoarderOut(Out):
    throttle_after: int | None
    throttled_limit: int
    block_after: int | None
    cancel_limit: int | None
    payment_window_s: int | None


class HoldCapsOut(Out):
    per_client: int | None = Field(description="Live holds in the campaign from one client address")
    per_device: int | None = Field(description="Live holds in the campaign from one device (`Device-Id`)")


class CampaignAdmissionOut(Out):
    campaign_id: int
    purchase_per_shopper: str | None
    purchase_per_client: str | None
    hoarder: HoarderOut
    hold_caps: HoldCapsOut


class ItemAdmissionPatch(PatchIn):
    requires_sale_token: bool | None = None
    waiting_room_k: (
        Annotated[
            int,
            Field(
                ge=0, le=MAX_WAITING_ROOM_K, description="K: admit K× the remaining stock at once; 0: no room"
            ),
        ]
        | None
    ) = None
    buy_window_s: Annotated[int, Field(ge=1, le=MAX_BUY_WINDOW_S)] | None = None
    quiz: (
        Annotated[
            list[QuizQuestionIn],
            Field(max_length=MAX_QUIZ_QUESTIONS, description="The question bank; [] removes the quiz"),
        ]
        | None
    ) = None
    quiz_penalty_s: Annotated[int, Field(ge=1, le=MAX_QUIZ_PENALTY_S)] | None = None

    def changes(self) -> dict[str, Any]:
        changes = super().changes()
        if "quiz" in changes:
            changes["quiz"] = [q.to_domain() for q in changes["quiz"]]
        return changes


class ItemAdmissionOut(Out):
    item_id: int
    campaign_id: int
    requires_sale_token: bool
    waiting_room_k: int | None
    buy_window_s: int
    quiz: list[QuizQuestionOut]
    quiz_penalty_s: int
    purchase_per_shopper: str | None
    purchase_per_client: str | None
    hoarder: HoarderOut
    hold_caps: HoldCapsOut


class RoomRecordOut(Out):
    seed: int | None = Field(description="The seed the shoppers who came before the open were shuffled by")
    early: list[str] = Field(description="Those shoppers, in the order they were put in line")
    line: list[str] = Field(description="Everyone in line, in the order they are admitted")
