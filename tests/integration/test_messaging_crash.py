"""A kill -9 of the message sender mid-wave loses nothing, and repeats only what it may: the messages
in flight at the kill, under the same Message-ID."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from flashsale.bootstrap import build
from flashsale.clock import ManualClock
from flashsale.messaging.channels.smtp import message_id
from flashsale.messaging.service import Member
from flashsale.messaging.store import MessageStatus, Segment
from flashsale.messaging.templates import Template
from flashsale.store.tables import DeliveryRow, MessageRow
from tests.conftest import T0
from tests.far_sides import smtp_sink
from tests.integration import crash_messenger

MEMBERS = 60
TOLD_BEFORE_KILL = 10


@pytest.mark.parametrize("batch", [1, 10])
def test_a_killed_sender_loses_nothing_and_resends_only_what_was_in_flight(
    tmp_path: Path, batch: int
) -> None:
    with smtp_sink() as sink:
        settings = crash_messenger.settings_for(tmp_path, sink.port)
        clock = ManualClock(T0.timestamp())
        setup = build(settings, clock=clock)
        try:
            setup.messaging.put_template(Template("hello", "zh-CN", "开售提醒", "{name}，今晚八点开抢"))
            for n in range(MEMBERS):
                setup.messaging.put_member(
                    Member(f"m{n}", f"M{n}", f"m{n}@example.com", None, "zh-CN", "UTC")
                )
            setup.messaging.schedule_wave(
                name="launch",
                template="hello",
                channel="email",
                segment=Segment.ALL,
                send_at=T0 + timedelta(minutes=1),
            )
        finally:
            setup.close()
        # 10:02 UTC, members in UTC: outside the rest hours.
        start = str((T0 + timedelta(minutes=2)).timestamp())
        child = subprocess.Popen(
            [sys.executable, crash_messenger.__file__, str(tmp_path), str(sink.port), start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "FLASHSALE_MESSAGING_CLAIM_BATCH": str(batch)},
        )
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        told = [child.stdout.readline() for _ in range(TOLD_BEFORE_KILL)]
        child.kill()
        _, err = child.communicate(timeout=30)
        assert child.returncode == -9, err
        assert all(line.endswith("\n") for line in told), err[-2000:]
        taken_before_kill = len(sink.mails)

        # After the kill: a new sender once the dead one's lease ran out.
        clock.set((T0 + timedelta(minutes=10)).timestamp())
        after = build(settings, clock=clock, migrate=False)
        try:
            sender = after.message_dispatcher()
            sender.policy = replace(sender.policy, claim_batch=MEMBERS)  # the rest in one go
            while sender.run_once().sent:
                pass
            with after.messaging.sessions() as db:
                messages = list(db.scalars(select(MessageRow)))
                log = list(db.scalars(select(DeliveryRow)))
        finally:
            after.close()

    assert taken_before_kill < MEMBERS, "the sender finished before the kill: nothing was tested"
    assert len(messages) == MEMBERS and {m.status for m in messages} == {MessageStatus.SENT}
    received = Counter(m.message_id for m in sink.mails)
    assert set(received) == {message_id(m.key, "example.com") for m in messages}  # nothing lost
    unknown = sum(1 for d in log if d.outcome == "unknown")
    assert unknown <= batch  # one sender, one batch in flight at a time
    assert sum(received.values()) - len(received) <= unknown  # a repeat only of what was in flight
    sent_rows = Counter(d.message_id for d in log if d.outcome == "sent")
    assert set(sent_rows.values()) == {1}
