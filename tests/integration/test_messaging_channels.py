"""Each channel against a real far side: retries with backoff on SMTP 4xx, a 5xx fails for good,
a webhook carries the key and is retried on 503, the file outbox writes a key once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flashsale.messaging.channels.contract import Envelope, SendFailed
from flashsale.messaging.channels.outbox import FileOutbox, read_outbox
from flashsale.messaging.channels.smtp import SmtpChannel
from flashsale.messaging.channels.webhook import WebhookChannel
from flashsale.messaging.dispatch import retry_delay_s
from tests.far_sides import Receiver, Sink, free_port, smtp_sink, webhook_receiver

LETTER = Envelope("wave:1:ann", "email", "ann@example.com", "开售", "今晚八点")


@pytest.fixture
def sink() -> Iterator[Sink]:
    with smtp_sink() as running:
        yield running


def test_smtp_4xx_is_transient_5xx_is_final_and_the_key_is_the_message_id(sink: Sink) -> None:
    channel = SmtpChannel("127.0.0.1", sink.port, sender="shop@example.com")
    sink.answers.extend(["451 4.3.0 try again later", "554 5.7.1 rejected"])
    with pytest.raises(SendFailed) as busy:
        channel.send(LETTER)
    assert busy.value.transient
    with pytest.raises(SendFailed) as refused:
        channel.send(LETTER)
    assert not refused.value.transient
    channel.send(LETTER)
    [mail] = sink.mails
    assert mail.message_id == "<wave.1.ann@example.com>" and mail.body == "今晚八点"


def test_an_unreachable_smtp_server_is_transient() -> None:
    with pytest.raises(SendFailed) as down:
        SmtpChannel("127.0.0.1", free_port(), sender="s@example.com", timeout_s=2).send(LETTER)
    assert down.value.transient


def test_retries_back_off_from_thirty_seconds_to_an_hour() -> None:
    delays = [retry_delay_s(n) for n in range(1, 12)]
    assert delays[:3] == [30.0, 60.0, 120.0]
    assert delays == sorted(delays) and delays[-1] == 3600.0


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


def test_a_webhook_carries_the_key_and_only_503_and_429_are_worth_a_retry(hook: Receiver) -> None:
    channel = WebhookChannel(hook.url)
    hook.statuses.extend([503, 429, 400])
    for transient in (True, True, False):
        with pytest.raises(SendFailed) as failed:
            channel.send(LETTER)
        assert failed.value.transient is transient
    assert channel.send(LETTER).startswith("HTTP 204")
    assert [key for key, _ in hook.seen] == [LETTER.key] * 4
    assert hook.seen[-1][1] == {
        "key": LETTER.key,
        "to": LETTER.address,
        "subject": "开售",
        "body": "今晚八点",
    }


def test_the_file_outbox_writes_each_key_once_even_when_resent(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path / "out" / "outbox.jsonl")
    sms = Envelope("remind:O1:1", "sms", "+8613800000000", "", "请付款")
    outbox.send(sms)
    assert outbox.send(sms).startswith("already in")
    outbox.send(LETTER)
    assert [line["key"] for line in read_outbox(outbox.path)] == ["remind:O1:1", LETTER.key]
