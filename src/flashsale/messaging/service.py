"""Operators' messaging: templates and previews, member contacts and opt-outs, waves and their dry-run,
the delivery log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from flashsale.clock import Clock
from flashsale.domain.errors import ErrorCode, FlashSaleError
from flashsale.messaging import store
from flashsale.messaging.dispatch import draft_of, wave_message
from flashsale.messaging.policy import Draft, Policy, evaluate
from flashsale.messaging.rules import Outcome, check_channel, zone
from flashsale.messaging.store import MessageStatus, Segment, at
from flashsale.messaging.templates import (
    MEMBER_FACTS,
    Facts,
    Rendered,
    Template,
    check_template,
    pick,
    render,
)
from flashsale.store.tables import DeliveryRow, MemberContactRow, MessageRow, OptOutRow, TemplateRow, WaveRow


@dataclass(frozen=True)
class Member:
    user_id: str
    name: str
    email: str | None
    phone: str | None
    locale: str
    tz: str


@dataclass(frozen=True)
class Wave:
    id: int
    name: str
    template: str
    channel: str
    segment: str
    item_id: int | None
    send_at: datetime
    expires_at: datetime
    status: str
    category: str | None = None
    coupon_template_id: int | None = None


@dataclass(frozen=True)
class Planned:
    """One line of a dry-run: who would get what, when (or why not)."""

    user_id: str
    channel: str
    outcome: str  # send | drop
    at: datetime | None
    reason: str | None
    address: str | None
    subject: str | None
    body: str | None


@dataclass(frozen=True)
class Delivery:
    message_id: int
    key: str
    user_id: str
    channel: str
    status: str
    attempt: int
    at: datetime
    outcome: str
    detail: str


class MessagingAdmin:
    """Everything the admin routes and the CLI do with messages; each call is one transaction."""

    def __init__(self, sessions: sessionmaker[Session], policy: Policy, clock: Clock) -> None:
        self.sessions, self.policy, self.clock = sessions, policy, clock

    # -- templates --------------------------------------------------------------------------------
    def put_template(self, template: Template) -> Template:
        """Store (or replace) the text of a template in one locale, after checking its placeholders."""
        check_template(template)
        with self.sessions() as db, db.begin():
            db.merge(
                TemplateRow(
                    name=template.name, locale=template.locale, subject=template.subject, body=template.body
                )
            )
        return template

    def templates(self) -> list[Template]:
        with self.sessions() as db:
            return store.all_templates(db)

    def preview(self, name: str, locale: str, tz: str | None = None) -> Rendered:
        """Render template `name` for `locale` with sample facts (a deadline 15 minutes from now)."""
        with self.sessions() as db:
            text = pick(store.templates(db, name), locale)
        if text is None:
            raise FlashSaleError(ErrorCode.NOT_FOUND, f"no template named {name}")
        facts = Facts(
            name="张三",
            tz=zone(tz or self.policy.default_tz),
            order_id="O-SAMPLE",
            item="Phone X",
            amount_cents=399_900,
            deadline=self.clock() + 15 * 60,
        )
        return render(text, facts)

    # -- members and opt-outs ---------------------------------------------------------------------
    def put_member(self, member: Member) -> Member:
        """Store how to reach a member (their time zone decides their quiet hours)."""
        zone(member.tz)
        with self.sessions() as db, db.begin():
            db.merge(MemberContactRow(**member.__dict__))
        return member

    def opt_out(self, user_id: str, channel: str, *, out: bool = True) -> None:
        """Record (or withdraw) a member's opt-out of a channel; the next send checks it."""
        check_channel(channel)
        with self.sessions() as db, db.begin():
            db.execute(delete(OptOutRow).where(OptOutRow.user_id == user_id, OptOutRow.channel == channel))
            if out:
                db.add(OptOutRow(user_id=user_id, channel=channel, at=at(self.clock())))

    # -- waves ------------------------------------------------------------------------------------
    def schedule_wave(
        self,
        *,
        name: str,
        template: str,
        channel: str,
        segment: Segment,
        send_at: datetime,
        item_id: int | None = None,
        category: str | None = None,
        coupon_template_id: int | None = None,
    ) -> Wave:
        """Schedule a wave of `template` to a segment on `channel` at `send_at` (in the future).

        The segment's target goes with it: `item_id` for item_buyers, `category` for category_buyers,
        `coupon_template_id` for coupon_holders (members are taken as they are at release).
        """
        check_channel(channel)
        if send_at.tzinfo is None or send_at.timestamp() <= self.clock():
            raise FlashSaleError(ErrorCode.VALIDATION_ERROR, "send_at must be a future time with a zone")
        store.Target(item_id, category, coupon_template_id).check(segment)
        allowed = MEMBER_FACTS | ({"item"} if item_id is not None else frozenset())
        with self.sessions() as db, db.begin():
            texts = store.templates(db, template)
            if not texts:
                raise FlashSaleError(ErrorCode.NOT_FOUND, f"no template named {template}")
            for text in texts.values():
                check_template(text, frozenset(allowed))
            row = WaveRow(
                name=name,
                template=template,
                channel=channel,
                segment=segment.value,
                item_id=item_id,
                category=category,
                coupon_template_id=coupon_template_id,
                send_at=send_at,
                expires_at=at(send_at.timestamp() + self.policy.wave_ttl_s),
                status="scheduled",
            )
            db.add(row)
            db.flush()
            return wave_of(row)

    def waves(self) -> list[Wave]:
        with self.sessions() as db:
            return [wave_of(r) for r in db.scalars(select(WaveRow).order_by(WaveRow.send_at, WaveRow.id))]

    def cancel_wave(self, wave_id: int) -> Wave:
        """Cancel a wave not yet released."""
        with self.sessions() as db, db.begin():
            row = db.get(WaveRow, wave_id, with_for_update=True)
            if row is None:
                raise FlashSaleError(ErrorCode.NOT_FOUND, f"no wave {wave_id}")
            if row.status != "scheduled":
                raise FlashSaleError(ErrorCode.CONFLICT, f"wave {wave_id} is {row.status}")
            row.status = "cancelled"
            return wave_of(row)

    def dry_run(self, wave_id: int) -> list[Planned]:
        """Show who the wave would reach, with what text and when, by the rules as they stand now.

        Each member's message is evaluated at the wave's time and, while quiet hours hold it back,
        again at the end of them, exactly as the sender will; only what changes in between (new
        members, opt-outs, other messages counting toward the cap) can make the send differ.
        """
        with self.sessions() as db:
            wave = db.get(WaveRow, wave_id)
            if wave is None:
                raise FlashSaleError(ErrorCode.NOT_FOUND, f"no wave {wave_id}")
            plan = []
            for member in store.segment(db, Segment(wave.segment), store.target_of(wave)):
                plan.append(self._plan(db, wave_message(wave, member.user_id), wave.send_at.timestamp()))
            return plan

    def _plan(self, db: Session, message: MessageRow, when: float) -> Planned:
        draft: Draft = draft_of(message)
        while True:
            verdict, envelope = evaluate(db, draft, when, self.policy)
            if verdict.outcome is not Outcome.DEFER:
                break
            assert verdict.at is not None
            when = verdict.at
        if envelope is None:
            return Planned(draft.user_id, draft.channel, "drop", None, str(verdict.reason), None, None, None)
        return Planned(
            draft.user_id,
            draft.channel,
            "send",
            at(when),
            None,
            envelope.address,
            envelope.subject,
            envelope.body,
        )

    # -- the delivery log -------------------------------------------------------------------------
    def deliveries(
        self,
        *,
        user_id: str | None = None,
        order_id: str | None = None,
        wave_id: int | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Return the delivery log, newest first, of a member, an order or a wave (or of everything)."""
        query = select(DeliveryRow, MessageRow).join(MessageRow, MessageRow.id == DeliveryRow.message_id)
        if user_id is not None:
            query = query.where(MessageRow.user_id == user_id)
        if order_id is not None:
            query = query.where(MessageRow.order_id == order_id)
        if wave_id is not None:
            query = query.where(MessageRow.wave_id == wave_id)
        with self.sessions() as db:
            rows = db.execute(query.order_by(DeliveryRow.id.desc()).limit(limit)).all()
        return [
            Delivery(m.id, m.key, m.user_id, m.channel, m.status, d.attempt, d.at, d.outcome, d.detail)
            for d, m in rows
        ]

    def counts(self) -> dict[str, int]:
        """Count messages by final state, suppressed ones by reason (`suppressed:quiet_hours` …)."""
        with self.sessions() as db:
            rows = db.execute(
                select(MessageRow.status, MessageRow.reason, func.count()).group_by(
                    MessageRow.status, MessageRow.reason
                )
            ).all()
        counts: dict[str, int] = {}
        for status, reason, count in rows:
            key = (
                f"{status}:{reason}"
                if status in (MessageStatus.SUPPRESSED, MessageStatus.CANCELLED)
                else status
            )
            counts[key] = counts.get(key, 0) + count
        return dict(sorted(counts.items()))


def wave_of(row: WaveRow) -> Wave:
    return Wave(
        row.id,
        row.name,
        row.template,
        row.channel,
        row.segment,
        row.item_id,
        row.send_at,
        row.expires_at,
        row.status,
        row.category,
        row.coupon_template_id,
    )
