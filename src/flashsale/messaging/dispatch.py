"""The scheduler: turns order events into 催付, releases waves, and sends due messages exactly as the
delivery log says.

The protocol, per batch of `Policy.claim_batch` messages (default 1), which survives a kill -9:
1. claim — in one transaction: the rules are applied (member row locked for the cap), and each
   message that may go goes `scheduled -> sending` with `attempts + 1`, a lease, and a `started`
   log row;
2. send — outside any transaction, each channel is given its envelope with the message's key;
3. record — in one transaction: `sent` (or a retry with backoff, or `failed`) and its log row.
A sender killed between 1 and 3 leaves the message `sending`; once its lease runs out, `recover`
puts it back to `scheduled` with an `unknown` log row and it is sent again under the same key.
So: nothing is lost (every claimed message ends sent, failed or suppressed), and a message goes
out twice only if its sender died after the far side took it and before step 3 committed — at
most once per crash per message in flight (at most `claim_batch` per sender), always with the same
key (SMTP Message-ID, webhook Idempotency-Key), and never for the file outbox, which drops a key
it already holds.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from flashsale.clock import Clock
from flashsale.domain.errors import FlashSaleError
from flashsale.jobs.order_writer import backoff_s
from flashsale.messaging import store
from flashsale.messaging.channels.contract import Channel, Envelope, SendFailed
from flashsale.messaging.policy import Draft, Policy, evaluate
from flashsale.messaging.rules import Outcome, reminder_times
from flashsale.messaging.store import MessageStatus, at
from flashsale.messaging.templates import REMINDER
from flashsale.store.tables import (
    DeliveryRow,
    EventCursorRow,
    EventRow,
    MemberContactRow,
    MessageRow,
    WaveRow,
)

log = logging.getLogger(__name__)

CURSOR = "messaging"
# Events are re-read this far behind the cursor: on PostgreSQL an id may commit after a higher one,
# and re-reading is harmless (a reminder's key exists once; closing an order's reminders twice is a no-op).
REREAD_IDS = 256
CLOSING_EVENTS = frozenset({"OrderPaid", "OrderExpired", "OrderCancelled", "OrderRefunded"})
RETRY_BASE_S = 30.0  # a message the channel refused for now waits 30 s, 60 s, 120 s …
RETRY_MAX_S = 3600.0


@dataclass
class PassStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)


def retry_delay_s(attempt: int) -> float:
    """The wait before retry `attempt` (>= 1): 30 s doubling, at most an hour."""
    return min(RETRY_MAX_S, RETRY_BASE_S * 2.0 ** min(attempt - 1, 16))


class Dispatcher:
    """Runs the messaging passes: ingest order events, release due waves, recover dead claims, send."""

    def __init__(
        self, sessions: sessionmaker[Session], channels: Mapping[str, Channel], policy: Policy, clock: Clock
    ) -> None:
        self.sessions, self.channels, self.policy, self.clock = sessions, channels, policy, clock

    # -- order events -> reminders -----------------------------------------------------------------
    def ingest_events(self, batch: int = 1000) -> int:
        """Plan 催付 steps for new unpaid orders and cancel the pending ones of closed orders."""
        with self.sessions() as db, db.begin():
            cursor = db.get(EventCursorRow, CURSOR)
            last = cursor.last_id if cursor is not None else 0
            events = list(
                db.scalars(
                    select(EventRow).where(EventRow.id > last - REREAD_IDS).order_by(EventRow.id).limit(batch)
                )
            )
            # An order paid (or closed) within the batch needs no reminders at all.
            closing = {e.order_id: e.kind for e in events if e.kind in CLOSING_EVENTS}
            self._plan_reminders(
                db, [e.payload for e in events if e.kind == "HoldPlaced" and e.order_id not in closing]
            )
            self._close_reminders(db, closing)
            newest = max((e.id for e in events), default=last)
            if cursor is None:
                db.add(EventCursorRow(name=CURSOR, last_id=newest))
            else:
                cursor.last_id = max(last, newest)
        return sum(1 for e in events if e.id > last)

    def _plan_reminders(self, db: Session, placed: list[dict[str, Any]]) -> None:
        """Queue the 催付 steps of each newly placed order not planned before (one query for all)."""
        planned = {
            f"remind:{event['order_id']}:{step}": (event, due)
            for event in placed
            for step, due in reminder_times(
                float(event["at"]), float(event["expires_at"]), self.policy.reminder_steps_min
            )
        }
        if not planned:
            return
        existing = set(db.scalars(select(MessageRow.key).where(MessageRow.key.in_(planned))))
        new = {key: planned[key] for key in planned.keys() - existing}
        users = {str(event["user_id"]) for event, _ in new.values()}
        known = set(db.scalars(select(MemberContactRow.user_id).where(MemberContactRow.user_id.in_(users))))
        for user_id in sorted(users - known):
            # A shopper reached for the first time: a contact with the shop's defaults (IM needs no address).
            db.add(
                MemberContactRow(
                    user_id=user_id,
                    name=user_id,
                    locale=self.policy.default_locale,
                    tz=self.policy.default_tz,
                )
            )
        for key, (event, due) in sorted(new.items()):
            db.add(
                MessageRow(
                    key=key,
                    user_id=str(event["user_id"]),
                    channel=self.policy.reminder_channel,
                    template=REMINDER,
                    order_id=str(event["order_id"]),
                    params={
                        "item_id": event["item_id"],
                        "amount_cents": event["total_cents"],
                        "qty": event["qty"],
                    },
                    due_at=at(due),
                    expires_at=at(float(event["expires_at"])),
                    status=MessageStatus.SCHEDULED,
                    attempts=0,
                )
            )

    def _close_reminders(self, db: Session, closing: Mapping[str, str]) -> None:
        """Cancel the pending reminders of orders that closed (`closing`: order id -> event kind)."""
        if not closing:
            return
        now = self.clock()
        pending = db.scalars(
            select(MessageRow).where(
                MessageRow.order_id.in_(closing), MessageRow.status == MessageStatus.SCHEDULED
            )
        )
        for message in pending:
            assert message.order_id is not None
            message.status, message.reason = MessageStatus.CANCELLED, closing[message.order_id]
            store.log(db, message.id, message.attempts, now, "cancelled", message.reason)

    # -- waves ------------------------------------------------------------------------------------
    def release_waves(self) -> int:
        """Queue one message per segment member for each wave whose time has come; return how many."""
        now = self.clock()
        queued = 0
        with self.sessions() as db, db.begin():
            due = db.scalars(
                select(WaveRow)
                .where(WaveRow.status == "scheduled", WaveRow.send_at <= at(now))
                .with_for_update()
            )
            for wave in due:
                for member in store.segment(db, store.Segment(wave.segment), store.target_of(wave)):
                    db.add(wave_message(wave, member.user_id))
                    queued += 1
                wave.status = "released"
        return queued

    # -- crashed senders --------------------------------------------------------------------------
    def recover(self) -> int:
        """Put back every message whose sender's lease ran out mid-send; it is resent under its key."""
        now = self.clock()
        with self.sessions() as db, db.begin():
            stale = db.scalars(
                select(MessageRow)
                .where(MessageRow.status == MessageStatus.SENDING, MessageRow.lease_until < at(now))
                .with_for_update()
            )
            count = 0
            for message in stale:
                message.status, message.lease_until, message.due_at = MessageStatus.SCHEDULED, None, at(now)
                store.log(db, message.id, message.attempts, now, "unknown", "sender died mid-send; resending")
                count += 1
        return count

    # -- sending ----------------------------------------------------------------------------------
    def send_due(self, limit: int = 200) -> PassStats:
        """Claim, send and record every message due now (up to `limit`)."""
        stats = PassStats()
        with self.sessions() as db:
            ids = list(
                db.scalars(
                    select(MessageRow.id)
                    .where(
                        MessageRow.status == MessageStatus.SCHEDULED, MessageRow.due_at <= at(self.clock())
                    )
                    .order_by(MessageRow.due_at, MessageRow.id)
                    .limit(limit)
                )
            )
        batch = self.policy.claim_batch
        for first in range(0, len(ids), batch):
            claimed = self._claim(ids[first : first + batch], stats)
            self._record(
                [(message_id, attempt, self._send(envelope)) for message_id, attempt, envelope in claimed],
                stats,
            )
        return stats

    def _claim(self, ids: list[int], stats: PassStats) -> list[tuple[int, int, Envelope]]:
        """Step 1, for a batch in one transaction: apply the rules; claim those that may go now."""
        now = self.clock()
        claimed = []
        with self.sessions() as db, db.begin():
            batch = db.scalars(
                select(MessageRow)
                .where(MessageRow.id.in_(ids), MessageRow.status == MessageStatus.SCHEDULED)
                .order_by(MessageRow.id)
                .with_for_update()
            )
            # Those not scheduled any more were taken by another sender or closed meanwhile.
            for message in batch.all():
                envelope = self._judge(db, message, now, stats)
                if envelope is not None:
                    message.status, message.attempts = MessageStatus.SENDING, message.attempts + 1
                    message.sent_at, message.lease_until = at(now), at(now + self.policy.lease_s)
                    store.log(db, message.id, message.attempts, now, "started", envelope.address)
                    claimed.append((message.id, message.attempts, envelope))
        return claimed

    def _judge(self, db: Session, message: MessageRow, now: float, stats: PassStats) -> Envelope | None:
        """Return the envelope if the message may go now; else defer or drop it, with its log row."""
        try:
            verdict, envelope = evaluate(db, draft_of(message), now, self.policy, lock=True)
        except FlashSaleError as exc:  # no template, or one needing what the message lacks
            message.status, message.reason = MessageStatus.FAILED, exc.code.value
            store.log(db, message.id, message.attempts, now, "failed", exc.message)
            stats.failed += 1
            return None
        if verdict.outcome is Outcome.DEFER:
            assert verdict.at is not None
            message.due_at = at(verdict.at)
            detail = f"{verdict.reason} until {at(verdict.at)}"
            store.log(db, message.id, message.attempts, now, "deferred", detail)
            stats.deferred += 1
        elif verdict.outcome is Outcome.DROP:
            reason = str(verdict.reason)
            message.status, message.reason = MessageStatus.SUPPRESSED, reason
            store.log(db, message.id, message.attempts, now, "suppressed", reason)
            stats.suppressed[reason] = stats.suppressed.get(reason, 0) + 1
        return envelope

    def _send(self, envelope: Envelope) -> tuple[str, SendFailed | None]:
        """Step 2, outside any transaction: give the envelope to its channel; return receipt or failure."""
        channel = self.channels.get(envelope.channel)
        try:
            if channel is None:
                raise SendFailed(f"no {envelope.channel} channel is configured", transient=False)
            return channel.send(envelope), None
        except SendFailed as exc:
            return str(exc), exc

    def _record(
        self, results: list[tuple[int, int, tuple[str, SendFailed | None]]], stats: PassStats
    ) -> None:
        """Step 3, for a batch in one transaction: sent, retry with backoff, or failed, with log rows."""
        if not results:
            return
        now = self.clock()
        outcomes: dict[tuple[str, float | None], list[int]] = defaultdict(list)  # (outcome, retry at) -> ids
        logs = []
        with self.sessions() as db, db.begin():
            # Only the claims this process still holds: if a lease ran out and another sender took
            # the message over, that sender records it.
            rows = db.execute(
                select(MessageRow.id, MessageRow.attempts)
                .where(
                    MessageRow.id.in_([r[0] for r in results]),
                    MessageRow.status == MessageStatus.SENDING,
                )
                .with_for_update()
            )
            held = {(message_id, attempts) for message_id, attempts in rows}
            for message_id, attempt, (receipt, failure) in results:
                if (message_id, attempt) not in held:
                    continue
                if failure is None:
                    outcome, retry_at = "sent", None
                elif failure.transient and attempt < self.policy.max_attempts:
                    outcome, retry_at = "retry", now + retry_delay_s(attempt)
                else:
                    outcome, retry_at = "failed", None
                outcomes[(outcome, retry_at)].append(message_id)
                logs.append(
                    {
                        "message_id": message_id,
                        "attempt": attempt,
                        "at": at(now),
                        "outcome": outcome,
                        "detail": receipt[:500],
                    }
                )
            for (outcome, retry_at), ids in outcomes.items():
                values: dict[str, object] = {"lease_until": None}
                if outcome == "sent":
                    values.update(status=MessageStatus.SENT, reason=None)
                    stats.sent += len(ids)
                elif retry_at is not None:
                    values.update(status=MessageStatus.SCHEDULED, due_at=at(retry_at))
                    stats.retried += len(ids)
                else:
                    values.update(status=MessageStatus.FAILED, reason="channel")
                    stats.failed += len(ids)
                db.execute(update(MessageRow).where(MessageRow.id.in_(ids)).values(**values))
            if logs:
                db.execute(insert(DeliveryRow), logs)

    # -- the loop ---------------------------------------------------------------------------------
    def run_once(self) -> PassStats:
        """One pass: ingest events, release waves, recover dead claims, send what is due."""
        try:
            self.ingest_events()
        except IntegrityError:  # another dispatcher planned the same reminder first: the next pass re-reads
            log.info("messaging: reminders planned concurrently; re-reading next pass")
        self.release_waves()
        self.recover()
        return self.send_due()

    def run_forever(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Run passes until `stop` is set; a failed pass is logged and retried after a backoff."""
        failures = 0
        while not stop.is_set():
            try:
                stats = self.run_once()
                failures = 0
                busy = (
                    stats.sent
                    + stats.retried
                    + stats.failed
                    + stats.deferred
                    + sum(stats.suppressed.values())
                )
                if busy:
                    continue
            except Exception:  # a database outage must not end the sender; it resumes where the log says
                failures += 1
                log.exception("messaging pass failed")
                stop.wait(backoff_s(failures))
                continue
            stop.wait(poll_s)


def draft_of(message: MessageRow) -> Draft:
    """Return the rules' view of a stored message."""
    return Draft(
        key=message.key,
        user_id=message.user_id,
        channel=message.channel,
        template=message.template,
        params=message.params,
        order_id=message.order_id,
        expires_at=message.expires_at.timestamp() if message.expires_at is not None else None,
    )


def wave_message(wave: WaveRow, user_id: str) -> MessageRow:
    """Return the queued message of `wave` to one member (its key makes a second release a no-op)."""
    return MessageRow(
        key=f"wave:{wave.id}:{user_id}",
        user_id=user_id,
        channel=wave.channel,
        template=wave.template,
        wave_id=wave.id,
        params={"item_id": wave.item_id} if wave.item_id is not None else {},
        due_at=wave.send_at,
        expires_at=wave.expires_at,
        status=MessageStatus.SCHEDULED,
        attempts=0,
    )
