"""The messaging policy (quiet hours per channel, cap, reminder steps) and what a message would do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.domain.orders import OrderStatus
from flashsale.messaging import store
from flashsale.messaging.channels.contract import Envelope
from flashsale.messaging.rules import (
    CAP_WINDOW_S,
    DEFAULT_QUIET,
    Outcome,
    QuietHours,
    Reason,
    Recipient,
    Verdict,
    decide,
    zone,
)
from flashsale.messaging.templates import DEFAULT_LOCALE, Facts, pick, render
from flashsale.store.tables import MemberContactRow

DEFAULT_TZ = "Asia/Shanghai"


@dataclass(frozen=True)
class Policy:
    """How messages are paced; built from Settings by `flashsale.messaging.wiring`."""

    quiet: Mapping[str, QuietHours] = field(default_factory=dict)  # per channel; absent: the rest hours
    cap_per_day: int = 3
    reminder_steps_min: tuple[int, ...] = (5, 10, 14)
    reminder_channel: str = "sms"
    default_tz: str = DEFAULT_TZ
    default_locale: str = DEFAULT_LOCALE
    webhook_url: str | None = None
    lease_s: float = 60.0  # a claim older than this is taken as its sender's death
    max_attempts: int = 5
    claim_batch: int = 1  # messages claimed (and recorded) per transaction: in flight at once
    wave_ttl_s: float = 24 * 3600.0  # a wave message still held back this long after send_at is dropped

    def quiet_for(self, channel: str) -> QuietHours:
        return self.quiet.get(channel) or QuietHours.parse(DEFAULT_QUIET)


@dataclass(frozen=True)
class Draft:
    """A message as the rules see it, stored or not yet (a dry-run's)."""

    key: str
    user_id: str
    channel: str
    template: str
    params: Mapping[str, Any]
    order_id: str | None = None
    expires_at: float | None = None


def address(member: MemberContactRow, channel: str, policy: Policy) -> str | None:
    """Return where the member is reached on `channel` (None: nowhere)."""
    if channel == "email":
        return member.email
    if channel == "sms":
        return member.phone
    if channel == "im":
        return member.user_id
    return policy.webhook_url


def evaluate(
    db: Session, draft: Draft, now: float, policy: Policy, *, lock: bool = False
) -> tuple[Verdict, Envelope | None]:
    """Apply the rules to `draft` at `now`; when it may go, also return its rendered envelope.

    The same function decides in the dispatcher (with `lock`, holding the member's row so two
    senders never both pass the cap) and in the dry-run, so a dry-run shows what will be sent.
    """
    member = store.member(db, draft.user_id, lock=lock)
    if member is None:
        return Verdict(Outcome.DROP, reason=Reason.NO_ADDRESS), None
    tz = zone(member.tz)
    status = store.order_status(db, draft.order_id) if draft.order_id is not None else None
    recipient = Recipient(
        tz=tz,
        opted_out=store.opted_out(db, draft.user_id, draft.channel),
        has_address=bool(address(member, draft.channel, policy)),
        sent_in_window=store.sent_since(db, draft.user_id, now - CAP_WINDOW_S),
    )
    verdict = decide(
        now=now,
        quiet=policy.quiet_for(draft.channel),
        cap=policy.cap_per_day,
        recipient=recipient,
        order_open=draft.order_id is None or status == OrderStatus.UNPAID,
        expires_at=draft.expires_at,
    )
    if verdict.outcome is not Outcome.SEND:
        return verdict, None
    text = pick(store.templates(db, draft.template), member.locale)
    if text is None:
        raise FlashSaleError(ErrorCode.NOT_FOUND, f"no template named {draft.template}")
    item_id = draft.params.get("item_id")
    facts = Facts(
        name=member.name,
        tz=tz,
        order_id=draft.order_id,
        item=store.item_name(db, int(item_id)) if item_id is not None else None,
        amount_cents=draft.params.get("amount_cents"),
        deadline=draft.expires_at if draft.order_id is not None else None,
    )
    rendered = render(text, facts)
    target = address(member, draft.channel, policy)
    assert target is not None  # has_address held
    return verdict, Envelope(draft.key, draft.channel, target, rendered.subject, rendered.body)
