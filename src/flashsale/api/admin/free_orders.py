"""Operator routes for countdown free orders (免单): create a rule, list rules and their winners."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import Field

from flashsale.api.deps import PathId, PlatformDep
from flashsale.api.errors import error_responses
from flashsale.api.schemas import MAX_INT32, AdminIn, Out, UtcTime
from flashsale.domain.free_orders import MAX_RANKS, FreeOrderWin, WinStatus
from flashsale.services.free_orders import RuleView

router = APIRouter(tags=["admin: free orders"])

Rank = Annotated[int, Field(ge=1, le=MAX_INT32)]


class FreeOrderRuleIn(AdminIn):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    session_id: Annotated[int, Field(ge=1, le=MAX_INT32)]
    item_id: Annotated[
        int | None, Field(ge=1, le=MAX_INT32, description="None: every item of the session")
    ] = None
    ranks: Annotated[
        list[Rank],
        Field(default_factory=list, max_length=MAX_RANKS, description="Winning ranks, e.g. [1, 88, 888]"),
    ]
    first_n: Annotated[int, Field(ge=0, le=1_000_000, description="The first N paid orders win")] = 0
    cap_cents: Annotated[int | None, Field(ge=1, le=10**12, description="Most a rebate gives back")] = None


class FreeOrderRuleOut(Out):
    id: int
    name: str
    session_id: int
    item_id: int | None
    ranks: list[int]
    first_n: int
    cap_cents: int | None
    paid_count: int


class FreeOrderWinOut(Out):
    rule_id: int
    slot: int
    order_id: str
    user_id: str
    item_id: int
    rebate_cents: int
    status: WinStatus
    won_at: UtcTime
    rebated_at: UtcTime | None


def rule_out(view: RuleView) -> FreeOrderRuleOut:
    r = view.rule
    return FreeOrderRuleOut(
        id=r.id, name=r.name, session_id=r.session_id, item_id=r.item_id, ranks=list(r.ranks),
        first_n=r.first_n, cap_cents=r.cap_cents, paid_count=view.paid_count,
    )  # fmt: skip


def win_out(win: FreeOrderWin) -> FreeOrderWinOut:
    return FreeOrderWinOut.model_validate(win, from_attributes=True)


@router.post("/free-order-rules", status_code=201, responses=error_responses(404, 409))
def create_free_order_rule(body: FreeOrderRuleIn, platform: PlatformDep) -> FreeOrderRuleOut:
    """Make the n-th paid orders of a session (or one item of it) free, counted from now on.

    An order wins when its payment takes a winning rank (`ranks`, or one of the first `first_n`):
    its amount (at most `cap_cents`) is rebated at once. One slot, one winner, on every engine.
    A rule counting orders another rule counts is refused with 409 CONFLICT.
    """
    rule = platform.free_orders.create_rule(
        name=body.name, session_id=body.session_id, item_id=body.item_id, ranks=body.ranks,
        first_n=body.first_n, cap_cents=body.cap_cents,
    )  # fmt: skip
    return rule_out(RuleView(rule, 0))


@router.get("/free-order-rules")
def list_free_order_rules(platform: PlatformDep) -> list[FreeOrderRuleOut]:
    """Every free-order rule, with how many paid orders it has counted."""
    return [rule_out(v) for v in platform.free_orders.rules()]


@router.get("/free-order-rules/{rule_id}/winners", responses=error_responses(404))
def list_free_order_winners(rule_id: PathId, platform: PlatformDep) -> list[FreeOrderWinOut]:
    """The rule's winners by slot, with the state of each rebate (pending: decided, not yet sent)."""
    return [win_out(w) for w in platform.free_orders.winners(rule_id)]
